// Ranking documents against a query by cosine similarity: the one definition the search view
// and the tests both use.

import { cosine } from './vectors.js';

/**
 * `[{ index, score }]` for every document, best first. Equal scores keep document order so the
 * ranking is deterministic.
 */
export function rank(query, docs) {
  return docs
    .map((d, index) => ({ index, score: cosine(query, d) }))
    .sort((a, b) => b.score - a.score || a.index - b.index);
}
