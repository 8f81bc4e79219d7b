// The WebGPU backend in real headless Chromium. With no GPU on the machine, Chromium started with
// --enable-unsafe-webgpu offers SwiftShader (a CPU WebGPU adapter: no shader-f16, 1 GiB buffers),
// which runs the same WGSL kernels a GPU runs. (The fallback without any adapter is tested in
// embed.test.mjs, whose Chromium has none.)
//
//   scripts/test-browser.sh        (builds first)   or   node --test tests/browser/webgpu.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSuite, startStatic, startHub, openPage, randomModel, loadEncode as loadEncodeIn, fixtureCases, expected, maxDiff, MODELS, repo } from './harness.mjs';

const pairs = fixtureCases();

let suite, web, hub, browser, page, loadEncode;

before(async () => {
  suite = await startSuite({ webgpu: true });
  ({ web, hub, browser, page, loadEncode } = suite);
});

after(() => suite?.stop());

test("device 'webgpu': the fixture models equal the Python reference within 1e-5", async () => {
  for (const m of MODELS) {
    const exp = expected(m);
    const out = await loadEncode(repo(m), { device: 'webgpu' });
    assert.equal(out.info.device, 'webgpu');
    assert.match(out.info.adapter, /BrowserWebGpu, software/);
    assert.equal(out.info.fallbackReason, null);
    assert.deepEqual(out.dims, [pairs.length, exp.dim]);
    const d = maxDiff(out.data, exp.dim, exp.cases);
    assert.ok(d < 1e-5, `${m}: max abs diff ${d}`);
  }
});

test("device 'webgpu' with dtype 'f16' (weights stored as f16) stays within 2e-3 of the reference", async () => {
  for (const m of MODELS) {
    const exp = expected(m);
    const out = await loadEncode(repo(m), { device: 'webgpu', dtype: 'f16' });
    assert.equal(out.info.device, 'webgpu');
    const d = maxDiff(out.data, exp.dim, exp.cases);
    assert.ok(d > 0 && d < 2e-3, `${m}: max abs diff ${d}`);
  }
});

test("'auto' does not pick a software adapter: the CPU path, with the reason", async () => {
  const out = await loadEncode(repo('tiny-relu-bin'), { device: 'auto' });
  assert.equal(out.info.device, 'cpu');
  assert.equal(out.info.adapter, null);
  assert.match(out.info.fallbackReason, /only a software adapter/);
  assert.ok(maxDiff(out.data, expected('tiny-relu-bin').dim, expected('tiny-relu-bin').cases) < 1e-5);
});

test('the worker runs WebGPU too, with the main thread\'s results; concurrent calls queue', async () => {
  const m = 'tiny-gelu-st';
  const main = await loadEncode(repo(m), { device: 'webgpu' });
  const res = await page.evaluate(
    async ([r, hubUrl, pairs]) => {
      const w = await IE.InstructorWorker.load(r, { hubUrl, device: 'webgpu' });
      const halves = [pairs.slice(0, 15), pairs.slice(15)];
      const outs = await Promise.all([w.encode(pairs), ...halves.map((p) => w.encode(p, { batchSize: 4 }))]);
      const info = { device: w.device, adapter: w.adapter };
      await w.dispose();
      return { info, outs: outs.map((o) => Array.from(o.data)) };
    },
    [repo(m), hub.url, pairs],
  );
  assert.equal(res.info.device, 'webgpu');
  assert.equal(res.info.adapter, main.info.adapter);
  assert.deepEqual(res.outs[0], main.data);
  const joined = res.outs.slice(1).flat();
  const d = joined.reduce((w, v, i) => Math.max(w, Math.abs(v - main.data[i])), 0);
  assert.ok(d < 1e-6, `batched worker results differ by ${d}`);
});

