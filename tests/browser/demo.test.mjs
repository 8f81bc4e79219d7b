// The demo page (www/) in headless Chromium against the mock hub: download a fixture model, search
// and cluster, compare with what the Python reference embeddings give, then work offline.
//
//   scripts/test-demo.sh     or     node --test tests/browser/demo.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHub, launchBrowser, expected, fixtureCases } from './harness.mjs';
import { createServer } from '../../www/serve.mjs';
import { kmeans } from '../../www/app/kmeans.js';

const MODEL = 'tiny-relu-bin';
const REPO = `fixtures/${MODEL}`;
// Downloaded through a failure and a retry; the page then keeps it as its model.
const RETRY_MODEL = 'tiny-gelu-st';
const DOC_INSTRUCTION = 'Represent the Wikipedia document for retrieval: ';
const QUERY_INSTRUCTION = 'Represent the question for retrieving supporting documents: ';
const QUERY = 'what is the capital of France?';

// Pairs whose reference embeddings exist (tests/fixtures/cases.jsonl, embedded by the Python
// reference into tests/fixtures/expected/): the page must embed exactly these pairs. Texts with
// line breaks cannot be one line of the text box, blank ones are dropped by the page.
const cases = fixtureCases().map(([instruction, text], i) => ({ instruction, text, i }));
const withInstruction = (instr) => cases.filter((c) => c.instruction === instr && c.text.trim() && !/[\r\n]/.test(c.text));
const docs = withInstruction(DOC_INSTRUCTION);
const query = withInstruction(QUERY_INSTRUCTION).find((c) => c.text === QUERY);
const plain = withInstruction('');
const embedding = (model, c) => expected(model).cases[c.i].embedding;
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
// The page asks the package for unit-length embeddings (encode's `normalize: true`).
const unit = (v) => v.map((x) => x / Math.sqrt(dot(v, v)));

/** Cosine ranking of `ds` for the query by the reference embeddings (worked out here, not by the page's code). */
const referenceRanking = (model = MODEL, ds = docs) => {
  const q = unit(embedding(model, query));
  return ds
    .map((d, index) => ({ index, score: dot(q, unit(embedding(model, d))) }))
    .sort((a, b) => b.score - a.score);
};

const shots = fs.mkdtempSync(path.join(os.tmpdir(), 'instructor-demo-shots-'));
let web;
let hub;
let browser;
let page;
const consoleErrors = [];

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`)));
}

before(async () => {
  assert.ok(docs.length >= 3 && query && plain.length >= 4, 'fixture cases changed: pick other texts');
  console.log(`screenshots go to ${shots}`);
  web = createServer();
  web.url = await listen(web);
  hub = await startHub();
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
    if (process.env.BROWSER_LOG) console.error(`[browser] ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
});

after(async () => {
  await browser?.close();
  await hub?.stop();
  web?.closeAllConnections();
  web?.close();
});

/** The ranking the page shows: [{ index, score }]. */
const shownRanking = () =>
  page.$$eval('#search-results li', (lis) => lis.map((li) => ({ index: Number(li.dataset.index), score: Number(li.dataset.score) })));

/** Waits until the page shows `want` (same order, scores within 1e-4), or fails showing what it has. */
async function expectRanking(want, what) {
  const ok = await page
    .waitForFunction(
      (w) => {
        const lis = [...document.querySelectorAll('#search-results li')];
        return lis.length === w.length && lis.every((li, i) => Number(li.dataset.index) === w[i].index && Math.abs(Number(li.dataset.score) - w[i].score) < 1e-4);
      },
      want,
      { timeout: 30000 },
    )
    .then(() => true, () => false);
  if (!ok) assert.deepEqual(await shownRanking(), want, `${what}: ranking differs`);
}


