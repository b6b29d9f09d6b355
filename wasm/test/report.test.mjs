// parseReport (issue 16): the npm side of `postwire report parse`. Every
// report of core's corpus (core/tests/data/reports/NNN-*.eml) must read as
// its expected NNN-*.json, the same answer as the Rust tests and the CLI;
// errors are coded like every other function's.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, pkg } from './helpers.mjs';

const { parseReport } = await pkg();
const CORPUS = join(ROOT, 'core', 'tests', 'data', 'reports');

test('every report of the corpus reads as its expected JSON', () => {
  const cases = readdirSync(CORPUS).filter((f) => f.endsWith('.eml')).sort();
  assert.ok(cases.length >= 15, `the corpus has ${cases.length} cases`);
  for (const name of cases) {
    const got = parseReport(new Uint8Array(readFileSync(join(CORPUS, name))));
    const expected = JSON.parse(readFileSync(join(CORPUS, name.replace(/\.eml$/, '.json')), 'utf8'));
    assert.deepEqual(got, expected, name);
  }
});

test('a DSN gives each recipient its action, status and diagnostic', () => {
  const dsn = [
    'From: MAILER-DAEMON@mx.example.org',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
    '',
    '--b',
    'Content-Type: text/plain',
    '',
    'sorry',
    '--b',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.example.org',
    '',
    'Final-Recipient: rfc822; bob@example.org',
    'Action: failed',
    'Status: 5.1.1',
    'Diagnostic-Code: smtp; 550 5.1.1 user unknown',
    '',
    '--b--',
    '',
  ].join('\r\n');
  const r = parseReport(new TextEncoder().encode(dsn));
  assert.equal(r.kind, 'delivery');
  assert.equal(r.reportingMta, 'mx.example.org');
  assert.equal(r.recipients.length, 1);
  assert.equal(r.recipients[0].finalRecipient, 'bob@example.org');
  assert.equal(r.recipients[0].action, 'failed');
  assert.equal(r.recipients[0].status, '5.1.1');
  assert.equal(r.recipients[0].diagnosticCode, '550 5.1.1 user unknown');
  assert.equal(r.heuristic, false);
});

test('errors are coded: not bytes, empty input', () => {
  assert.throws(() => parseReport('From: a@b\r\n\r\nx'), (e) => e instanceof Error && e.code === 'INVALID_ARGUMENT');
  assert.throws(() => parseReport(new Uint8Array()), (e) => e.code === 'EMPTY_INPUT');
  assert.equal(parseReport(new TextEncoder().encode('Subject: hi\r\n\r\nhello\r\n')).kind, 'unknown');
});
