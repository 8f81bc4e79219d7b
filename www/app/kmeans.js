// k-means (Lloyd) with k-means++ seeding from a seeded RNG, so the same texts, k and seed always
// give the same clusters.

import { mulberry32 } from './rng.js';

function dist2(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

/** Index of the closest centroid (the lowest index on ties). */
function nearest(p, centroids) {
  let best = 0;
  let bestD = Infinity;
  centroids.forEach((c, j) => {
    const d = dist2(p, c);
    if (d < bestD) {
      bestD = d;
      best = j;
    }
  });
  return best;
}

/** k-means++: each next centre is drawn with probability proportional to its squared distance. */
function seedCentroids(points, k, rand) {
  const centroids = [Float64Array.from(points[Math.floor(rand() * points.length)])];
  const d2 = points.map((p) => dist2(p, centroids[0]));
  while (centroids.length < k) {
    const total = d2.reduce((a, b) => a + b, 0);
    let pick;
    if (total === 0) {
      // Fewer distinct points than k: any point is as good as another.
      pick = Math.floor(rand() * points.length);
    } else {
      let r = rand() * total;
      pick = d2.findIndex((d) => (r -= d) < 0);
      if (pick < 0) pick = d2.findLastIndex((d) => d > 0); // rounding at the very end
    }
    const c = Float64Array.from(points[pick]);
    centroids.push(c);
    points.forEach((p, i) => {
      d2[i] = Math.min(d2[i], dist2(p, c));
    });
  }
  return centroids;
}

/**
 * Clusters `points` (arrays of equal length) into `k` groups (k is capped at the number of
 * points). Returns `{ assignments: Int32Array, centroids, inertia, iterations }`.
 */
export function kmeans(points, k, { seed = 1, maxIterations = 300 } = {}) {
  if (points.length === 0) return { assignments: new Int32Array(0), centroids: [], inertia: 0, iterations: 0 };
  k = Math.max(1, Math.min(Math.floor(k), points.length));
  const dim = points[0].length;
  const centroids = seedCentroids(points, k, mulberry32(seed));
  const assignments = new Int32Array(points.length).fill(-1);
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    let changed = false;
    points.forEach((p, i) => {
      const index = nearest(p, centroids);
      if (index !== assignments[i]) {
        assignments[i] = index;
        changed = true;
      }
    });
    if (!changed) break;
    const counts = new Int32Array(k);
    for (const a of assignments) counts[a]++;
    for (let c = 0; c < k; c++) {
      if (counts[c] > 0) continue;
      // An empty cluster takes the point farthest from its centre (from a cluster that can spare
      // it), so k clusters survive.
      let far = -1;
      let farD = -1;
      points.forEach((p, i) => {
        const d = dist2(p, centroids[assignments[i]]);
        if (counts[assignments[i]] > 1 && d > farD) {
          farD = d;
          far = i;
        }
      });
      counts[assignments[far]]--;
      assignments[far] = c;
      counts[c] = 1;
    }
    centroids.forEach((_, c) => {
      centroids[c] = new Float64Array(dim);
    });
    points.forEach((p, i) => {
      const s = centroids[assignments[i]];
      for (let j = 0; j < dim; j++) s[j] += p[j];
    });
    centroids.forEach((s, c) => {
      for (let j = 0; j < dim; j++) s[j] /= counts[c];
    });
  }
  const inertia = points.reduce((acc, p, i) => acc + dist2(p, centroids[assignments[i]]), 0);
  return { assignments, centroids, inertia, iterations };
}
