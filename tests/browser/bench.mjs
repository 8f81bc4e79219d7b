// Throughput of the wasm SIMD path in headless Chromium, f32 and int8, 1 thread and one thread per
// core, vs native CPU: same machine, same run, same pairs (benches/pairs.jsonl), instructor-<shape>
// shape with random weights.
//
//   node tests/browser/bench.mjs [--shape base] [--pairs N] [--batch 32] [--dir DIR] [--pairs-file F]
//                                [--onnx DIR]
//
// Also reports the wasm linear memory after load and after encoding (it only grows: the peak), and
// the IndexedDB bytes the f32 and int8 loads keep. `--onnx DIR` (written by benches/onnx_export.py:
// the same shape exported to ONNX, f32 and dynamically quantized int8, and the same pairs batched
// as InstructorEmbedding batches them) adds onnxruntime-web's wasm backend in the same Chromium,
// 1 thread and one per core (installed into tests/browser/node_modules without saving; not CI).

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
async function wasmRun(context, staticUrl, worker, dtype = 'f32') {
  const page = await openPage(context, staticUrl);
  try {
    return await page.evaluate(
      async ([repo, hubUrl, pairs, batch, worker, dtype]) => {
        const cls = worker ? IE.InstructorWorker : IE.Instructor;
        // The page's module memory: says nothing about a worker's.
        const memory = async () => (worker ? null : IE.Instructor.wasmMemoryBytes());
        const mem0 = await memory();
        let t = performance.now();
        const model = await cls.load(repo, { hubUrl, dtype });
        const firstLoadS = (performance.now() - t) / 1000;
        const memLoaded = await memory();
        const tokens = await model.countTokens(pairs);
        await model.encode(pairs.slice(0, 8), { batchSize: batch });
        t = performance.now();
        await model.encode(pairs, { batchSize: batch });
        const seconds = (performance.now() - t) / 1000;
        const memPeak = await memory();
        const { threads, simd, int8Kernel } = model;
        await model.dispose();
        t = performance.now();
        const again = await cls.load(repo, { hubUrl, dtype });
        const cachedLoadS = (performance.now() - t) / 1000;
        await again.dispose();
        const idb = (await IE.Instructor.cachedModels()).filter((m) => m.repo === repo).map(({ commit, size }) => ({ commit, size }));
        return { dtype, threads, simd, int8Kernel, worker, isolated: crossOriginIsolated, tokens, seconds, tokens_per_s: tokens / seconds, firstLoadS, cachedLoadS, mem0, memLoaded, memPeak, idb };
      },
      [`fixtures/${shape}`, hubUrl, pairs, batch, worker, dtype],
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
const onnxDir = arg('onnx', null);
let wasm1, wasmN, wasmNWorker, int8_1, int8NWorker;
const ort = {};
try {
  wasm1 = await wasmRun(browser.context, plainWeb.url, false);
  wasmN = await wasmRun(browser.context, isolatedWeb.url, false);
  wasmNWorker = await wasmRun(browser.context, isolatedWeb.url, true);
  int8_1 = await wasmRun(browser.context, plainWeb.url, false, 'int8');
  int8NWorker = await wasmRun(browser.context, isolatedWeb.url, true, 'int8');
  if (onnxDir) {
    if (!fs.existsSync(path.join(ROOT, 'tests/browser/node_modules/onnxruntime-web'))) {
      execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', 'onnxruntime-web@1.30.0'], {
        cwd: path.join(ROOT, 'tests/browser'),
        stdio: 'inherit',
      });
    }
    // Another origin than the page's: CORS, and CORP for the isolated page's require-corp.
    const headers = { 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin' };
    const onnxWeb = await startStatic({ dir: onnxDir, headers });
    const onnxIsolated = await startStatic({ dir: onnxDir, isolated: true, headers });
    try {
      for (const file of ['encoder.onnx', 'encoder-int8.onnx']) {
        ort[`${file} 1`] = await ortRun(browser.context, plainWeb.url, onnxWeb.url, file, 1);
        ort[`${file} N`] = await ortRun(browser.context, isolatedWeb.url, onnxIsolated.url, file, os.cpus().length);
      }
    } finally {
      await onnxWeb.close();
      await onnxIsolated.close();
    }
  }
} finally {
  await browser.close();
  await hub.stop();
  await plainWeb.close();
  await isolatedWeb.close();
}
if (wasm1.threads !== 1 || !(wasmN.threads > 1) || !(wasmNWorker.threads > 1)) {
  throw new Error(`bench: expected 1 and N > 1 threads, got ${wasm1.threads}, ${wasmN.threads}, ${wasmNWorker.threads}`);
}

/**
 * onnxruntime-web's wasm backend on the ONNX export (`file` of --onnx DIR, served by `onnxUrl`), on
 * the batches benches/onnx_export.py made: `session.run` per batch is timed, the encoder only
 * (pooling and Dense are left out, in ORT's favour), after one warm-up batch.
 */
async function ortRun(context, staticUrl, onnxUrl, file, threads) {
  const page = await openPage(context, staticUrl);
  try {
    return await page.evaluate(
      async ([onnxUrl, file, threads]) => {
        const ort = await import('/tests/browser/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs');
        ort.env.wasm.wasmPaths = '/tests/browser/node_modules/onnxruntime-web/dist/';
        ort.env.wasm.numThreads = threads;
        ort.env.wasm.proxy = false;
        const { tokens, batches } = await (await fetch(`${onnxUrl}/batches.json`)).json();
        const session = await ort.InferenceSession.create(`${onnxUrl}/${file}`, {
          executionProviders: ['wasm'],
          graphOptimizationLevel: 'all',
        });
        const feeds = batches.map(({ ids, mask }) => {
          const dims = [ids.length, ids[0].length];
          const t = (rows) => new ort.Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), dims);
          return { input_ids: t(ids), attention_mask: t(mask) };
        });
        await session.run(feeds.at(-1));
        const t0 = performance.now();
        for (const f of feeds) await session.run(f);
        const seconds = (performance.now() - t0) / 1000;
        await session.release();
        return { file, threads, isolated: crossOriginIsolated, tokens, seconds, tokens_per_s: tokens / seconds };
      },
      [onnxUrl, file, threads],
    );
  } finally {
    await page.close();
  }
}

