// Wasm memory of loading a model in headless Chromium on WebGPU (SwiftShader when there is no GPU)
// against the CPU path: on WebGPU the weights stream to the GPU block by block, so wasm memory
// holds one tensor at a time, not the model. Each load runs in a fresh page (wasm memory never
// shrinks).
//
//   node tests/browser/webgpu-memory.mjs [--shape base] [--dir DIR]

import os from 'node:os';
import path from 'node:path';
import { startStatic, startHub, launchBrowser, openPage, randomModel } from './harness.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const shape = arg('shape', 'base');
const parent = arg('dir', path.join(os.tmpdir(), 'instructor-memory'));
const modelDir = path.join(parent, 'fixtures', shape);
const weights = randomModel(shape, modelDir);

const web = await startStatic();
const hub = await startHub({ root: path.join(parent, 'fixtures') });
const browser = await launchBrowser({ webgpu: true });
const mib = (b) => (b / 2 ** 20).toFixed(0);
try {
  for (const [device, dtype] of [['webgpu', 'f32'], ['webgpu', 'f16'], ['cpu', 'f32']]) {
    const page = await openPage(browser.context, web.url);
    const r = await page.evaluate(
      async ([repo, hubUrl, device, dtype]) => {
        const before = await IE.Instructor.wasmMemoryBytes();
        const model = await IE.Instructor.load(repo, { hubUrl, device, dtype });
        const loaded = await IE.Instructor.wasmMemoryBytes();
        const out = await model.encode([['Represent the title: ', 'Streaming weights to the GPU']]);
        const peak = await IE.Instructor.wasmMemoryBytes();
        await model.dispose();
        return { device: model.device, before, loaded, peak, finite: out.data.every(Number.isFinite) };
      },
      [`fixtures/${shape}`, hub.url, device, dtype],
    );
    await page.close();
    if (!r.finite) throw new Error(`${device} ${dtype}: non-finite embeddings`);
    console.log(
      `${shape} ${r.device} ${dtype}: wasm memory ${mib(r.loaded)} MiB after load, ${mib(r.peak)} MiB after encoding ` +
        `(${mib(r.before)} MiB before; weights file ${mib(weights)} MiB)`,
    );
  }
} finally {
  await browser.close();
  await hub.stop();
  await web.close();
}
