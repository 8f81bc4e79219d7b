// The Web Worker behind InstructorWorker: one model, requests handled one at a time in arrival
// order (a promise chain), so concurrent encode calls queue instead of overlapping.

import { Instructor } from './index.js';

let model = null;
let queue = Promise.resolve();

async function handle(id, op, args) {
  switch (op) {
    case 'load': {
      if (model) await model.dispose();
      model = await Instructor.load(args.repo, {
        ...args.options,
        onProgress: (progress) => self.postMessage({ id, progress }),
      });
      return { result: { dim: model.dim, ...model.info } };
    }
    case 'encode': {
      if (!model) throw new Error('instructor-embed: no model loaded in this worker');
      const out = await model.encode(args.pairs, args.options);
      return { result: out, transfer: [out.data.buffer] };
    }
    case 'countTokens':
      return { result: model.countTokens(args.pairs) };
    case 'dispose':
      await model?.dispose();
      model = null;
      return { result: null };
    default:
      throw new Error(`instructor-embed worker: unknown request ${op}`);
  }
}

self.onmessage = (ev) => {
  const { id, op, args } = ev.data;
  queue = queue.then(async () => {
    try {
      const { result, transfer = [] } = await handle(id, op, args);
      self.postMessage({ id, result }, transfer);
    } catch (e) {
      const error = { name: e?.name ?? 'Error', message: e?.message ?? String(e) };
      for (const k of ['file', 'bytesNeeded', 'status', 'expected', 'actual', 'loaded', 'total']) {
        if (e && k in e) error[k] = e[k];
      }
      self.postMessage({ id, error });
    }
  });
};
