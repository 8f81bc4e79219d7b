#!/usr/bin/env node
// A tiny static server for the demo (Node built-ins only): www/ at /, the built npm package
// (pkg/) at /pkg/. Correct MIME types (.wasm as application/wasm, which streaming compilation
// requires); no caching headers beyond revalidation, since the service worker does the caching.
// By default it makes the page cross-origin isolated (COOP/COEP), so the package runs its
// threaded build; `--no-isolation` leaves the headers out (single-threaded).
//
//   node www/serve.mjs [--port 8080] [--host 127.0.0.1] [--no-isolation]

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const WWW = path.dirname(fileURLToPath(import.meta.url));
const PKG = path.join(WWW, '..', 'pkg');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

/** The file for a URL path, or null (outside the served folders, or missing). */
function resolve(urlPath, roots) {
  let rel;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  const [root, sub] = rel.startsWith('/pkg/') ? [roots.pkg, rel.slice('/pkg/'.length)] : [roots.www, rel.slice(1)];
  let file = path.resolve(root, sub);
  if (file !== root && !file.startsWith(root + path.sep)) return null;
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
  return fs.existsSync(file) ? file : null;
}

/**
 * The headers that make a page cross-origin isolated (`crossOriginIsolated`, which gives it
 * `SharedArrayBuffer` and so wasm threads). Under COEP `require-corp` every cross-origin resource
 * the page loads must allow it by CORS or `Cross-Origin-Resource-Policy`; the hub's answers carry
 * CORS headers.
 */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/** An http.Server for the demo (not yet listening); `isolated` sends ISOLATION_HEADERS. */
export function createServer({ www = WWW, pkg = PKG, isolated = true } = {}) {
  const roots = { www: path.resolve(www), pkg: path.resolve(pkg) };
  return http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://localhost');
    const file = req.method === 'GET' || req.method === 'HEAD' ? resolve(pathname, roots) : null;
    if (!file) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: ${pathname}\n`);
      return;
    }
    res.writeHead(200, {
      'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': fs.statSync(file).size,
      'Cache-Control': 'no-cache',
      ...(isolated ? ISOLATION_HEADERS : {}),
    });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const host = arg('--host', '127.0.0.1');
  const server = createServer({ isolated: !process.argv.includes('--no-isolation') });
  server.listen(Number(arg('--port', 8080)), host, () => {
    if (!fs.existsSync(path.join(PKG, 'wasm'))) console.warn('serve: pkg/wasm/ is missing: build the package first (scripts/build-wasm.sh)');
    console.log(`serving http://${host}:${server.address().port}/  (www/ and pkg/ at /pkg/)`);
  });
}
