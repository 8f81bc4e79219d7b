// Shared by the browser tests and the benchmark: a static server for pkg/ and the test pages,
// the mock hub (crates/mock-hub), and Debian's Chromium driven by playwright-core.

import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { ISOLATION_HEADERS } from '../../www/serve.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.jsonl': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.d.ts': 'text/plain',
};

/**
 * Serves pkg/, tests/browser/pages/ and tests/fixtures/ from 127.0.0.1 (the page's origin), or
 * the whole folder `dir` (an app's build; `/` is its index.html); `isolated` adds the COOP/COEP
 * headers that give the page wasm threads; `headers` are added to every answer.
 */
export function startStatic({ isolated = false, headers: extra = {}, dir = null } = {}) {
  const root = dir ?? ROOT;
  // onnxruntime-web: installed for the benchmark only (bench.mjs --onnx).
  const allowed = dir ? [''] : ['pkg/', 'tests/browser/pages/', 'tests/fixtures/', 'benches/', 'tests/browser/node_modules/onnxruntime-web/'];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const rel = decodeURIComponent(url.pathname).replace(/^\/+/, '') || 'index.html';
    const file = path.join(root, rel);
    if (!allowed.some((a) => rel.startsWith(a)) || !file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end('not found');
      return;
    }
    const headers = { 'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' };
    if (isolated) Object.assign(headers, ISOLATION_HEADERS);
    Object.assign(headers, extra);
    res.writeHead(200, headers);
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

/** The mock hub binary: $MOCK_HUB_BIN, or built with cargo (once). */
export function mockHubBin() {
  if (process.env.MOCK_HUB_BIN) return process.env.MOCK_HUB_BIN;
  execFileSync('cargo', ['build', '--quiet', '-p', 'instructor-mock-hub'], { cwd: ROOT, stdio: 'inherit' });
  const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target');
  return path.join(targetDir, 'debug', 'mock_hub');
}

/**
 * Starts the mock hub over `root` (repos `fixtures/<folder>`). Returns { url, faults(f), reset(),
 * stats(), stop() }.
 */
export async function startHub({ root = path.join(ROOT, 'tests/fixtures/models'), port = 0, bin = mockHubBin() } = {}) {
  const proc = spawn(bin, ['--root', root, '--port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`mock hub exited with ${code}`)));
  });
  const control = async (p, body) => {
    const r = await fetch(`${url}/__mock/${p}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`mock hub ${p}: ${r.status}`);
    return r.json();
  };
  return {
    url,
    port: Number(new URL(url).port),
    faults: (f) => control('faults', f),
    reset: () => control('reset', {}),
    stats: () => control('stats'),
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

/**
 * Headless Chromium with a fresh profile (IndexedDB persists within it). `webgpu` adds
 * `--enable-unsafe-webgpu`: with no GPU, WebGPU then runs on SwiftShader (a CPU adapter).
 */
export async function launchBrowser({ webgpu = false } = {}) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'instructor-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      ...(webgpu ? ['--enable-unsafe-webgpu'] : []),
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Opens a page and waits until `ready` holds in it: by default the test page (which imports the
 * package as a plain ES module) with the package loaded.
 */
export async function openPage(context, staticUrl, { path: page = '/tests/browser/pages/test.html', ready = () => window.IE !== undefined } = {}) {
  const p = await context.newPage();
  p.on('console', (m) => {
    if (m.type() === 'error' || process.env.BROWSER_LOG) console.error(`[browser] ${m.text()}`);
  });
  p.on('pageerror', (e) => console.error(`[browser error] ${e.message}`));
  await p.goto(`${staticUrl}${page}`);
  await p.waitForFunction(ready, null, { timeout: 30000 });
  return p;
}

/**
 * Writes a random-weight model of `shape` (examples/random_model.rs: base, large, small, ...) to
 * `dir` unless a model is there already; returns the size of its encoder weights file.
 */
export function randomModel(shape, dir) {
  if (!fs.existsSync(path.join(dir, 'modules.json'))) {
    console.error(`writing a random-weight ${shape}-shape model to ${dir}`);
    execFileSync('cargo', ['run', '--quiet', '--example', 'random_model', '--', shape, dir], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const file = ['model.safetensors', 'pytorch_model.bin'].find((f) => fs.existsSync(path.join(dir, f)));
  return fs.statSync(path.join(dir, file)).size;
}

/** The fixture models every suite checks, and their repos on the mock hub. */
export const MODELS = ['tiny-relu-bin', 'tiny-gelu-st', 'tiny-relu-f16'];
export const repo = (m) => `fixtures/${m}`;

export function fixtureCases() {
  return fs
    .readFileSync(path.join(ROOT, 'tests/fixtures/cases.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const c = JSON.parse(l);
      return [c.instruction ?? '', c.text];
    });
}

export function expected(model) {
  return JSON.parse(fs.readFileSync(path.join(ROOT, `tests/fixtures/expected/${model}.json`), 'utf8'));
}

/** Largest absolute difference between row-major `data` (n × dim) and the reference cases. */
export function maxDiff(data, dim, cases) {
  let worst = 0;
  cases.forEach((c, i) => {
    c.embedding.forEach((v, j) => {
      worst = Math.max(worst, Math.abs(v - data[i * dim + j]));
    });
  });
  return worst;
}

/**
 * In a test page: loads `repo` from the hub at `hubUrl` and embeds the fixture pairs
 * (`T.loadAndEncode`; `flags`: `{ worker, encode }`).
 */
export function loadEncode(page, hubUrl, repo, options = {}, flags = {}) {
  return page.evaluate(([r, o, p, f]) => T.loadAndEncode(r, o, p, f), [repo, { hubUrl, ...options }, fixtureCases(), flags]);
}

/**
 * What a test file of the package needs, started: the static server, the mock hub over the
 * fixture models, Chromium (`launchBrowser`'s options) and the test page. `stop` ends them all;
 * `loadEncode(repo, options, flags)` is [`loadEncode`] in that page with that hub.
 */
export async function startSuite(browserOptions = {}) {
  const web = await startStatic();
  const hub = await startHub();
  const browser = await launchBrowser(browserOptions);
  const page = await openPage(browser.context, web.url);
  return {
    web,
    hub,
    browser,
    page,
    loadEncode: (repo, options = {}, flags = {}) => loadEncode(page, hub.url, repo, options, flags),
    async stop() {
      await browser.close();
      await hub.stop();
      await web.close();
    },
  };
}
