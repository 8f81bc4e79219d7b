// instructor-embed: INSTRUCTOR text embeddings (hkunlp/instructor-*) in the browser.
//
//   import { Instructor } from 'instructor-embed';
//   const model = await Instructor.load('hkunlp/instructor-base', { onProgress: console.log });
//   const { data, dims } = await model.encode([['Represent the Science title: ', '3D ActionSLAM']]);
//
// The model runs in WebAssembly (SIMD) on the page's thread, its matrix products on a pool of
// Web Workers when the page is cross-origin isolated; `InstructorWorker` has the same methods and
// runs it in a Web Worker. Weights are streamed from the hub once and cached in
// IndexedDB (database `instructor-embed`); later loads make no network request.

import * as cache from './cache.js';
import { fetchModel, InstructorError } from './hub.js';

export { InstructorError };

const DEFAULT_HUB = 'https://huggingface.co';

/** The wasm-bindgen module in use (`wasm/` or `wasm-threads/`); set by `init`. */
let wasm = null;
let wasmReady = null;

/**
 * Instantiates the wasm module once. Resolves to the number of threads the matrix products run on.
 *
 * When the page is cross-origin isolated (so `SharedArrayBuffer` exists) and the package has its
 * threaded build (`wasm-threads/`), that build is used and its thread pool started with one Web
 * Worker per logical core; otherwise (or if that fails, with a console warning saying why) the
 * single-threaded `wasm/`. `wasmUrl` overrides where the single-threaded .wasm is fetched from;
 * the threaded one is always next to its JS.
 */
export function init(wasmUrl) {
  if (!wasmReady) {
    wasmReady = instantiate(wasmUrl).catch((e) => {
      wasmReady = null;
      throw e;
    });
  }
  return wasmReady;
}

async function instantiate(wasmUrl) {
  if (globalThis.crossOriginIsolated && typeof SharedArrayBuffer === 'function') {
    try {
      const threaded = await import('./wasm-threads/instructor.js');
      await threaded.default();
      await threaded.initThreadPool(navigator.hardwareConcurrency || 1);
      wasm = threaded;
      return wasm.threads();
    } catch (e) {
      console.warn('instructor-embed: the threaded build did not start; running single-threaded:', e);
    }
  }
  const single = await import('./wasm/instructor.js');
  await single.default(wasmUrl ? { module_or_path: wasmUrl } : undefined);
  wasm = single;
  return wasm.threads();
}

/**
 * Which backend runs the model. WebGPU is the seam for the GPU backend (not in this build):
 * 'auto' falls back to the CPU and says why in `fallbackReason`.
 */
function pickDevice(device) {
  switch (device ?? 'auto') {
    case 'cpu':
      return { device: 'cpu', fallbackReason: null };
    case 'auto':
      return { device: 'cpu', fallbackReason: 'the WebGPU backend is not part of this build' };
    case 'webgpu':
      throw new InstructorError("instructor-embed: device 'webgpu' is not available in this build; use 'auto' or 'cpu'", {
        name: 'NotSupportedError',
      });
    default:
      throw new InstructorError(`instructor-embed: unknown device '${device}' (expected 'auto', 'cpu' or 'webgpu')`, {
        name: 'TypeError',
      });
  }
}

function checkDtype(dtype) {
  if (dtype !== 'f32' && dtype !== 'f16') {
    throw new InstructorError(`instructor-embed: unknown dtype '${dtype}' (expected 'f32' or 'f16')`, {
      name: 'TypeError',
    });
  }
}

/** `[[instruction, text], ...]` (a plain string is a text without instruction). */
export function splitPairs(pairs) {
  if (!Array.isArray(pairs)) throw new TypeError('instructor-embed: encode expects an array of [instruction, text] pairs');
  const instructions = [];
  const texts = [];
  pairs.forEach((p, i) => {
    if (typeof p === 'string') {
      instructions.push('');
      texts.push(p);
    } else if (Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string') {
      instructions.push(p[0]);
      texts.push(p[1]);
    } else {
      throw new TypeError(`instructor-embed: input ${i} is not an [instruction, text] pair of strings`);
    }
  });
  return { instructions, texts };
}

export class Instructor {
  #model;
  #dim;

  /** @private use Instructor.load */
  constructor(model, info) {
    this.#model = model;
    this.#dim = model.dim();
    this.repo = info.repo;
    this.revision = info.revision;
    this.commit = info.commit;
    this.device = info.device;
    this.dtype = info.dtype;
    this.fallbackReason = info.fallbackReason;
    this.fromCache = info.fromCache;
    this.threads = wasm.threads();
  }

