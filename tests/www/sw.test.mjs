// The service worker's precache list must name every file the page loads, or the page breaks
// offline in a way no online test notices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WWW = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../www');

test('the precache list is exactly the page files in www/', () => {
  const source = fs.readFileSync(path.join(WWW, 'sw.js'), 'utf8');
  const list = /const SHELL = \[([^\]]*)\]/.exec(source)[1].match(/'[^']*'/g).map((s) => s.slice(1, -1));
  const onDisk = fs
    .readdirSync(WWW, { recursive: true })
    .filter((f) => fs.statSync(path.join(WWW, f)).isFile())
    .map((f) => f.split(path.sep).join('/'))
    .filter((f) => !['sw.js', 'serve.mjs'].includes(f));
  assert.deepEqual(list.filter((f) => f !== './').sort(), onDisk.sort());
  assert.ok(list.includes('./'), 'the page is also requested as ./');
});
