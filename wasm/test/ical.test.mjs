// Meeting requests from JS agree with the native CLI: parseCalendar/parseIcs
// with `postwire ics parse [--all]`, toIcs with `postwire ics --now`, replyEml
// with `postwire reply --now --seed`, and buildEml of a spec with `calendar`
// with `postwire build`. Bad input gives coded errors.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { ROOT, cli, pkg } from './helpers.mjs';

const { buildEml, parseEml, toIcs, parseIcs, parseCalendar, replyEml } = await pkg();
const DATA = join(ROOT, 'core', 'tests', 'data', 'ical');
const files = existsSync(DATA) ? readdirSync(DATA).filter((f) => f.endsWith('.ics')).sort().map((f) => join(DATA, f)) : [];
const NOW = 1_764_000_000;
const tmp = mkdtempSync(join(tmpdir(), 'postwire-ical-'));

const INVITE = {
  from: 'Ana <ana@example.com>',
  to: ['bob@example.com'],
  subject: 'Planning',
  text: 'See the invitation.',
  calendar: {
    method: 'REQUEST', uid: 'uid-1@example.com', sequence: 0, start: '2026-12-01T10:00:00', end: '2026-12-01T11:00:00',
    timeZone: 'Europe/Madrid', summary: 'Planning', location: 'Sala 2', organizer: 'Ana <ana@example.com>',
    attendees: [{ email: 'bob@example.com', name: 'Bob', role: 'REQ-PARTICIPANT', partstat: 'NEEDS-ACTION', rsvp: true }],
    rrule: 'FREQ=WEEKLY;COUNT=4', alarms: [{ trigger: '-PT15M' }],
  },
};

test('there are calendar files to compare', () => {
  assert.ok(files.length >= 3, `found ${files.length} .ics files in ${DATA}`);
});

for (const file of files) {
  test(`parseCalendar/parseIcs(${basename(file)}) = postwire ics parse; toIcs = postwire ics`, () => {
    const bytes = readFileSync(file);
    const all = JSON.parse(cli(['ics', 'parse', '--all', file]).toString('utf8'));
    assert.deepEqual(parseCalendar(bytes), all);
    assert.deepEqual(parseCalendar(bytes.toString('utf8')), all);
    const first = parseIcs(bytes);
    assert.deepEqual(first, JSON.parse(cli(['ics', 'parse', file]).toString('utf8')));
    const json = join(tmp, `${basename(file)}.json`);
    writeFileSync(json, JSON.stringify(first));
    const native = cli(['ics', json, '--now', String(NOW)]).toString('utf8');
    assert.equal(toIcs(first, { now: NOW * 1000 }), native);
  });
}

test('a spec with `calendar`: WASM = native bytes, and it parses back with the calendar', () => {
  const file = join(tmp, 'invite.json');
  writeFileSync(file, JSON.stringify(INVITE));
  const wasm = Buffer.from(buildEml(INVITE, { now: NOW * 1000, seed: 9 }));
  assert.ok(wasm.equals(cli(['build', file, '--now', String(NOW), '--seed', '9'])));
  const back = parseEml(wasm);
  assert.equal(back.calendar.uid, 'uid-1@example.com');
  assert.equal(back.calendar.attendees[0].email, 'bob@example.com');
  assert.match(wasm.toString('utf8'), /Content-Type: text\/calendar; (charset="utf-8"; )?method=REQUEST|method="?REQUEST/);
});

for (const answer of ['ACCEPTED', 'DECLINED', 'TENTATIVE']) {
  test(`replyEml(${answer}) = postwire reply`, () => {
    const invite = buildEml(INVITE, { now: NOW * 1000, seed: 3 });
    const eml = join(tmp, 'request.eml');
    writeFileSync(eml, invite);
    const flag = { ACCEPTED: '--accept', DECLINED: '--decline', TENTATIVE: '--tentative' }[answer];
    const native = cli(['reply', eml, flag, '--as', 'bob@example.com', '--now', String(NOW + 60), '--seed', '4']);
    const wasm = Buffer.from(replyEml(invite, answer, 'bob@example.com', { now: (NOW + 60) * 1000, seed: 4 }));
    assert.ok(wasm.equals(native), 'WASM and native REPLY bytes differ');
    const reply = parseEml(wasm);
    assert.equal(reply.calendar.method, 'REPLY');
    assert.equal(reply.calendar.attendees[0].partstat, answer);
    assert.deepEqual(reply.to, ['Ana <ana@example.com>']);
  });
}

function coded(fn, code, path) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error);
    assert.equal(e.code, code, e.message);
    assert.equal(e.path, path, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

test('calendar errors are coded', () => {
  const base = INVITE.calendar;
  coded(() => toIcs({ ...base, strat: 'x' }, { now: 0 }), 'INVALID_SPEC', 'strat');
  coded(() => toIcs({ ...base, attendees: [{ email: 'a@b.c', rsvpp: true }] }), 'INVALID_SPEC', 'attendees[0].rsvpp');
  coded(() => toIcs({ ...base, timeZone: 'Mars/Olympus' }), 'INVALID_CALENDAR', 'timeZone');
  coded(() => toIcs('BEGIN:VEVENT'), 'INVALID_SPEC', '');
  coded(() => buildEml({ ...INVITE, calendar: { ...base, alarms: [{ trigger: '-PT15M', when: 1 }] } }), 'INVALID_SPEC', 'calendar.alarms[0].when');
  const e = coded(() => buildEml({ ...INVITE, calendar: { ...base, start: 'tomorrow' } }, { now: 0, seed: 0 }), 'INVALID_CALENDAR', 'calendar.start');
  assert.match(e.message, /tomorrow/);
  coded(() => parseIcs('BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n'), 'INVALID_ICS', '');
  coded(() => parseIcs(42), 'INVALID_ARGUMENT', '');
  coded(() => parseCalendar('hello'), 'INVALID_ICS', '');
  const invite = buildEml(INVITE, { now: NOW * 1000, seed: 3 });
  coded(() => replyEml(invite, 'MAYBE', 'bob@example.com'), 'INVALID_ARGUMENT', 'answer');
  coded(() => replyEml(invite, 'ACCEPTED', 'eve@example.com'), 'ITIP', '');
  coded(() => replyEml(buildEml({ from: 'a@example.com', to: ['b@example.com'], text: 'x' }), 'ACCEPTED', 'b@example.com'), 'ITIP', '');
});
