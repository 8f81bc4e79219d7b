// Checks that the wasm module's matmul is WebAssembly SIMD: disassembles it with the npm
// binaryen's wasm-dis and counts f32x4 instructions per function. candle's CPU matmul is the
// `gemm` crate, which has simd128 microkernels for wasm32 (compiled in when +simd128 is on, as
// .cargo/config.toml sets), so no kernel of our own is needed; this check fails the build if
// that ever stops being true (e.g. the flag gets lost).
//
// With `--relaxed` it also checks that the int8 kernel uses relaxed SIMD's dot product, with
// `--no-relaxed` that the module has no relaxed SIMD at all (Safari refuses such a module whole).
//
//   node scripts/check-simd.mjs pkg/wasm/instructor_bg.wasm --relaxed
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const wasmFile = process.argv[2] ?? path.join(root, 'pkg/wasm/instructor_bg.wasm');
const wasmDis = path.join(root, 'tests/browser/node_modules/.bin/wasm-dis');
const text = execFileSync(wasmDis, [wasmFile], { maxBuffer: 1 << 30 }).toString();

const perFunc = new Map();
let current = null;
let total = 0;
for (const line of text.split('\n')) {
  const m = /^ \(func \$(\S+)/.exec(line);
  if (m) {
    current = m[1];
    continue;
  }
  if (current && line.includes('f32x4.')) {
    total++;
    perFunc.set(current, (perFunc.get(current) ?? 0) + 1);
  }
}
const gemm = [...perFunc.entries()].filter(([name]) => /gemm/i.test(name)).sort((a, b) => b[1] - a[1]);
const gemmOps = gemm.reduce((s, [, n]) => s + n, 0);
console.log(
  `check-simd: ${total} f32x4 instructions in ${perFunc.size} functions; ` +
    `${gemmOps} in ${gemm.length} gemm (matmul) functions, e.g. ${gemm.slice(0, 2).map(([n, c]) => `${n} (${c})`).join(', ')}`,
);
const relaxed = (text.match(/\.relaxed_/g) ?? []).length;
const dots = (text.match(/relaxed_dot_i8x16_i7x16_add/g) ?? []).length;
console.log(`check-simd: ${relaxed} relaxed SIMD instructions, ${dots} relaxed int8 dot products`);
if (process.argv.includes('--relaxed') && dots === 0) {
  console.error('check-simd: the int8 kernel has no relaxed dot product: is +relaxed-simd set?');
  process.exit(1);
}
if (process.argv.includes('--no-relaxed') && relaxed > 0) {
  console.error('check-simd: this build must not contain relaxed SIMD');
  process.exit(1);
}
if (gemmOps === 0) {
  console.error('check-simd: the matmul kernels use no f32x4 instructions: is +simd128 set?');
  process.exit(1);
}
