// The npm package in real headless Chromium against the mock hub: reference parity, progress,
// caching (zero requests on reload, offline), resume, sha256 refusal, clearCache, the worker.
//
//   scripts/test-browser.sh        (builds first)   or   node --test tests/browser/

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSuite, fixtureCases, expected, maxDiff, MODELS, repo } from './harness.mjs';

const pairs = fixtureCases();

let suite, hub, page, loadEncode;

before(async () => {
  suite = await startSuite();
  ({ hub, page, loadEncode } = suite);
});

after(() => suite?.stop());

const loadError = (r, options = {}) =>
  page.evaluate(
    ([r, o]) => T.load(r, o).then(({ model }) => model.dispose().then(() => null), (e) => T.error(e)),
    [r, { hubUrl: hub.url, ...options }],
  );

test('embeddings of the three fixture models equal the Python reference within 1e-5', async () => {
  for (const m of MODELS) {
    const exp = expected(m);
    const out = await loadEncode(repo(m));
    assert.deepEqual(out.dims, [pairs.length, exp.dim]);
    const d = maxDiff(out.data, exp.dim, exp.cases);
    assert.ok(d < 1e-5, `${m}: max abs diff ${d}`);
    assert.equal(out.info.device, 'cpu');
    assert.equal(typeof out.info.fallbackReason, 'string');
    assert.equal(out.info.fromCache, false);
  }
});

test('progress events arrive, are monotonic per file and end with ready', async () => {
  await page.evaluate(() => IE.Instructor.clearCache('fixtures/tiny-relu-bin'));
  const out = await loadEncode(repo('tiny-relu-bin'));
  const ev = out.events;
  assert.deepEqual(ev.at(-1), { status: 'ready' });
  assert.equal(ev.filter((e) => e.status).length, 1);
  const last = new Map();
  for (const e of ev.slice(0, -1)) {
    assert.equal(typeof e.file, 'string');
    assert.ok(e.loaded <= e.total, JSON.stringify(e));
    assert.ok(e.loaded >= (last.get(e.file) ?? 0), `not monotonic: ${JSON.stringify(e)}`);
    last.set(e.file, e.loaded);
  }
  for (const f of ['modules.json', 'config.json', 'tokenizer.json', 'pytorch_model.bin', '2_Dense/pytorch_model.bin']) {
    assert.ok(last.has(f), `no progress for ${f}`);
  }
  const weights = ev.filter((e) => e.file === 'pytorch_model.bin');
  assert.equal(weights.at(-1).loaded, weights.at(-1).total);
});

test('a second load makes no request to the hub', async () => {
  for (const m of MODELS) await loadEncode(repo(m)); // cached by now
  await hub.reset();
  for (const m of MODELS) {
    const out = await loadEncode(repo(m));
    assert.equal(out.info.fromCache, true);
    assert.ok(maxDiff(out.data, expected(m).dim, expected(m).cases) < 1e-5);
  }
  const stats = await hub.stats();
  assert.equal(stats.requests, 0, JSON.stringify(stats.paths));
});

test('an interrupted download resumes with Range from the stored chunks', async () => {
  const m = 'tiny-relu-bin';
  const key = `fixtures/${m}/pytorch_model.bin`;
  const size = (await (await fetch(`${hub.url}/api/models/fixtures/${m}/revision/main?blobs=true`)).json()).siblings.find(
    (s) => s.rfilename === 'pytorch_model.bin',
  ).size;

  // 1) No retries: the load fails, what arrived stays cached, the next load resumes.
  await page.evaluate((r) => IE.Instructor.clearCache(r), repo(m));
  await hub.reset();
  // Paced, so that the bytes before the cut reach the page before the error does (a stream's
  // error discards chunks not yet read).
  await hub.faults({ cut_after: { [key]: 150000 }, delay_ms_per_chunk: 5 });
  const err = await loadError(repo(m), { retries: 0 });
  assert.equal(err?.name, 'NetworkError', JSON.stringify(err));
  const cached = await page.evaluate(() => IE.Instructor.cachedModels());
  const partial = cached.find((c) => c.repo === repo(m)).files.find((f) => f.file === 'pytorch_model.bin');
  assert.equal(partial.complete, false);
  assert.ok(partial.stored > 0 && partial.stored <= 150000, JSON.stringify(partial));

  await hub.reset();
  const out = await loadEncode(repo(m));
  assert.ok(maxDiff(out.data, expected(m).dim, expected(m).cases) < 1e-5);
  const log = (await hub.stats()).log.filter((l) => l.range && l.path.startsWith('/lfs-store/'));
  assert.equal(log.length, 1, JSON.stringify(log));
  assert.equal(log[0].range, `bytes=${partial.stored}-`);
  assert.equal(log[0].bytes, size - partial.stored);

  // 2) Within one load: the retry resumes by itself.
  await page.evaluate((r) => IE.Instructor.clearCache(r), repo(m));
  await hub.reset();
  await hub.faults({ cut_after: { [key]: 200000 }, delay_ms_per_chunk: 5 });
  const again = await loadEncode(repo(m));
  assert.ok(maxDiff(again.data, expected(m).dim, expected(m).cases) < 1e-5);
  const ranged = (await hub.stats()).log.filter((l) => l.range && l.path.startsWith('/lfs-store/'));
  assert.ok(ranged.length >= 1, 'no Range request: ' + JSON.stringify((await hub.stats()).log));
  const weightEvents = again.events.filter((e) => e.file === 'pytorch_model.bin');
  for (let i = 1; i < weightEvents.length; i++) assert.ok(weightEvents[i].loaded >= weightEvents[i - 1].loaded);
});

