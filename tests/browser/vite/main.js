// An app as a user writes it: the package imported by name, bundled by `vite build`
// (tests/browser/vite.test.mjs builds it and drives the page).
import { Instructor, InstructorWorker } from 'instructor-embed';

window.embed = async (repo, hubUrl, pairs, worker) => {
  const model = await (worker ? InstructorWorker : Instructor).load(repo, { hubUrl });
  const out = await model.encode(pairs);
  const result = { data: Array.from(out.data), threads: model.threads, isolated: crossOriginIsolated };
  await model.dispose();
  return result;
};
window.ready = true;
