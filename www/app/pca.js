// 2-D PCA for the scatter plot: the top two principal axes by power iteration on the centred
// data (v ← Xᵀ(X v)), which costs O(n·dim) per step and never forms the dim × dim covariance.

import { mulberry32 } from './rng.js';
import { dot } from './vectors.js';

function centred(points) {
  const n = points.length;
  const dim = points[0].length;
  const mean = new Float64Array(dim);
  for (const p of points) for (let j = 0; j < dim; j++) mean[j] += p[j] / n;
  return points.map((p) => Float64Array.from(p, (v, j) => v - mean[j]));
}

/** Xᵀ(X v) minus its components along the axes already found. */
function step(x, v, found) {
  const out = new Float64Array(v.length);
  for (const row of x) {
    const s = dot(row, v);
    for (let j = 0; j < v.length; j++) out[j] += s * row[j];
  }
  for (const f of found) {
    const s = dot(out, f);
    for (let j = 0; j < v.length; j++) out[j] -= s * f[j];
  }
  return out;
}

function norm(v) {
  return Math.sqrt(dot(v, v));
}

/**
 * The leading axis of the centred data orthogonal to `found`, or null when what is left is
 * rounding noise (`step` of a unit vector has the length of the variance along it, times n).
 */
function principalAxis(x, found, rand, noise, { iterations = 500, tolerance = 1e-10 } = {}) {
  let v = Float64Array.from({ length: x[0].length }, () => rand() - 0.5);
  v = v.map((a) => a / norm(v));
  for (let it = 0; it < iterations; it++) {
    const next = step(x, v, found);
    const length = norm(next);
    if (length <= noise) return null;
    const unit = next.map((a) => a / length);
    const delta = Math.abs(1 - Math.abs(dot(unit, v)));
    v = unit;
    if (delta < tolerance) break;
  }
  // Fix the sign (an eigenvector's sign is arbitrary) so repeated runs draw the same picture.
  const big = v.reduce((best, a, j) => (Math.abs(a) > Math.abs(v[best]) ? j : best), 0);
  return v[big] < 0 ? v.map((a) => -a) : v;
}

/**
 * Projects `points` onto their first two principal axes. Returns `{ coords: [[x, y], ...],
 * variance: [v1, v2], totalVariance }` (variance along each axis, 0 where the data has none;
 * and over all axes, for the share of the picture the plot shows).
 */
export function pca2(points) {
  if (points.length === 0) return { coords: [], variance: [0, 0], totalVariance: 0 };
  const x = centred(points);
  const sumSquares = x.reduce((s, row) => s + dot(row, row), 0);
  const rand = mulberry32(0x5eed);
  const axes = [];
  for (let a = 0; a < 2; a++) {
    const axis = principalAxis(x, axes, rand, 1e-9 * sumSquares);
    if (!axis) break;
    axes.push(axis);
  }
  const coords = x.map((row) => [0, 1].map((a) => (axes[a] ? dot(row, axes[a]) : 0)));
  const variance = [0, 1].map((a) => coords.reduce((s, c) => s + c[a] * c[a], 0) / points.length);
  const totalVariance = sumSquares / points.length;
  return { coords, variance, totalVariance };
}