test('a sha256 mismatch is refused and nothing corrupt is kept', async () => {
  const m = 'tiny-gelu-st';
  await page.evaluate((r) => IE.Instructor.clearCache(r), repo(m));
  await hub.reset();
  await hub.faults({ corrupt: [`fixtures/${m}/model.safetensors`] });
  const err = await loadError(repo(m));
  assert.equal(err?.name, 'IntegrityError', JSON.stringify(err));
  assert.match(err.message, /sha256 mismatch/);
  const cached = await page.evaluate(() => IE.Instructor.cachedModels());
  const entry = cached.find((c) => c.repo === repo(m));
  assert.ok(!entry?.files.some((f) => f.file === 'model.safetensors'), JSON.stringify(entry));
  assert.ok(!entry?.complete);
  await hub.reset();
  const out = await loadEncode(repo(m));
  assert.ok(maxDiff(out.data, expected(m).dim, expected(m).cases) < 1e-5);
});

test('a quota shortfall is reported with the size needed, and the cache stays consistent', async () => {
  const m = 'tiny-relu-f16';
  await page.evaluate((r) => IE.Instructor.clearCache(r), repo(m));
  const err = await page.evaluate(
    async ([r, hubUrl]) => {
      const real = navigator.storage.estimate.bind(navigator.storage);
      navigator.storage.estimate = async () => ({ quota: 30000, usage: 0 });
      try {
        await IE.Instructor.load(r, { hubUrl });
        return null;
      } catch (e) {
        return T.error(e);
      } finally {
        navigator.storage.estimate = real;
      }
    },
    [repo(m), hub.url],
  );
  assert.equal(err?.name, 'QuotaExceededError', JSON.stringify(err));
  assert.equal(err.file, 'model.safetensors');
  assert.ok(err.bytesNeeded > 30000);
  const entry = (await page.evaluate(() => IE.Instructor.cachedModels())).find((c) => c.repo === repo(m));
  assert.ok(!entry.complete && entry.revisions.length === 0, JSON.stringify(entry));
  const out = await loadEncode(repo(m));
  assert.ok(maxDiff(out.data, expected(m).dim, expected(m).cases) < 1e-5);
});

test('the worker variant matches the main thread, with concurrent encode calls queued', async () => {
  const m = 'tiny-relu-bin';
  const main = await loadEncode(repo(m));
  const res = await page.evaluate(
    async ([r, hubUrl, pairs]) => {
      const w = await IE.InstructorWorker.load(r, { hubUrl });
      const thirds = [pairs.slice(0, 10), pairs.slice(10, 20), pairs.slice(20)];
      const outs = await Promise.all([w.encode(pairs), ...thirds.map((p) => w.encode(p, { batchSize: 3 }))]);
      const info = { dim: w.dim, device: w.device, fallbackReason: w.fallbackReason };
      await w.dispose();
      return { info, outs: outs.map((o) => ({ dims: o.dims, data: Array.from(o.data), isF32: o.data instanceof Float32Array })) };
    },
    [repo(m), hub.url, pairs],
  );
  assert.equal(res.info.dim, main.dims[1]);
  assert.equal(res.info.device, 'cpu');
  assert.ok(res.outs.every((o) => o.isF32));
  assert.deepEqual(res.outs[0].dims, main.dims);
  assert.deepEqual(res.outs[0].data, main.data);
  const joined = res.outs.slice(1).flatMap((o) => o.data);
  const d = joined.reduce((w, v, i) => Math.max(w, Math.abs(v - main.data[i])), 0);
  assert.ok(d < 1e-6, `batched worker results differ by ${d}`);
});

