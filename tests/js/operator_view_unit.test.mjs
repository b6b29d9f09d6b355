// Unit tests of the operator view's pure logic (web/src/admin): the
// Prometheus text parser, per-minute rates from counter deltas, the chart's
// polyline and the admin API's list query.
//   node --test tests/js/operator_view_unit.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importWebModule } from './web-helpers.mjs';

const metrics = await importWebModule('admin/metrics');
const chart = await importWebModule('admin/chart');
const api = await importWebModule('admin/api');

const TEXT = `# HELP postwire_accepted_total Messages acknowledged as durably spooled.
# TYPE postwire_accepted_total counter
postwire_accepted_total 12
postwire_queue_depth 3
postwire_accept_latency_seconds_bucket{le="0.1"} 7
postwire_webhook_deliveries_total{endpoint="a"} 4
garbage line
postwire_failed_total NaN
`;

test('the Prometheus text gives its unlabelled samples; labelled, comment and broken lines are left out', () => {
  const m = metrics.parsePrometheus(TEXT);
  assert.equal(m.get('postwire_accepted_total'), 12);
  assert.equal(m.get('postwire_queue_depth'), 3);
  assert.equal(m.has('postwire_accept_latency_seconds_bucket'), false);
  assert.equal(m.has('postwire_webhook_deliveries_total'), false);
  assert.equal(m.has('postwire_failed_total'), false);
  assert.equal(m.size, 2);
});

test('counters become per-minute rates from deltas; gauges are kept as they are; a counter reset starts from zero', () => {
  const h = new metrics.MetricHistory(3);
  const s = (accepted, depth) => new Map([['postwire_accepted_total', accepted], ['postwire_queue_depth', depth]]);
  h.add(0, s(10, 1));
  assert.deepEqual(h.points.get('postwire_accepted_total'), []);
  assert.deepEqual(h.points.get('postwire_queue_depth'), [{ t: 0, v: 1 }]);
  h.add(30_000, s(25, 4)); // 15 in 30 s: 30 a minute
  h.add(60_000, s(5, 2)); // restarted: 5 since, in 30 s
  assert.deepEqual(h.points.get('postwire_accepted_total').map((p) => p.v), [30, 10]);
  h.add(90_000, s(5, 0));
  h.add(120_000, s(6, 0));
  // Only the last 3 points are kept.
  assert.deepEqual(h.points.get('postwire_queue_depth').map((p) => p.v), [2, 0, 0]);
  assert.deepEqual(h.points.get('postwire_accepted_total').map((p) => p.v), [10, 0, 2]);
});

test('the polyline spans the chart: first point at the left, the maximum at the top', () => {
  const pts = chart.polylinePoints([{ t: 0, v: 0 }, { t: 5, v: 10 }, { t: 10, v: 5 }], 100, 54);
  assert.equal(pts, '0.0,52.0 50.0,2.0 100.0,27.0');
  assert.equal(chart.polylinePoints([]), '');
  assert.equal(chart.polylinePoints([{ t: 1, v: 0 }], 100, 54), '100.0,52.0');
});

test('the list query leaves empty filters out and encodes the rest', () => {
  assert.equal(api.listQuery({}), '');
  assert.equal(
    api.listQuery({ token: '', sender: 'a+b@example.com', state: 'held', limit: 50, since: '2026-12-05T03:00:00.000Z' }),
    '?sender=a%2Bb%40example.com&state=held&limit=50&since=2026-12-05T03%3A00%3A00.000Z',
  );
});
