// Row views, normalisation and cosine similarity over the package's `{ data, dims }` output.

/** The rows of a row-major `{ data, dims: [n, dim] }` as subarray views (no copies). */
export function rows({ data, dims: [n, dim] }) {
  return Array.from({ length: n }, (_, i) => data.subarray(i * dim, (i + 1) * dim));
}

export function dot(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** A unit-length copy (a zero vector stays zero rather than becoming NaN). */
export function normalized(v) {
  const norm = Math.sqrt(dot(v, v));
  const out = new Float64Array(v.length);
  if (norm > 0) for (let i = 0; i < v.length; i++) out[i] = v[i] / norm;
  return out;
}

export function cosine(a, b) {
  const d = Math.sqrt(dot(a, a) * dot(b, b));
  return d > 0 ? dot(a, b) / d : 0;
}
