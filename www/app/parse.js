// Documents from pasted text or a file: .txt (one per line), .csv (the `text` column, else the
// first), .jsonl (a string, or an object's `text`, per line). Texts are kept exactly as written
// (no trimming): what the model embeds is what the user gave; only blank lines are dropped.

const TEXT_COLUMNS = ['text', 'document', 'sentence', 'content', 'title'];

const isBlank = (s) => s.trim() === '';

/** Lines of `text`, blank ones dropped. */
export function parseLines(text) {
  return text.split(/\r\n|\n|\r/).filter((l) => !isBlank(l));
}

/** RFC 4180 records: quoted fields may hold commas, doubled quotes and newlines. */
export function parseCsvRecords(text) {
  const records = [];
  let record = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') {
        quoted = false;
      } else {
        field += ch;
      }
    } else if (ch === '"' && field === '') {
      quoted = true;
    } else if (ch === ',') {
      record.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      record.push(field);
      records.push(record);
      record = [];
      field = '';
    } else {
      field += ch;
    }
  }
  if (quoted) throw new Error('CSV: a quoted field is not closed');
  if (field !== '' || record.length > 0) {
    record.push(field);
    records.push(record);
  }
  return records;
}

/**
 * A CSV's documents: the column named like `text` (its first row is then a header), otherwise
 * the first column of every row.
 */
export function parseCsv(text) {
  const records = parseCsvRecords(text).filter((r) => !(r.length === 1 && isBlank(r[0])));
  if (records.length === 0) return [];
  const header = records[0].map((h) => h.trim().toLowerCase());
  const named = TEXT_COLUMNS.map((c) => header.indexOf(c)).find((i) => i >= 0);
  const column = named ?? 0;
  return records
    .slice(named === undefined ? 0 : 1)
    .map((r) => r[column] ?? '')
    .filter((t) => !isBlank(t));
}

/** A JSON Lines file's documents; a malformed line is an error naming its number. */
export function parseJsonl(text) {
  const docs = [];
  text.split(/\r\n|\n|\r/).forEach((line, i) => {
    if (isBlank(line)) return;
    let value;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new Error(`JSONL line ${i + 1}: ${e.message}`);
    }
    const doc = typeof value === 'string' ? value : value?.text;
    if (typeof doc !== 'string') throw new Error(`JSONL line ${i + 1}: expected a string or an object with a "text" string`);
    if (!isBlank(doc)) docs.push(doc);
  });
  return docs;
}

/** Documents from a file's text, by its extension (anything else is read as lines). */
export function parseDocuments(text, filename = '') {
  const ext = filename.toLowerCase().match(/\.([a-z0-9]+)$/)?.[1];
  if (ext === 'csv') return parseCsv(text);
  if (ext === 'jsonl' || ext === 'ndjson') return parseJsonl(text);
  return parseLines(text);
}
