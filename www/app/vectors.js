// Row views and cosine similarity over the package's `{ data, dims }` output.

/** The rows of a row-major `{ data, dims: [n, dim] }` as subarray views (no copies). */
export function rows({ data, dims: [n, dim] }) {
  return Array.from({ length: n }, (_, i) => data.subarray(i * dim, (i + 1) * dim));
}

export function dot(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function cosine(a, b) {
  const d = Math.sqrt(dot(a, a) * dot(b, b));
  return d > 0 ? dot(a, b) / d : 0;
}
