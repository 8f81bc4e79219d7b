// Semantic search: documents and a query, each with its instruction, ranked live as the user
// types. Inputs are kept in localStorage so a reload (offline too) picks up where it was.

import { DOCUMENT_PRESETS, QUERY_PRESETS } from './instructions.js';
import { SEARCH_EXAMPLE } from './examples.js';
import { parseDocuments, parseLines } from './parse.js';
import { rank } from './rank.js';
import { Superseded } from './embed.js';
import { $, h, debounce, fillDatalist, showProgress } from './dom.js';

const STATE_KEY = 'instructor-demo:search';
const FIELDS = ['doc-instruction', 'docs-input', 'query-instruction', 'query-input'];

export class SearchView {
  #embedder = null;
  #fileDocs = null;
  #generation = 0;
  /** Rank of each document in the last ranking of the same documents, to show movement. */
  #previous = null;

  constructor() {
    fillDatalist($('doc-presets'), DOCUMENT_PRESETS);
    fillDatalist($('query-presets'), QUERY_PRESETS);
    const saved = JSON.parse(localStorage.getItem(STATE_KEY) ?? 'null') ?? {
      'doc-instruction': DOCUMENT_PRESETS[0],
      'docs-input': SEARCH_EXAMPLE.documents,
      'query-instruction': QUERY_PRESETS[0],
      'query-input': SEARCH_EXAMPLE.query,
    };
    const run = debounce(() => this.run(), 250);
    for (const id of FIELDS) {
      $(id).value = saved[id] ?? '';
      $(id).addEventListener('input', () => {
        this.#save();
        run();
      });
    }
    $('docs-file').addEventListener('change', () => this.#loadFile());
    $('docs-file-clear').addEventListener('click', () => this.#useFile(null));
  }

  /** Uses `embedder` (null while no model is loaded) and searches again. */
  setEmbedder(embedder) {
    this.#embedder = embedder;
    this.#previous = null;
    this.run();
  }

  #save() {
    localStorage.setItem(STATE_KEY, JSON.stringify(Object.fromEntries(FIELDS.map((id) => [id, $(id).value]))));
  }

  async #loadFile() {
    const file = $('docs-file').files[0];
    if (!file) return;
    try {
      const docs = parseDocuments(await file.text(), file.name);
      this.#useFile({ name: file.name, docs });
    } catch (e) {
      $('search-status').textContent = `${file.name}: ${e.message}`;
    }
  }

  #useFile(source) {
    this.#fileDocs = source?.docs ?? null;
    $('docs-input').disabled = !!source;
    $('docs-file-clear').hidden = !source;
    $('docs-source').textContent = source ? `${source.docs.length} documents from ${source.name}` : '';
    if (!source) $('docs-file').value = '';
    this.run();
  }

  #documents() {
    return this.#fileDocs ?? parseLines($('docs-input').value);
  }

  async run() {
    const generation = ++this.#generation;
    const isStale = () => generation !== this.#generation;
    const docs = this.#documents();
    const query = $('query-input').value;
    if (!this.#embedder) {
      $('search-status').textContent = 'Load a model (step 1) to search.';
      return;
    }
    if (docs.length === 0 || query.trim() === '') {
      $('search-status').textContent = docs.length === 0 ? 'Add some documents.' : 'Type a query.';
      $('search-results').replaceChildren();
      return;
    }
    const docInstruction = $('doc-instruction').value;
    const pairs = [...docs.map((d) => [docInstruction, d]), [$('query-instruction').value, query]];
    const started = performance.now();
    try {
      const vectors = await this.#embedder.embed(pairs, {
        isStale,
        onProgress: (done, total) => {
          showProgress($('search-progress'), done, total);
          $('search-status').textContent = `Embedding ${done} / ${total}…`;
        },
      });
      const ranking = rank(vectors.at(-1), vectors.slice(0, -1));
      this.#render(docs, ranking);
      $('search-status').textContent =
        `${docs.length} documents ranked in ${Math.round(performance.now() - started)} ms (cosine similarity).`;
    } catch (e) {
      // A newer request took over (or the model changed under this one): its result is what counts.
      if (e instanceof Superseded || isStale()) return;
      $('search-progress').hidden = true;
      $('search-status').textContent = `Search failed: ${e.message}`;
    }
  }

  #render(docs, ranking) {
    const sameDocs = this.#previous?.docs.length === docs.length && this.#previous.docs.every((d, i) => d === docs[i]);
    const before = sameDocs ? this.#previous.rankOf : null;
    const rankOf = new Map(ranking.map((r, i) => [r.index, i]));
    $('search-results').replaceChildren(
      ...ranking.map(({ index, score }, i) => {
        const moved = before ? before.get(index) - i : 0;
        return h('li', { dataset: { index, score } },
          h('span', { class: 'score' }, score.toFixed(4)),
          h('span', { class: 'bar', style: `width: ${Math.max(0, score) * 6}rem` }),
          moved ? h('span', { class: `move ${moved > 0 ? 'up' : 'down'}` }, moved > 0 ? `▲${moved}` : `▼${-moved}`) : '',
          h('span', { class: 'text', title: docs[index] }, docs[index]),
        );
      }),
    );
    this.#previous = { docs, rankOf };
  }
}
