// Throughput of the wasm SIMD path in headless Chromium, 1 thread and one thread per core, vs
// native CPU: same machine, same run, same pairs (benches/pairs.jsonl), instructor-<shape> shape
// with random weights.
//
//   node tests/browser/bench.mjs [--shape base] [--pairs N] [--batch 32] [--dir DIR] [--pairs-file F]
//
// Also reports the wasm linear memory after load and after encoding (it only grows: the peak).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ROOT, startStatic, startHub, launchBrowser, openPage, randomModel } from './harness.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const shape = arg('shape', 'base');
const batch = Number(arg('batch', '32'));
const limit = Number(arg('pairs', '0'));
const parent = arg('dir', path.join(os.tmpdir(), 'instructor-bench'));
const modelDir = path.join(parent, shape);
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target');

function cargo(args, env = {}) {
  return execFileSync('cargo', args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] }).toString();
}

const weightsBytes = randomModel(shape, modelDir);

const pairsFile = arg('pairs-file', path.join(ROOT, 'benches/pairs.jsonl'));
let lines = fs.readFileSync(pairsFile, 'utf8').split('\n').filter((l) => l.trim());
if (limit > 0) lines = lines.slice(0, limit);
const pairsPath = path.join(parent, `pairs-${lines.length}.jsonl`);
fs.writeFileSync(pairsPath, lines.join('\n') + '\n');
const pairs = lines.map((l) => {
  const c = JSON.parse(l);
  return [c.instruction ?? '', c.text];
});

// Native, 1 thread and all cores.
cargo(['build', '--quiet', '--release', '--example', 'encode_throughput']);
const nativeBin = path.join(targetDir, 'release/examples/encode_throughput');
const native = (threads) =>
  JSON.parse(
    execFileSync(nativeBin, [modelDir, pairsPath, String(batch)], {
      env: { ...process.env, ...(threads ? { RAYON_NUM_THREADS: String(threads) } : {}) },
    }).toString(),
  );
const native1 = native(1);
const nativeAll = native(null);

// Wasm in Chromium, through the mock hub and the IndexedDB cache like a real page: the
// single-threaded build (a page without COOP/COEP) and the threaded one (a cross-origin isolated
// page; one thread per core), the model on the page's thread; and the threaded one in
// InstructorWorker (whose calling thread sleeps while the pool works, where the page's thread
// has to spin).
async function wasmRun(context, staticUrl, worker) {
  const page = await openPage(context, staticUrl);
  try {
    return await page.evaluate(
      async ([repo, hubUrl, pairs, batch, worker]) => {
        const cls = worker ? IE.InstructorWorker : IE.Instructor;
        // The page's module memory: says nothing about a worker's.
        const memory = async () => (worker ? null : IE.Instructor.wasmMemoryBytes());
        const mem0 = await memory();
        let t = performance.now();
        const model = await cls.load(repo, { hubUrl });
        const firstLoadS = (performance.now() - t) / 1000;
        const memLoaded = await memory();
        const tokens = await model.countTokens(pairs);
        await model.encode(pairs.slice(0, 8), { batchSize: batch });
        t = performance.now();
        await model.encode(pairs, { batchSize: batch });
        const seconds = (performance.now() - t) / 1000;
        const memPeak = await memory();
        const threads = model.threads;
        await model.dispose();
        t = performance.now();
        const again = await cls.load(repo, { hubUrl });
        const cachedLoadS = (performance.now() - t) / 1000;
        await again.dispose();
        return { threads, worker, isolated: crossOriginIsolated, tokens, seconds, tokens_per_s: tokens / seconds, firstLoadS, cachedLoadS, mem0, memLoaded, memPeak };
      },
      [`fixtures/${shape}`, hubUrl, pairs, batch, worker],
    );
  } finally {
    await page.close();
  }
}

const plainWeb = await startStatic();
const isolatedWeb = await startStatic({ isolated: true });
const hub = await startHub({ root: parent });
const hubUrl = hub.url;
const browser = await launchBrowser();
let wasm1, wasmN, wasmNWorker;
try {
  wasm1 = await wasmRun(browser.context, plainWeb.url, false);
  wasmN = await wasmRun(browser.context, isolatedWeb.url, false);
  wasmNWorker = await wasmRun(browser.context, isolatedWeb.url, true);
} finally {
  await browser.close();
  await hub.stop();
  await plainWeb.close();
  await isolatedWeb.close();
}
if (wasm1.threads !== 1 || !(wasmN.threads > 1) || !(wasmNWorker.threads > 1)) {
  throw new Error(`bench: expected 1 and N > 1 threads, got ${wasm1.threads}, ${wasmN.threads}, ${wasmNWorker.threads}`);
}

const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const tps = (r) => r.tokens_per_s.toFixed(0);
const ratio = (a, b) => `${(a.tokens_per_s / b.tokens_per_s).toFixed(2)}x`;
console.log(
  JSON.stringify(
    { shape, pairs: pairs.length, batch, native_1thread: native1, native_all_threads: nativeAll, wasm_1thread: wasm1, wasm_threads: wasmN, wasm_threads_worker: wasmNWorker },
    null,
    2,
  ),
);
console.log(`\n${shape} shape, ${pairs.length} pairs, ${wasm1.tokens} tokens, batch ${batch}, ${os.cpus().length} cores:`);
console.log(`  native CPU, all threads:                  ${tps(nativeAll)} tokens/s`);
console.log(`  native CPU, 1 thread:                     ${tps(native1)} tokens/s`);
console.log(`  wasm SIMD, 1 thread (page):               ${tps(wasm1)} tokens/s`);
console.log(`  wasm SIMD, ${wasmN.threads} threads (isolated page):    ${tps(wasmN)} tokens/s   ${ratio(wasmN, wasm1)} the 1-thread wasm`);
console.log(`  wasm SIMD, ${wasmNWorker.threads} threads (InstructorWorker): ${tps(wasmNWorker)} tokens/s   ${ratio(wasmNWorker, wasm1)} the 1-thread wasm`);
console.log(
  `  native/wasm: ${ratio(nativeAll, wasmNWorker)} (all threads vs ${wasmNWorker.threads} wasm threads, worker), ` +
    `${ratio(native1, wasm1)} (1 thread vs 1 thread)`,
);
for (const [name, r] of [['1 thread', wasm1], [`${wasmN.threads} threads`, wasmN]]) {
  console.log(
    `  wasm memory (${name}): ${mib(r.memLoaded)} after load, ${mib(r.memPeak)} peak after encode ` +
      `(encoder weights file ${mib(weightsBytes)}); first load ${r.firstLoadS.toFixed(1)} s, cached load ${r.cachedLoadS.toFixed(1)} s`,
  );
}