test('downloads a fixture model from the mirror with per-file progress', async () => {
  await page.goto(`${web.url}/?hub=${encodeURIComponent(hub.url)}`);
  await page.selectOption('#model-select', REPO);
  await page.click('#load-button');
  await page.waitForFunction((r) => document.getElementById('model-status').textContent.startsWith(`Loaded ${r}`), REPO, { timeout: 60000 });
  const status = await page.textContent('#model-status');
  assert.match(status, /on the CPU \(auto chose it: .+\)/);
  // www/serve.mjs makes the page cross-origin isolated, so the model runs one thread per core.
  const { isolated, cores } = await page.evaluate(() => ({ isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency }));
  assert.equal(isolated, true);
  assert.match(status, new RegExp(`, ${cores} threads?[,.]`));
  const files = await page.$$eval('#downloads .file', (rows) =>
    rows.map((r) => ({ file: r.dataset.file, value: r.querySelector('progress').value, max: r.querySelector('progress').max, text: r.lastChild.textContent })),
  );
  const weights = files.find((f) => f.file === 'pytorch_model.bin');
  assert.ok(weights, `no progress row for the weights: ${JSON.stringify(files)}`);
  assert.equal(weights.value, weights.max);
  assert.match(weights.text, /done/);
  await page.waitForSelector(`#cache-table tr[data-repo="${REPO}"]`);
  assert.match(await page.textContent(`#cache-table tr[data-repo="${REPO}"]`), /complete/);
});

test('search ranks the documents as the reference embeddings do', async () => {
  await page.fill('#doc-instruction', DOC_INSTRUCTION);
  await page.fill('#docs-input', docs.map((d) => d.text).join('\n'));
  await page.fill('#query-instruction', QUERY_INSTRUCTION);
  await page.fill('#query-input', QUERY);
  await expectRanking(referenceRanking(), 'search');
  await page.screenshot({ path: path.join(shots, 'search.png'), fullPage: true });
});

