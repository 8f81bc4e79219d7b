// Peak wasm linear memory of loading a model folder and encoding with it, measured in Node with
// the package's own wasm module (same loader as the browser: files handed over as 4 MiB chunks
// that stay in the JS heap, weights read tensor by tensor).
//
//   node tests/browser/wasm-memory.mjs MODEL_DIR [PAIRS.jsonl] [N_PAIRS]

import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './harness.mjs';
import { initSync, WasmModel, neededFiles, wasmMemoryBytes } from '../../pkg/wasm/instructor.js';

const [dir, pairsFile = path.join(ROOT, 'benches/pairs.jsonl'), n = '64'] = process.argv.slice(2);
initSync({ module: fs.readFileSync(path.join(ROOT, 'pkg/wasm/instructor_bg.wasm')) });
const CHUNK = 4 << 20;
const chunks = (file) => {
  const buf = fs.readFileSync(path.join(dir, file));
  const out = [];
  for (let o = 0; o < buf.length; o += CHUNK) out.push(new Uint8Array(buf.buffer, buf.byteOffset + o, Math.min(CHUNK, buf.length - o)));
  return out;
};
const needed = JSON.parse(neededFiles(fs.readFileSync(path.join(dir, 'modules.json'), 'utf8')));
const files = needed.files.filter((f) => fs.existsSync(path.join(dir, f)));
for (const c of needed.weights) files.push(c.find((f) => fs.existsSync(path.join(dir, f))));
const weightsBytes = files.filter((f) => /\.(bin|safetensors)$/.test(f)).reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);
const before = wasmMemoryBytes();
const model = await WasmModel.load(dir, files.map((f) => [f, chunks(f)]), 'f32', 'cpu');
const loaded = wasmMemoryBytes();
const pairs = fs.readFileSync(pairsFile, 'utf8').split('\n').filter((l) => l.trim()).slice(0, Number(n)).map((l) => JSON.parse(l));
await model.encode(pairs.map((p) => p.instruction ?? ''), pairs.map((p) => p.text), 32, false);
const peak = wasmMemoryBytes();
const mib = (b) => (b / 2 ** 20).toFixed(0);
console.log(JSON.stringify({ dir, weights_bytes: weightsBytes, wasm_before: before, wasm_after_load: loaded, wasm_peak_after_encode: peak, pairs: pairs.length }));
console.log(`weights ${mib(weightsBytes)} MiB; wasm memory ${mib(loaded)} MiB after load, ${mib(peak)} MiB after encoding ${pairs.length} pairs (batch 32)`);
