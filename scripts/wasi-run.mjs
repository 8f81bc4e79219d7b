// Cargo's runner for wasm32-wasip1 test binaries (scripts/test-int8-wasm.sh): runs one under
// Node's WASI with the test harness's arguments.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import process from 'node:process';

const [wasmPath, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [wasmPath, ...args], env: process.env, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
