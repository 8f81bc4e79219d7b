// The one place the page names the npm package. serve.mjs serves the repository's pkg/ at
// /pkg/, next to this page; a deployment copies pkg/ (or node_modules/instructor-embed) there.
export { InstructorWorker } from '../pkg/index.js';
