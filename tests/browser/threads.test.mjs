// The threaded build (pkg/wasm-threads/) in real headless Chromium: a page served with COOP/COEP is
// cross-origin isolated and runs its matrix products on one thread per core, with the same
// embeddings as the Python reference; a page without the headers runs the single-threaded build.
//
//   scripts/test-browser.sh        (builds first)   or   node --test tests/browser/threads.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStatic, startHub, launchBrowser, openPage, loadEncode, expected, maxDiff, MODELS, repo } from './harness.mjs';

let isolatedWeb, plainWeb, cspWeb, hub, browser, isolated, plain;

before(async () => {
  isolatedWeb = await startStatic({ isolated: true });
  plainWeb = await startStatic();
  // Isolated, but its policy allows no blob: workers, which is what the thread pool's are.
  cspWeb = await startStatic({ isolated: true, headers: { 'Content-Security-Policy': "worker-src 'self'" } });
  hub = await startHub();
  browser = await launchBrowser();
  isolated = await openPage(browser.context, isolatedWeb.url);
  plain = await openPage(browser.context, plainWeb.url);
});

after(async () => {
  await browser?.close();
  await hub?.stop();
  await isolatedWeb?.close();
  await plainWeb?.close();
  await cspWeb?.close();
});

/** Loads and encodes the fixture pairs in `page`; `worker` uses InstructorWorker. */
async function run(page, m, worker = false) {
  const { data, info } = await loadEncode(page, hub.url, repo(m), {}, { worker });
  const [isolated, cores] = await page.evaluate(() => [crossOriginIsolated, navigator.hardwareConcurrency]);
  return { data, threads: info.threads, isolated, cores };
}

test('a page with COOP/COEP is isolated, runs one thread per core, and matches the Python reference', async () => {
  for (const m of MODELS) {
    const exp = expected(m);
    const out = await run(isolated, m);
    assert.equal(out.isolated, true, 'the COOP/COEP page is not crossOriginIsolated');
    assert.ok(out.cores > 1, `this check needs more than one core (navigator.hardwareConcurrency = ${out.cores})`);
    assert.equal(out.threads, out.cores);
    const d = maxDiff(out.data, exp.dim, exp.cases);
    assert.ok(d < 1e-5, `${m}, ${out.threads} threads: max abs diff ${d}`);
  }
});

test('a page without the headers runs one thread, and the threads change no bit of the result', async () => {
  for (const m of MODELS) {
    const single = await run(plain, m);
    assert.equal(single.isolated, false);
    assert.equal(single.threads, 1);
    assert.ok(maxDiff(single.data, expected(m).dim, expected(m).cases) < 1e-5);
    // Each thread takes whole token rows, and a row's arithmetic does not depend on how many rows
    // its matmul has (src/model/t5.rs, matmul_rows).
    const threaded = await run(isolated, m);
    assert.deepEqual(threaded.data, single.data, `${m}: threaded and single-threaded results differ`);
  }
});

test('InstructorWorker gets the threads too on an isolated page', async () => {
  const m = 'tiny-relu-bin';
  const out = await run(isolated, m, true);
  assert.equal(out.threads, out.cores);
  assert.ok(out.threads > 1);
  const d = maxDiff(out.data, expected(m).dim, expected(m).cases);
  assert.ok(d < 1e-5, `worker, ${out.threads} threads: max abs diff ${d}`);
  const single = await run(plain, m, true);
  assert.equal(single.threads, 1);
});

// wasm-bindgen-rayon waits for every worker's "ready" message: without pkg/index.js's startPool a
// blocked worker left `init()` and `load()` pending forever (seen before the fix).
test('a Content-Security-Policy that blocks the pool\'s workers gives one thread at once, not a hang', { timeout: 120000 }, async () => {
  const warnings = [];
  const onConsole = (msg) => msg.type() === 'warning' && warnings.push(msg.text());
  browser.context.on('console', onConsole);
  const page = await openPage(browser.context, cspWeb.url);
  const m = 'tiny-relu-bin';
  for (const worker of [false, true]) {
    const out = await run(page, m, worker);
    assert.equal(out.isolated, true);
    assert.equal(out.threads, 1, `${worker ? 'worker' : 'page'}: threads`);
    assert.ok(maxDiff(out.data, expected(m).dim, expected(m).cases) < 1e-5);
  }
  browser.context.off('console', onConsole);
  assert.ok(warnings.some((w) => w.includes('Content-Security-Policy')), `no warning names the policy: ${warnings}`);
  await page.close();
});
