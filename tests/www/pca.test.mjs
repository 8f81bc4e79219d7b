import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pca2 } from '../../www/app/pca.js';
import { mulberry32 } from '../../www/app/rng.js';

function correlation(a, b) {
  const mean = (v) => v.reduce((s, x) => s + x, 0) / v.length;
  const [ma, mb] = [mean(a), mean(b)];
  let [sab, saa, sbb] = [0, 0, 0];
  a.forEach((x, i) => {
    sab += (x - ma) * (b[i] - mb);
    saa += (x - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  });
  return sab / Math.sqrt(saa * sbb);
}

test('recovers the axes of data stretched along known directions', () => {
  // Variance 25 along (1,1,0,0)/√2, 4 along (0,0,1,0), a little noise elsewhere.
  const rand = mulberry32(11);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const points = Array.from({ length: 2000 }, () => {
    const a = 5 * gauss();
    const b = 2 * gauss();
    return [a / Math.SQRT2 + 0.01 * gauss(), a / Math.SQRT2, b, 0.01 * gauss()];
  });
  const { coords, variance, totalVariance } = pca2(points);
  assert.ok(Math.abs(variance[0] - 25) < 2.5, `v1 ${variance[0]}`);
  assert.ok(Math.abs(variance[1] - 4) < 0.4, `v2 ${variance[1]}`);
  assert.ok((variance[0] + variance[1]) / totalVariance > 0.999);
  // The first coordinate is the projection on (1,1,0,0)/√2 (up to sign and the sample's tilt).
  const proj = points.map((p) => (p[0] + p[1]) / Math.SQRT2);
  assert.ok(Math.abs(correlation(coords.map((c) => c[0]), proj)) > 0.99999);
});

test('deterministic, and degenerate inputs give zeros instead of NaN', () => {
  const points = [[1, 2, 3], [2, 3, 4.5], [0, 1, 1], [4, 4, 4]];
  assert.deepEqual(pca2(points), pca2(points));
  const same = pca2([[1, 1], [1, 1]]);
  assert.deepEqual(same.coords, [[0, 0], [0, 0]]);
  const line = pca2([[0, 0], [1, 1], [2, 2]]);
  assert.ok(line.coords.every(([x, y]) => Number.isFinite(x) && Math.abs(y) < 1e-9));
  assert.deepEqual(pca2([]).coords, []);
});
