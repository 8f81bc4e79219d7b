import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createServer } from '../../www/serve.mjs';

let server;
let base;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'serve-test-'));

before(async () => {
  fs.mkdirSync(path.join(tmp, 'www/app'), { recursive: true });
  fs.mkdirSync(path.join(tmp, 'pkg/wasm'), { recursive: true });
  fs.writeFileSync(path.join(tmp, 'www/index.html'), '<!doctype html>');
  fs.writeFileSync(path.join(tmp, 'www/app/main.js'), 'export {};');
  fs.writeFileSync(path.join(tmp, 'pkg/index.js'), 'export {};');
  fs.writeFileSync(path.join(tmp, 'pkg/wasm/m_bg.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d]));
  fs.writeFileSync(path.join(tmp, 'secret.txt'), 'no');
  server = createServer({ www: path.join(tmp, 'www'), pkg: path.join(tmp, 'pkg') });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('serves www/ at / and pkg/ at /pkg/ with the right MIME types', async () => {
  const cases = [
    ['/', 'text/html; charset=utf-8'],
    ['/index.html?hub=http://x', 'text/html; charset=utf-8'],
    ['/app/main.js', 'text/javascript; charset=utf-8'],
    ['/pkg/index.js', 'text/javascript; charset=utf-8'],
    ['/pkg/wasm/m_bg.wasm', 'application/wasm'],
  ];
  for (const [url, type] of cases) {
    const r = await fetch(base + url);
    assert.equal(r.status, 200, url);
    assert.equal(r.headers.get('content-type'), type, url);
    await r.arrayBuffer();
  }
});

test('nothing outside the two folders', async () => {
  for (const url of ['/../secret.txt', '/%2e%2e/secret.txt', '/pkg/..%2fsecret.txt', '/missing.js', '/%zz']) {
    const r = await fetch(base + url);
    assert.equal(r.status, 404, url);
    await r.text();
  }
});

test('sends COOP/COEP by default (threads), and not with isolated: false', async () => {
  const r = await fetch(`${base}/`);
  await r.text();
  assert.equal(r.headers.get('cross-origin-opener-policy'), 'same-origin');
  assert.equal(r.headers.get('cross-origin-embedder-policy'), 'require-corp');
  const plain = createServer({ www: path.join(tmp, 'www'), pkg: path.join(tmp, 'pkg'), isolated: false });
  await new Promise((res) => plain.listen(0, '127.0.0.1', res));
  try {
    const p = await fetch(`http://127.0.0.1:${plain.address().port}/`);
    await p.text();
    assert.equal(p.status, 200);
    assert.equal(p.headers.get('cross-origin-opener-policy'), null);
    assert.equal(p.headers.get('cross-origin-embedder-policy'), null);
  } finally {
    plain.close();
  }
});