test('device and argument checks', async () => {
  const r = await page.evaluate(async (hubUrl) => {
    const out = {};
    try {
      await IE.Instructor.load('fixtures/tiny-relu-bin', { hubUrl, device: 'webgpu' });
    } catch (e) {
      out.webgpu = [e.name, e.message];
    }
    const auto = await IE.Instructor.load('fixtures/tiny-relu-bin', { hubUrl, device: 'auto' });
    out.auto = [auto.device, auto.adapter, auto.fallbackReason];
    await auto.dispose();
    const m = await IE.Instructor.load('fixtures/tiny-relu-bin', { hubUrl, device: 'cpu' });
    out.cpu = [m.device, m.fallbackReason];
    try {
      await m.encode([['only one']]);
    } catch (e) {
      out.badPair = e.name;
    }
    const plain = await m.encode(['Plain text without an instruction.', ['', 'Plain text without an instruction.']], { normalize: true });
    out.plain = [plain.dims, Array.from(plain.data.slice(0, 4)), Array.from(plain.data.slice(plain.dims[1], plain.dims[1] + 4))];
    const full = await m.encode([['Represent the Science title: ', 'Parametric approximations of the sine function']]);
    const half = await IE.Instructor.load('fixtures/tiny-relu-bin', { hubUrl, dtype: 'f16' });
    const h = await half.encode([['Represent the Science title: ', 'Parametric approximations of the sine function']]);
    out.f16 = [half.dtype, h.data.reduce((w, v, i) => Math.max(w, Math.abs(v - full.data[i])), 0)];
    await half.dispose();
    try {
      await IE.Instructor.load('fixtures/tiny-relu-bin', { hubUrl, dtype: 'bf16' });
    } catch (e) {
      out.bf16 = e.name;
    }
    await m.dispose();
    try {
      await m.encode([['', 'x']]);
    } catch (e) {
      out.disposed = e.name;
    }
    return out;
  }, hub.url);
  // This Chromium has no WebGPU adapter (no GPU, no --enable-unsafe-webgpu; see webgpu.test.mjs).
  assert.equal(r.webgpu[0], 'GPUError');
  assert.match(r.webgpu[1], /no GPU adapter/);
  assert.equal(r.auto[0], 'cpu');
  assert.equal(r.auto[1], null);
  assert.match(r.auto[2], /no GPU adapter/);
  assert.deepEqual(r.cpu, ['cpu', null]);
  assert.equal(r.badPair, 'TypeError');
  assert.deepEqual(r.plain[1], r.plain[2]);
  assert.equal(r.disposed, 'InvalidStateError');
  assert.equal(r.f16[0], 'f16');
  assert.ok(r.f16[1] > 0 && r.f16[1] < 1e-2, `f16 differs from f32 by ${r.f16[1]}`);
  assert.equal(r.bf16, 'TypeError');
});

test('clearCache removes one repo or everything, and cachedModels lists sizes', async () => {
  const list = await page.evaluate(() => IE.Instructor.cachedModels());
  for (const m of MODELS) {
    const e = list.find((c) => c.repo === repo(m));
    assert.ok(e?.complete, `${m} not cached: ${JSON.stringify(e)}`);
    assert.ok(e.revisions.includes('main'));
    assert.equal(e.size, e.files.reduce((s, f) => s + f.size, 0));
  }
  await page.evaluate(() => IE.Instructor.clearCache('fixtures/tiny-gelu-st'));
  const after1 = (await page.evaluate(() => IE.Instructor.cachedModels())).map((c) => c.repo);
  assert.ok(!after1.includes('fixtures/tiny-gelu-st'));
  assert.ok(after1.includes('fixtures/tiny-relu-bin'));
  await page.evaluate(() => IE.InstructorWorker.clearCache());
  assert.deepEqual(await page.evaluate(() => IE.Instructor.cachedModels()), []);
  await hub.reset();
  const out = await loadEncode(repo('tiny-gelu-st'));
  assert.equal(out.info.fromCache, false);
  assert.ok((await hub.stats()).requests > 0);
});

test('a reload with the hub stopped still works (offline)', async () => {
  await loadEncode(repo('tiny-relu-bin')); // cached
  await hub.stop();
  await page.reload();
  await page.waitForFunction(() => window.IE !== undefined);
  const m = 'tiny-relu-bin';
  const out = await loadEncode(repo(m));
  assert.equal(out.info.fromCache, true);
  assert.ok(maxDiff(out.data, expected(m).dim, expected(m).cases) < 1e-5);
  // A model that was never cached fails clearly.
  const err = await loadError(repo('tiny-relu-f16'), { retries: 0 });
  assert.equal(err?.name, 'NetworkError');
});