  /**
   * Loads `repo` (e.g. 'hkunlp/instructor-base'): from the IndexedDB cache when a previous load
   * completed, otherwise streamed from the hub (resuming an interrupted download).
   */
  static async load(repo, options = {}) {
    const {
      hubUrl = DEFAULT_HUB,
      revision = 'main',
      device = 'auto',
      dtype = 'f32',
      onProgress,
      wasmUrl,
      retries,
    } = options;
    if (typeof repo !== 'string' || !repo.includes('/')) {
      throw new TypeError(`instructor-embed: repo must look like 'owner/name', got ${JSON.stringify(repo)}`);
    }
    const dev = pickDevice(device);
    checkDtype(dtype);
    await init(wasmUrl);
    const { commit, files, fromCache } = await fetchModel(repo, { hubUrl, revision, wasm, onProgress, retries });
    // The file buffers stay in the JS heap; the loader copies one tensor at a time into wasm.
    const model = wasm.WasmModel.load(`${repo}@${commit}`, files, dtype);
    files.length = 0;
    try {
      onProgress?.({ status: 'ready' });
    } catch (e) {
      console.error('instructor-embed: onProgress threw', e);
    }
    return new Instructor(model, { repo, revision, commit, dtype, fromCache, ...dev });
  }

  /** Size of the embeddings. */
  get dim() {
    return this.#dim;
  }

  /**
   * Embeds `[instruction, text]` pairs. Returns `{ data: Float32Array (n × dim, row-major),
   * dims: [n, dim] }`.
   */
  async encode(pairs, { batchSize = 32, normalize = false } = {}) {
    if (!this.#model) throw new InstructorError('instructor-embed: the model was disposed', { name: 'InvalidStateError' });
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new TypeError('instructor-embed: batchSize must be a positive integer');
    const { instructions, texts } = splitPairs(pairs);
    const data = this.#model.encode(instructions, texts, batchSize, !!normalize);
    return { data, dims: [texts.length, this.#dim] };
  }

  /** Number of tokens the pairs take after truncation (for throughput figures). */
  countTokens(pairs) {
    const { instructions, texts } = splitPairs(pairs);
    return this.#model.countTokens(instructions, texts);
  }

  /** Frees the model's wasm memory (the module's linear memory itself never shrinks). */
  async dispose() {
    this.#model?.free();
    this.#model = null;
  }

  /** What is cached in IndexedDB: `[{ repo, commit, revisions, files, size, complete }]`. */
  static cachedModels() {
    return cache.listCached();
  }

  /** Deletes the cache of one repo (all revisions), or everything. */
  static clearCache(repo) {
    return cache.clear(repo);
  }

  /** Bytes of wasm linear memory (it only grows, so this is the peak so far). */
  static async wasmMemoryBytes() {
    await init();
    return wasm.wasmMemoryBytes();
  }
}

function reviveError(e) {
  const err = new InstructorError(e.message, e);
  err.name = e.name;
  return err;
}

/**
 * The same API with the model in a Web Worker: the page never blocks. Calls are queued in the
 * worker and run one at a time, in order.
 */
export class InstructorWorker {
  #worker;
  #pending = new Map();
  #next = 0;

  /** @private use InstructorWorker.load */
  constructor(worker) {
    this.#worker = worker;
    worker.onmessage = (ev) => {
      const { id, progress, result, error } = ev.data;
      const p = this.#pending.get(id);
      if (!p) return;
      if (progress) {
        try {
          p.onProgress?.(progress);
        } catch (e) {
          console.error('instructor-embed: onProgress threw', e);
        }
        return;
      }
      this.#pending.delete(id);
      if (error) p.reject(reviveError(error));
      else p.resolve(result);
    };
    worker.onerror = (ev) => {
      const err = new InstructorError(`instructor-embed: worker failed: ${ev.message}`, { name: 'WorkerError' });
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
  }

  #call(op, args, onProgress) {
    if (!this.#worker) return Promise.reject(new InstructorError('instructor-embed: the worker was disposed', { name: 'InvalidStateError' }));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress });
      this.#worker.postMessage({ id, op, args });
    });
  }

  static async load(repo, options = {}) {
    const { onProgress, workerUrl, ...rest } = options;
    const url = workerUrl ?? new URL('./worker.js', import.meta.url);
    const w = new InstructorWorker(new Worker(url, { type: 'module' }));
    try {
      const info = await w.#call('load', { repo, options: rest }, onProgress);
      Object.assign(w, info);
    } catch (e) {
      w.#worker.terminate();
      w.#worker = null;
      throw e;
    }
    return w;
  }

  async encode(pairs, options = {}) {
    splitPairs(pairs); // fail here, with the caller's stack, on bad input
    return this.#call('encode', { pairs, options });
  }

  async countTokens(pairs) {
    return this.#call('countTokens', { pairs });
  }

  async dispose() {
    if (!this.#worker) return;
    await this.#call('dispose', {}).catch(() => {});
    this.#worker.terminate();
    this.#worker = null;
  }

  static cachedModels() {
    return cache.listCached();
  }

  static clearCache(repo) {
    return cache.clear(repo);
  }
}
