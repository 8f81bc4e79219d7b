import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kmeans } from '../../www/app/kmeans.js';
import { mulberry32 } from '../../www/app/rng.js';

/** `n` points around each of `centres`, spread `noise`. */
function blobs(centres, n, noise, seed = 7) {
  const rand = mulberry32(seed);
  const points = [];
  const labels = [];
  centres.forEach((c, l) => {
    for (let i = 0; i < n; i++) {
      points.push(c.map((x) => x + (rand() - 0.5) * noise));
      labels.push(l);
    }
  });
  return { points, labels };
}

/** Whether two labelings are the same partition (cluster numbers may differ). */
function samePartition(a, b) {
  const map = new Map();
  return a.every((x, i) => {
    if (!map.has(x)) map.set(x, b[i]);
    return map.get(x) === b[i];
  }) && new Set(map.values()).size === map.size;
}

test('finds well-separated blobs', () => {
  const { points, labels } = blobs([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], 15, 1);
  const { assignments, centroids } = kmeans(points, 4, { seed: 3 });
  assert.ok(samePartition([...assignments], labels));
  assert.equal(centroids.length, 4);
});

test('same seed, same clusters; the seed matters on ambiguous data', () => {
  const { points } = blobs([[0, 0]], 60, 10);
  const a = kmeans(points, 5, { seed: 1 });
  const b = kmeans(points, 5, { seed: 1 });
  assert.deepEqual([...a.assignments], [...b.assignments]);
  const others = [2, 3, 4, 5, 6].map((seed) => [...kmeans(points, 5, { seed }).assignments].join());
  assert.ok(others.some((o) => o !== [...a.assignments].join()), 'no seed changed anything');
});

test('k-means++ seeding beats a bad start: inertia is near the best of many seeds', () => {
  const { points } = blobs([[0, 0], [6, 0], [0, 6], [6, 6], [3, 3]], 10, 1.5);
  const inertias = Array.from({ length: 20 }, (_, s) => kmeans(points, 5, { seed: s }).inertia);
  const best = Math.min(...inertias);
  const median = inertias.sort((x, y) => x - y)[10];
  assert.ok(median < best * 1.5, `median ${median}, best ${best}`);
});

test('k is capped at the number of points, every cluster is non-empty', () => {
  const points = [[0, 0], [1, 1], [5, 5]];
  const { assignments } = kmeans(points, 10);
  assert.deepEqual([...assignments].sort(), [0, 1, 2]);
  const dup = kmeans([[1, 1], [1, 1], [1, 1], [2, 2]], 3, { seed: 9 });
  assert.equal(new Set(dup.assignments).size, 3);
});

test('no points, no clusters', () => {
  assert.equal(kmeans([], 3).assignments.length, 0);
});