test('concurrent encode calls on one main-thread model queue and give the same results', async () => {
  const m = 'tiny-relu-bin';
  const exp = expected(m);
  const outs = await page.evaluate(
    async ([r, hubUrl, pairs]) => {
      const model = await IE.Instructor.load(r, { hubUrl, device: 'webgpu' });
      const outs = await Promise.all([model.encode(pairs), model.encode(pairs.slice(0, 5), { batchSize: 2 }), model.encode(pairs)]);
      await model.dispose();
      return outs.map((o) => Array.from(o.data));
    },
    [repo(m), hub.url, pairs],
  );
  assert.deepEqual(outs[0], outs[2]);
  assert.ok(maxDiff(outs[0], exp.dim, exp.cases) < 1e-5);
  assert.ok(maxDiff(outs[1], exp.dim, exp.cases.slice(0, 5)) < 1e-5);
});

test('on a cross-origin isolated page, WebGPU runs on the single-threaded build and the CPU fallback on the threaded one', async () => {
  const m = 'tiny-relu-bin';
  const exp = expected(m);
  const isolatedWeb = await startStatic({ isolated: true });
  const p = await openPage(browser.context, isolatedWeb.url);
  try {
    const run = async (device) => {
      const { data, info } = await loadEncodeIn(p, hub.url, repo(m), { device });
      return { ...info, data };
    };
    const [isolated, cores] = await p.evaluate(() => [crossOriginIsolated, navigator.hardwareConcurrency]);
    const out = { isolated, cores, gpu: await run('webgpu'), auto: await run('auto') };
    assert.equal(out.isolated, true);
    assert.equal(out.gpu.device, 'webgpu');
    assert.equal(out.gpu.threads, 1);
    assert.equal(out.auto.device, 'cpu');
    assert.equal(out.auto.threads, out.cores);
    assert.match(out.auto.fallbackReason, /only a software adapter/);
    for (const run of [out.gpu, out.auto]) {
      const d = maxDiff(run.data, exp.dim, exp.cases);
      assert.ok(d < 1e-5, `${run.device}: max abs diff ${d}`);
    }
  } finally {
    await p.close();
    await isolatedWeb.close();
  }
});

test('weights stream to the GPU: wasm memory grows by far less than the model', async () => {
  // A random-weight model whose blocks outweigh its embedding table, as in the real checkpoints.
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'instructor-stream-'));
  const dir = path.join(parent, 'fixtures', 'small');
  const weights = randomModel('small', dir);
  const bigHub = await startHub({ root: path.join(parent, 'fixtures') });
  try {
    // Each load in a fresh page (a fresh wasm instance): wasm memory never shrinks, so memory
    // freed by an earlier load would hide a later one's growth.
    const grow = async (device) => {
      const p = await openPage(browser.context, web.url);
      try {
        return await p.evaluate(
          async ([hubUrl, device]) => {
            const before = await IE.Instructor.wasmMemoryBytes();
            const model = await IE.Instructor.load('fixtures/small', { hubUrl, device });
            const grown = (await IE.Instructor.wasmMemoryBytes()) - before;
            const out = await model.encode([['Represent the title: ', 'Streaming weights']]);
            await model.dispose();
            return { grown, device: model.device, finite: out.data.every(Number.isFinite) };
          },
          [bigHub.url, device],
        );
      } finally {
        await p.close();
      }
    };
    const cpu = await grow('cpu');
    const gpu = await grow('webgpu');
    const mib = (b) => (b / 2 ** 20).toFixed(0);
    console.log(`# wasm memory growth on load: cpu +${mib(cpu.grown)} MiB, webgpu +${mib(gpu.grown)} MiB, weights ${mib(weights)} MiB`);
    assert.equal(gpu.device, 'webgpu');
    assert.ok(gpu.finite && cpu.finite);
    // The measure sees a model held in wasm memory: the CPU path holds it all.
    assert.ok(cpu.grown > 0.9 * weights, `cpu: wasm memory grew by only ${cpu.grown} bytes`);
    // The largest tensor (the f32 embedding table, 66 MB of the 166 MB) passes through wasm
    // memory; the model as a whole never does.
    assert.ok(gpu.grown < weights / 2, `webgpu: wasm memory grew by ${gpu.grown} bytes for ${weights} bytes of weights`);
  } finally {
    await bigHub.stop();
    fs.rmSync(parent, { recursive: true, force: true });
  }
});
