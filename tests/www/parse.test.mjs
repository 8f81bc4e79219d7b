import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocuments, parseCsvRecords } from '../../www/app/parse.js';

test('lines: blank ones dropped, texts kept as written, any line ending', () => {
  assert.deepEqual(parseDocuments('a\r\n\r\n  b  \n \t \rc'), ['a', '  b  ', 'c']);
  assert.deepEqual(parseDocuments('x\ny', 'notes.TXT'), ['x', 'y']);
});

test('CSV: quotes, doubled quotes, commas and newlines inside fields', () => {
  assert.deepEqual(parseCsvRecords('a,"b, c","say ""hi"""\r\n"multi\nline",2,3\n'), [
    ['a', 'b, c', 'say "hi"'],
    ['multi\nline', '2', '3'],
  ]);
  assert.throws(() => parseCsvRecords('"open'), /not closed/);
});

test('CSV: the text column when named (header skipped), else the first column', () => {
  assert.deepEqual(parseDocuments('id,Text\n1,first doc\n2,"second, doc"\n3,\n', 'd.csv'), ['first doc', 'second, doc']);
  assert.deepEqual(parseDocuments('alpha,1\nbeta,2', 'd.csv'), ['alpha', 'beta']);
  assert.deepEqual(parseDocuments('', 'd.csv'), []);
});

test('JSONL: strings or {text}, blank lines skipped, errors name the line', () => {
  assert.deepEqual(parseDocuments('"one"\n\n{"text": "two", "id": 2}\n', 'd.jsonl'), ['one', 'two']);
  assert.throws(() => parseDocuments('"ok"\n{bad', 'd.jsonl'), /line 2/);
  assert.throws(() => parseDocuments('{"title": "x"}', 'd.jsonl'), /line 1: expected/);
});
