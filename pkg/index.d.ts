/** An `[instruction, text]` pair; a plain string is a text with no instruction. */
export type Pair = [instruction: string, text: string] | string;

export type Device = 'auto' | 'cpu' | 'webgpu';
export type Dtype = 'f32' | 'f16' | 'int8';

export type Progress =
  | { file: string; loaded: number; total: number; cached?: boolean }
  /** dtype 'int8' from f32 weights: quantizing them (once; the result is cached). */
  | { status: 'quantizing' }
  | { status: 'ready' };

export interface LoadOptions {
  /** Default 'https://huggingface.co'. */
  hubUrl?: string;
  /** Branch, tag or commit; default 'main'. Files are fetched pinned to the commit it resolves to. */
  revision?: string;
  /**
   * 'auto' (default): WebGPU when a hardware adapter takes the model, else the CPU (SIMD), with
   * the reason in `fallbackReason`. 'webgpu': the GPU or an error. 'cpu': WebAssembly SIMD.
   */
  device?: Device;
  /** Compute dtype of the matrix products on the CPU; on WebGPU, how weights are stored
   * ('f16' halves GPU memory; arithmetic stays f32 where T5 needs it). 'int8': weights per
   * output channel and activations per token in int8, on the CPU only (cosine ≥ 0.999 to f32);
   * the quantized weights are cached, so a reload reads a quarter of the bytes. A repo written by
   * `instructor quantize` is int8 whatever is asked. Default 'f32'. */
  dtype?: Dtype;
  /** 'auto' (default): the relaxed-SIMD build where the browser validates it, else the plain
   * simd128 one (Safari). 'simd128' forces the plain build. */
  simd?: 'auto' | 'simd128';
  /** `{ file, loaded, total }` while downloading (per file, non-decreasing), then `{ status: 'ready' }`. */
  onProgress?: (p: Progress) => void;
  /** Where to fetch the single-threaded .wasm from (default: next to the package's JS). */
  wasmUrl?: string | URL;
  /** Automatic resumed retries of an interrupted download; default 2. */
  retries?: number;
}

export interface EncodeOptions {
  /** Default 32. */
  batchSize?: number;
  /** L2-normalise the embeddings (the INSTRUCTOR models already end with a Normalize layer). Default false. */
  normalize?: boolean;
}

export interface Embeddings {
  /** n × dim, row-major. */
  data: Float32Array;
  dims: [n: number, dim: number];
}

export interface CachedFile {
  file: string;
  size: number;
  /** Bytes stored so far (less than size while a download is incomplete). */
  stored: number;
  complete: boolean;
  sha256: string | null;
}

export interface CachedModel {
  repo: string;
  commit: string;
  /** Revisions (as asked for) that resolved to this commit. */
  revisions: string[];
  files: CachedFile[];
  /** Bytes stored. */
  size: number;
  complete: boolean;
}

/** Errors carry a `name`: 'NetworkError', 'HubError', 'IntegrityError' (sha256 mismatch),
 * 'QuotaExceededError' (with `bytesNeeded`), 'NotSupportedError', 'InvalidStateError',
 * 'ModelError' (the files do not make a model), 'GPUError' (device 'webgpu' failed to load, or the
 * GPU was lost: load the model again). */
export class InstructorError extends Error {
  file?: string;
  bytesNeeded?: number;
  status?: number;
}

interface ModelInfo {
  readonly dim: number;
  readonly device: 'cpu' | 'webgpu';
  /** Why 'auto' did not pick the GPU, or null. */
  readonly fallbackReason: string | null;
  /** The WebGPU adapter's description when `device` is 'webgpu', else null. */
  readonly adapter: string | null;
  readonly dtype: Dtype;
  readonly repo: string;
  readonly revision: string;
  /** The commit the revision resolved to. */
  readonly commit: string;
  /** Whether the load made no network request. */
  readonly fromCache: boolean;
  /** Threads the matrix products run on: the logical cores when the page is cross-origin
   * isolated (COOP/COEP; see the README's "Threads"), else 1. */
  readonly threads: number;
  /** The build the model runs on: 'relaxed-simd' or 'simd128' (see LoadOptions.simd). */
  readonly simd: 'relaxed-simd' | 'simd128';
  /** The int8 kernel ('relaxed-simd', 'simd128') when dtype is 'int8', else null. */
  readonly int8Kernel: string | null;
  /** All of the above but `dim`, in one object. */
  readonly info: Omit<ModelInfo, 'dim' | 'info'>;
}

// Declaration merging gives both classes ModelInfo's read-only fields.
export interface Instructor extends ModelInfo {}
export class Instructor {
  private constructor();
  static load(repo: string, options?: LoadOptions): Promise<Instructor>;
  encode(pairs: Pair[], options?: EncodeOptions): Promise<Embeddings>;
  countTokens(pairs: Pair[]): number;
  dispose(): Promise<void>;
  static cachedModels(): Promise<CachedModel[]>;
  static clearCache(repo?: string): Promise<void>;
  static wasmMemoryBytes(): Promise<number>;
}

/** The same API with the model in a Web Worker; calls queue and run one at a time. */
export interface InstructorWorker extends ModelInfo {}
export class InstructorWorker {
  private constructor();
  static load(repo: string, options?: LoadOptions & { workerUrl?: string | URL }): Promise<InstructorWorker>;
  encode(pairs: Pair[], options?: EncodeOptions): Promise<Embeddings>;
  countTokens(pairs: Pair[]): Promise<number>;
  dispose(): Promise<void>;
  static cachedModels(): Promise<CachedModel[]>;
  static clearCache(repo?: string): Promise<void>;
}

/** Instantiates the wasm module (done by load; call it early to overlap the fetch): the threaded
 * build when the page is cross-origin isolated and the browser has relaxed SIMD, else a
 * single-threaded one (whose .wasm `wasmUrl` relocates). Resolves to the number of threads. */
export function init(wasmUrl?: string | URL): Promise<number>;
