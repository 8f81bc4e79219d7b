import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateTracker } from '../../www/app/progress.js';
import { formatBytes, formatDuration } from '../../www/app/format.js';

test('rate over the last seconds, ETA from it', () => {
  const t = new RateTracker();
  assert.ok(Number.isNaN(t.update(0, 1000, 0).rate));
  t.update(100, 1000, 1000);
  const { rate, eta } = t.update(200, 1000, 2000);
  assert.equal(rate, 100);
  assert.equal(eta, 8);
  // A stall: no bytes for several seconds brings the rate down, the ETA up.
  t.update(200, 1000, 6000);
  const stalled = t.update(200, 1000, 9000);
  assert.equal(stalled.rate, 0);
  assert.equal(stalled.eta, Infinity);
  assert.equal(t.update(1000, 1000, 9500).eta, 0);
});

test('sizes and durations read like a person writes them', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(443e6), '443 MB');
  assert.equal(formatBytes(1.345e9), '1.34 GB');
  assert.equal(formatBytes(NaN), '?');
  assert.equal(formatDuration(42.4), '42 s');
  assert.equal(formatDuration(125), '2 min 05 s');
  assert.equal(formatDuration(Infinity), '–');
});
