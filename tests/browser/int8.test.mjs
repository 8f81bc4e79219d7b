// dtype 'int8' in real headless Chromium against the mock hub: the cosine bound to the Python f32
// reference on every fixture model, the relaxed-SIMD and plain simd128 builds giving the same
// bits, and the int8 copy cached so that a reload reads it alone, with no request.
//
//   scripts/test-browser.sh        (builds first)   or   node --test tests/browser/int8.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSuite, fixtureCases, expected, MODELS, repo } from './harness.mjs';

/** The bound the native test (tests/parity.rs) and the README state. */
const MIN_COSINE = 0.999;

let suite, hub, page, loadEncode;

before(async () => {
  suite = await startSuite();
  ({ hub, page, loadEncode } = suite);
});

after(() => suite?.stop());

function minCosine(data, dim, cases) {
  let worst = 1;
  cases.forEach((c, i) => {
    const a = data.slice(i * dim, (i + 1) * dim);
    const b = c.embedding;
    let ab = 0, aa = 0, bb = 0;
    for (let j = 0; j < dim; j++) {
      ab += a[j] * b[j];
      aa += a[j] * a[j];
      bb += b[j] * b[j];
    }
    // Nothing left after the instruction: the reference is the zero vector, and so must ours be.
    if (bb === 0) assert.equal(aa, 0, `case ${i}: the reference is zero, ours is not`);
    else worst = Math.min(worst, ab / Math.sqrt(aa * bb));
  });
  return worst;
}

test('int8 stays within the cosine bound, and both builds give the same bits', async () => {
  assert.equal(fixtureCases().length, expected(MODELS[0]).cases.length);
  for (const m of MODELS) {
    const exp = expected(m);
    const relaxed = await loadEncode(repo(m), { dtype: 'int8' });
    assert.equal(relaxed.info.dtype, 'int8');
    assert.equal(relaxed.info.simd, 'relaxed-simd');
    assert.equal(relaxed.info.int8Kernel, 'relaxed-simd');
    assert.equal(relaxed.info.device, 'cpu');
    assert.equal(relaxed.info.fallbackReason, 'int8 runs on the CPU');
    const worst = minCosine(relaxed.data, exp.dim, exp.cases);
    console.log(`int8 ${m} (relaxed-simd): min cosine ${worst}`);
    assert.ok(worst >= MIN_COSINE, `${m}: cosine ${worst}`);
    assert.ok(worst < 1 - 1e-7, `${m}: equal to f32, so int8 was not applied`);

    const plain = await loadEncode(repo(m), { dtype: 'int8', simd: 'simd128' });
    assert.equal(plain.info.simd, 'simd128');
    assert.equal(plain.info.int8Kernel, 'simd128');
    assert.deepEqual(plain.data, relaxed.data, `${m}: simd128 differs from relaxed-simd`);
    // f32 on the plain build is the f32 of the relaxed one.
    const f32 = await loadEncode(repo(m), { simd: 'simd128' });
    assert.equal(f32.info.int8Kernel, null);
    assert.equal(f32.info.dtype, 'f32');
  }
});

test('the int8 copy is cached: a reload reads it alone, a quarter of the weights, with no request', async () => {
  const m = 'tiny-relu-bin';
  await page.evaluate((r) => IE.Instructor.clearCache(r), repo(m));
  const first = await loadEncode(repo(m), { dtype: 'int8' });
  assert.ok(first.events.some((e) => e.status === 'quantizing'), JSON.stringify(first.events));
  assert.equal(first.info.fromCache, false);
  const cached = await page.evaluate(() => IE.Instructor.cachedModels());
  const entries = cached.filter((c) => c.repo === repo(m));
  const f32 = entries.find((c) => !c.commit.endsWith('+int8'));
  const int8 = entries.find((c) => c.commit.endsWith('+int8'));
  assert.ok(f32?.complete && int8?.complete, JSON.stringify(entries));
  const weights = (e) => e.files.filter((f) => /(\.bin|\.safetensors)$/.test(f.file)).reduce((s, f) => s + f.size, 0);
  console.log(`IndexedDB: f32 weights ${weights(f32)} bytes, int8 ${weights(int8)} bytes (${(weights(int8) / weights(f32)).toFixed(3)})`);
  assert.ok(weights(int8) < 0.4 * weights(f32), `${weights(int8)} of ${weights(f32)}`);
  assert.deepEqual(int8.revisions, ['main+int8']);

  await hub.reset();
  const again = await loadEncode(repo(m), { dtype: 'int8' });
  assert.equal(again.info.fromCache, true);
  assert.equal(again.info.commit, first.info.commit);
  assert.deepEqual(again.data, first.data);
  const files = again.events.filter((e) => e.file).map((e) => e.file).sort();
  assert.deepEqual(files, int8.files.map((f) => f.file).sort());
  assert.equal((await hub.stats()).requests, 0);
});

test('int8 argument errors name the option', async () => {
  const err = (options) =>
    page.evaluate(
      ([r, o]) => T.load(r, o).then(({ model }) => model.dispose().then(() => null), (e) => T.error(e)),
      [repo('tiny-relu-bin'), { hubUrl: hub.url, ...options }],
    );
  const simd = await err({ simd: 'sse2' });
  assert.equal(simd?.name, 'TypeError');
  assert.match(simd.message, /unknown simd 'sse2'/);
  const dtype = await err({ dtype: 'int4' });
  assert.match(dtype.message, /expected 'f32', 'f16' or 'int8'/);
});
