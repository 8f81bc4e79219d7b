import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rank } from '../../www/app/rank.js';
import { cosine, rows } from '../../www/app/vectors.js';

test('ranks by cosine, best first, ties in document order', () => {
  const q = [1, 0];
  const docs = [[0, 1], [2, 0], [1, 1], [1, 1], [-1, 0]];
  const r = rank(q, docs);
  assert.deepEqual(r.map((x) => x.index), [1, 2, 3, 0, 4]);
  assert.ok(Math.abs(r[1].score - Math.SQRT1_2) < 1e-12);
  assert.equal(r[4].score, -1);
});

test('cosine ignores length; zero vectors score 0 instead of NaN', () => {
  assert.ok(Math.abs(cosine([1, 2, 3], [2, 4, 6]) - 1) < 1e-12);
  assert.equal(cosine([0, 0], [1, 1]), 0);
});

test('rows views the package output without copying', () => {
  const data = new Float32Array([1, 2, 3, 4, 5, 6]);
  const r = rows({ data, dims: [3, 2] });
  assert.deepEqual(r.map((x) => [...x]), [[1, 2], [3, 4], [5, 6]]);
  assert.equal(r[1].buffer, data.buffer);
});
