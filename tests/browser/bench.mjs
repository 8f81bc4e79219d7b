// Throughput of the wasm SIMD path in headless Chromium vs native CPU, same machine, same run,
// same pairs (benches/pairs.jsonl), instructor-<shape> shape with random weights.
//
//   node tests/browser/bench.mjs [--shape base] [--pairs N] [--batch 32] [--dir DIR] [--pairs-file F]
//
// Also reports the wasm linear memory after load and after encoding (it only grows: the peak).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ROOT, startStatic, startHub, launchBrowser, openPage } from './harness.mjs';

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

if (!fs.existsSync(path.join(modelDir, 'modules.json'))) {
  console.error(`bench: writing a random-weight ${shape}-shape model to ${modelDir}`);
  cargo(['run', '--quiet', '--release', '--example', 'random_model', '--', shape, modelDir]);
}

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

// Wasm in Chromium, through the mock hub and the IndexedDB cache like a real page.
const web = await startStatic();
const hub = await startHub({ root: parent });
const browser = await launchBrowser();
let wasmResult;
try {
  const page = await openPage(browser.context, web.url);
  wasmResult = await page.evaluate(
    async ([repo, hubUrl, pairs, batch]) => {
      const mem0 = await IE.Instructor.wasmMemoryBytes();
      let t = performance.now();
      const model = await IE.Instructor.load(repo, { hubUrl });
      const firstLoadS = (performance.now() - t) / 1000;
      const memLoaded = await IE.Instructor.wasmMemoryBytes();
      const tokens = model.countTokens(pairs);
      await model.encode(pairs.slice(0, 8), { batchSize: batch });
      t = performance.now();
      await model.encode(pairs, { batchSize: batch });
      const seconds = (performance.now() - t) / 1000;
      const memPeak = await IE.Instructor.wasmMemoryBytes();
      await model.dispose();
      t = performance.now();
      const again = await IE.Instructor.load(repo, { hubUrl });
      const cachedLoadS = (performance.now() - t) / 1000;
      await again.dispose();
      return { tokens, seconds, tokens_per_s: tokens / seconds, firstLoadS, cachedLoadS, mem0, memLoaded, memPeak, simd: true };
    },
    [`fixtures/${shape}`, hub.url, pairs, batch],
  );
} finally {
  await browser.close();
  await hub.stop();
  await web.close();
}

const weightsBytes = fs.statSync(path.join(modelDir, fs.existsSync(path.join(modelDir, 'model.safetensors')) ? 'model.safetensors' : 'pytorch_model.bin')).size;
const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
console.log(
  JSON.stringify({ shape, pairs: pairs.length, batch, native_1thread: native1, native_all_threads: nativeAll, wasm_chromium: wasmResult }, null, 2),
);
console.log(`\n${shape} shape, ${pairs.length} pairs, ${wasmResult.tokens} tokens, batch ${batch}:`);
console.log(`  native CPU, ${os.cpus().length} threads: ${nativeAll.tokens_per_s.toFixed(0)} tokens/s`);
console.log(`  native CPU, 1 thread:  ${native1.tokens_per_s.toFixed(0)} tokens/s`);
console.log(`  wasm SIMD (Chromium, 1 thread): ${wasmResult.tokens_per_s.toFixed(0)} tokens/s`);
console.log(
  `  ratio native/wasm: ${(nativeAll.tokens_per_s / wasmResult.tokens_per_s).toFixed(2)}x (all threads), ` +
    `${(native1.tokens_per_s / wasmResult.tokens_per_s).toFixed(2)}x (1 thread)`,
);
console.log(
  `  wasm memory: ${mib(wasmResult.memLoaded)} after load, ${mib(wasmResult.memPeak)} peak after encode ` +
    `(encoder weights file ${mib(weightsBytes)}); first load ${wasmResult.firstLoadS.toFixed(1)} s, cached load ${wasmResult.cachedLoadS.toFixed(1)} s`,
);
