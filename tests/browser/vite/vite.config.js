// The configuration pkg/README.md gives users.
export default {
  // Keeps Vite's dependency pre-bundler (`vite dev`) from moving index.js away from its wasm/.
  optimizeDeps: { exclude: ['instructor-embed'] },
  // Workers as ES modules, so that InstructorWorker's thread pool can start its workers from the
  // worker's chunk (Vite's default, 'iife', inlines everything into one file that cannot be
  // imported as the wasm module's JS: the pool then never starts).
  worker: { format: 'es' },
};