const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const tps = (r) => r.tokens_per_s.toFixed(0);
const ratio = (a, b) => `${(a.tokens_per_s / b.tokens_per_s).toFixed(2)}x`;
console.log(
  JSON.stringify(
    { shape, pairs: pairs.length, batch, native_1thread: native1, native_all_threads: nativeAll, wasm_1thread: wasm1, wasm_threads: wasmN, wasm_threads_worker: wasmNWorker, int8_1thread: int8_1, int8_threads_worker: int8NWorker, onnxruntime_web: ort },
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
console.log(`  int8 wasm (${int8_1.int8Kernel}), 1 thread (page):      ${tps(int8_1)} tokens/s   ${ratio(int8_1, wasm1)} the f32 wasm`);
console.log(
  `  int8 wasm, ${int8NWorker.threads} threads (InstructorWorker):    ${tps(int8NWorker)} tokens/s   ${ratio(int8NWorker, wasmNWorker)} the f32 wasm`,
);
for (const [key, r] of Object.entries(ort)) {
  const ours = key.includes('int8') ? (r.threads === 1 ? int8_1 : int8NWorker) : r.threads === 1 ? wasm1 : wasmNWorker;
  console.log(
    `  onnxruntime-web ${r.file}, ${r.threads} thread(s): ${tps(r)} tokens/s; ours ${ours.dtype} ${ratio(ours, r)} (${tps(ours)})`,
  );
}
const idb = (r) => r.idb.map((e) => `${e.commit.endsWith('+int8') ? 'int8' : 'f32'} ${mib(e.size)}`).join(', ');
console.log(`  IndexedDB after the int8 loads: ${idb(int8_1)} (int8 loads read only the int8 entry)`);
console.log(`  int8 load: first ${int8_1.firstLoadS.toFixed(1)} s (download + quantize), cached ${int8_1.cachedLoadS.toFixed(1)} s; wasm memory peak ${mib(int8_1.memPeak)}`);
