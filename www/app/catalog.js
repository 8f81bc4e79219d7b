// The models the picker offers. The hub stores every INSTRUCTOR checkpoint once, in f32
// (pytorch_model.bin), so the download is the same for both dtypes; the dtype decides how the
// weights are held in memory (f16 halves it). Sizes are the hub's (approximate; decimal units).

/** wasm32 addresses at most 4 GiB: the weights, activations and the JS-side file copies must fit. */
const WASM_LIMIT = 4 * 2 ** 30;

const MB = 1e6;

export const MODELS = [
  { repo: 'hkunlp/instructor-base', params: 110e6, download: 443 * MB },
  { repo: 'hkunlp/instructor-large', params: 335e6, download: 1345 * MB },
  { repo: 'hkunlp/instructor-xl', params: 1241e6, download: 4965 * MB },
];

/** The tiny test models offered when the page points at a local mirror (`?hub=`). */
export const FIXTURES = ['fixtures/tiny-relu-bin', 'fixtures/tiny-gelu-st', 'fixtures/tiny-relu-f16'].map((repo) => ({
  repo,
  fixture: true,
}));

/** Bytes the weights take in memory for `dtype`. */
export function memoryBytes(model, dtype) {
  return model.params * (dtype === 'f16' ? 2 : 4);
}

/**
 * Why `model` cannot run on the wasm CPU path, or null. The loader keeps the downloaded files
 * in the JS heap while it builds the model, so the f32 download counts on top of the weights.
 */
export function cpuBlocker(model, dtype) {
  if (model.fixture) return null;
  const peak = model.download + memoryBytes(model, dtype);
  if (peak <= WASM_LIMIT) return null;
  return `${model.repo.split('/')[1]} needs about ${(peak / 2 ** 30).toFixed(1)} GiB while loading; a page's WebAssembly memory ends at 4 GiB. It needs the WebGPU backend.`;
}
