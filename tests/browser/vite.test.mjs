// The package as most web developers consume it: imported by name in an app that `vite build`
// bundles (tests/browser/vite/, the configuration pkg/README.md gives). The built app, served as
// a site would serve it, embeds like the Python reference on the page and in InstructorWorker,
// single-threaded and, cross-origin isolated, on one thread per core.
//
//   scripts/test-browser.sh        (builds first)   or   node --test tests/browser/vite.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, startStatic, startHub, launchBrowser, openPage, fixtureCases, expected, maxDiff, repo } from './harness.mjs';

const APP = path.join(ROOT, 'tests/browser/vite');
const VITE = path.join(ROOT, 'tests/browser/node_modules/.bin/vite');
const MODEL = 'tiny-relu-bin';

let out, plainWeb, isolatedWeb, hub, browser;

before(async () => {
  out = fs.mkdtempSync(path.join(os.tmpdir(), 'instructor-vite-'));
  execFileSync(VITE, ['build', '--outDir', out, '--emptyOutDir', '--logLevel', 'warn'], { cwd: APP, stdio: 'inherit' });
  plainWeb = await startStatic({ dir: out });
  isolatedWeb = await startStatic({ dir: out, isolated: true });
  hub = await startHub();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await hub?.stop();
  await plainWeb?.close();
  await isolatedWeb?.close();
  if (out) fs.rmSync(out, { recursive: true, force: true });
});

/** Opens the built app at `web` and embeds the fixture pairs, on the page or in the worker. */
async function embed(web, worker) {
  const page = await openPage(browser.context, web.url, { path: '/', ready: () => window.ready });
  try {
    return await page.evaluate(([r, h, p, w]) => window.embed(r, h, p, w), [repo(MODEL), hub.url, fixtureCases(), worker]);
  } finally {
    await page.close();
  }
}

test('the build holds the worker and the three wasm modules as files of their own', () => {
  const assets = fs.readdirSync(path.join(out, 'assets'));
  // wasm/ (relaxed SIMD), wasm-simd128/ (its fallback) and wasm-threads/.
  assert.equal(assets.filter((f) => f.endsWith('.wasm')).length, 3, `${assets}`);
  assert.ok(assets.some((f) => /^worker-.*\.js$/.test(f)), `no worker chunk: ${assets}`);
});

test('the bundled app embeds like the Python reference, on the page and in InstructorWorker', { timeout: 300000 }, async () => {
  const exp = expected(MODEL);
  for (const [web, isolated] of [[plainWeb, false], [isolatedWeb, true]]) {
    for (const worker of [false, true]) {
      const where = `${isolated ? 'isolated' : 'plain'} page, ${worker ? 'InstructorWorker' : 'Instructor'}`;
      const r = await embed(web, worker);
      assert.equal(r.isolated, isolated, where);
      // Threads inside the worker need its own pool to start from the worker's chunk.
      if (isolated) assert.ok(r.threads > 1, `${where}: ${r.threads} thread(s)`);
      else assert.equal(r.threads, 1, where);
      const d = maxDiff(r.data, exp.dim, exp.cases);
      assert.ok(d < 1e-5, `${where}: max abs diff ${d}`);
    }
  }
});