test('documents from a CSV file (quoted fields, text column) rank the same', async () => {
  const reversed = [...docs].reverse();
  const quote = (t) => `"${t.replaceAll('"', '""')}"`;
  const csv = ['id,text', ...reversed.map((d, i) => `${i},${quote(d.text)}`)].join('\r\n');
  await page.setInputFiles('#docs-file', { name: 'docs.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.waitForFunction((n) => document.getElementById('docs-source').textContent === `${n} documents from docs.csv`, docs.length);
  await expectRanking(referenceRanking(MODEL, reversed), 'search over a CSV file');
  await page.click('#docs-file-clear');
  await expectRanking(referenceRanking(), 'search over the text box again');
});

test('changing the query instruction changes the scores, and changing it back restores them', async () => {
  const before = await shownRanking();
  await page.fill('#query-instruction', '');
  await page.waitForFunction(
    (b) => {
      const lis = [...document.querySelectorAll('#search-results li')];
      return lis.length === b.length && lis.some((li) => Math.abs(Number(li.dataset.score) - b.find((x) => x.index === Number(li.dataset.index)).score) > 1e-4);
    },
    before,
    { timeout: 30000 },
  );
  await page.fill('#query-instruction', QUERY_INSTRUCTION);
  await expectRanking(referenceRanking(), 'search after restoring the instruction');
});

test('clustering matches k-means on the reference embeddings; the plot has one point per text', async () => {
  await page.fill('#cluster-instruction', '');
  await page.fill('#cluster-input', plain.map((c) => c.text).join('\n'));
  await page.fill('#cluster-k', '2');
  await page.fill('#cluster-seed', '42');
  await page.click('#cluster-button');
  await page.waitForFunction((n) => document.querySelectorAll('#cluster-plot circle').length === n, plain.length, { timeout: 30000 });
  const shown = await page.$$eval('#cluster-plot circle', (cs) => cs.map((c) => Number(c.dataset.cluster)));
  const want = kmeans(plain.map((c) => unit(embedding(MODEL, c))), 2, { seed: 42 }).assignments;
  assert.deepEqual(shown, [...want]);
  assert.equal(await page.$$eval('#cluster-table tbody tr', (r) => r.length), 2);

  await page.click('#cluster-example');
  await page.waitForFunction(() => document.querySelectorAll('#cluster-plot circle').length === 32, null, { timeout: 60000 });
  assert.equal(await page.$$eval('#cluster-table tbody tr', (r) => r.length), 4);
  const hover = await page.$eval('#cluster-plot circle', (c) => c.querySelector('title').textContent);
  assert.ok(hover.length > 10, 'a point carries its text');
  const shot = path.join(shots, 'clusters.png');
  await page.locator('#cluster-panel').screenshot({ path: shot });
  assert.ok(fs.statSync(shot).size > 5000, 'the cluster screenshot is empty');
});

test('a download cut off by a vanished hub says what was kept, and Retry resumes it', async () => {
  const errorsBefore = consoleErrors.length;
  await hub.faults({ delay_ms_per_chunk: 150 });
  await page.selectOption('#model-select', `fixtures/${RETRY_MODEL}`);
  await page.click('#load-button');
  await page.waitForFunction(() => document.querySelector('#downloads [data-file="model.safetensors"] progress')?.value > 0, null, { timeout: 30000 });
  await hub.stop();
  await page.waitForSelector('#model-error:not([hidden])', { timeout: 30000 });
  assert.match(await page.textContent('#model-error-text'), /Download failed: .* are kept; Retry resumes where it stopped/);
  assert.match(await page.textContent(`#cache-table tr[data-repo="fixtures/${RETRY_MODEL}"]`), /partial/);

  hub = await startHub({ port: hub.port });
  await page.click('#retry-button');
  await page.waitForFunction((r) => document.getElementById('model-status').textContent.startsWith(`Loaded ${r}`), `fixtures/${RETRY_MODEL}`, { timeout: 60000 });
  const ranged = (await hub.stats()).log.filter((l) => l.range && l.path.includes('model.safetensors'));
  assert.ok(ranged.length >= 1, `the retry did not resume with Range: ${JSON.stringify((await hub.stats()).log)}`);
  assert.ok(await page.isHidden('#model-error'));
  await expectRanking(referenceRanking(RETRY_MODEL), `search with ${RETRY_MODEL}`);
  // The browser logs the refused connections; those are the point of this test.
  const caused = consoleErrors.splice(errorsBefore);
  assert.ok(caused.every((e) => /net::ERR_|Failed to fetch/.test(e)), caused.join('\n'));
});

test('asking for WebGPU where it cannot run falls back to the CPU and says so', async () => {
  await page.selectOption('#device-select', 'webgpu');
  await page.click('#load-button');
  await page.waitForFunction(() => /Loaded/.test(document.getElementById('model-status').textContent), null, { timeout: 60000 });
  assert.match(await page.textContent('#model-status'), /^WebGPU was not available \(.+\); running on the CPU instead\. Loaded .+ on the CPU/);
  await expectRanking(referenceRanking(RETRY_MODEL), 'search after the fallback');
});

test('Delete removes a cached model', async () => {
  await page.click(`#cache-table tr[data-repo="${REPO}"] button`);
  await page.waitForSelector(`#cache-table tr[data-repo="${REPO}"]`, { state: 'detached' });
  const left = await page.evaluate(() => import('./app/package.js').then(({ InstructorWorker }) => InstructorWorker.cachedModels()));
  assert.deepEqual(left.map((m) => m.repo), [`fixtures/${RETRY_MODEL}`]);
});

test('with the hub and the web server stopped, a reload still searches', async () => {
  await page.waitForFunction(() => document.getElementById('offline-status').dataset.state === 'ready', null, { timeout: 30000 });
  await hub.stop();
  web.closeAllConnections();
  await new Promise((r) => web.close(r));
  await page.reload();
  await page.waitForFunction(() => /from the cache/.test(document.getElementById('model-status').textContent), null, { timeout: 60000 });
  // The service worker's copies keep the page isolated and the threaded build complete.
  const cores = await page.evaluate(() => crossOriginIsolated && navigator.hardwareConcurrency);
  assert.match(await page.textContent('#model-status'), new RegExp(`, ${cores} threads, from the cache`));
  await expectRanking(referenceRanking(RETRY_MODEL), 'offline search');
  // The badge re-checks the service worker's cache after the reload, asynchronously.
  await page.waitForFunction(() => document.getElementById('offline-status').dataset.state === 'ready', null, { timeout: 30000 });
  await page.screenshot({ path: path.join(shots, 'offline.png'), fullPage: true });
});

test('no console errors', () => {
  assert.deepEqual(consoleErrors, []);
});
