// Unit tests of the composer page's pure logic (web/src): address chips
// validation, CSV parsing, mail-merge templates, the HTML -> text alternative,
// spec assembly, the meeting-request panel and the relay code messages.
//   node --test tests/js/web-unit.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importWebModule } from './web-helpers.mjs';

const address = await importWebModule('address');
const csv = await importWebModule('csv');
const template = await importWebModule('template');
const html = await importWebModule('html-text');
const spec = await importWebModule('spec');
const calendar = await importWebModule('calendar');
const codes = await importWebModule('codes');
const b64 = await importWebModule('base64');
const drafts = await importWebModule('drafts');
const attachments = await importWebModule('attachments');

test('address lists split on commas, semicolons and new lines but not inside quotes or brackets', () => {
  assert.deepEqual(address.splitAddressList('a@x.org, "Doe, Jane" <jane@x.org>;b@y.org\nc@z.org'), [
    'a@x.org', '"Doe, Jane" <jane@x.org>', 'b@y.org', 'c@z.org',
  ]);
});

test('valid addresses keep their display name, quoted when it needs quotes', () => {
  const p = address.parseAddress('"Doe, Jane" <jane@example.org>');
  assert.equal(p.ok, true);
  assert.equal(p.name, 'Doe, Jane');
  assert.equal(p.email, 'jane@example.org');
  assert.equal(p.text, '"Doe, Jane" <jane@example.org>');
  assert.equal(address.parseAddress('Ana Núñez <ana@ñandú.example>').text, 'Ana Núñez <ana@ñandú.example>');
  assert.equal(address.parseAddress('  bob@example.com ').text, 'bob@example.com');
});

test('invalid addresses say what is wrong', () => {
  const cases = {
    'bob': /no @/,
    'bob@': /domain after @ is empty/,
    '@x.org': /before @ is empty/,
    'bob@localhost': /has no dot/,
    'bo b@x.org': /space/,
    'a..b@x.org': /empty dot segment/,
    'bob@-x.org': /inner hyphens/,
    'Bob <bob@x.org': /unbalanced/,
    'bob@x.org\r\nBcc: evil@x.org': /line break/,
  };
  for (const [input, re] of Object.entries(cases)) {
    const p = address.parseAddress(input);
    assert.equal(p.ok, false, input);
    assert.match(p.error, re, input);
  }
});

test('CSV with quotes, doubled quotes, CRLF, BOM and a quoted new line parses into rows', () => {
  const t = csv.parseCsv('\uFEFFemail,name,note\r\na@x.org,"Doe, Jane","said ""hi""\nthen left"\r\nb@x.org,Bob,\r\n');
  assert.deepEqual(t.headers, ['email', 'name', 'note']);
  assert.deepEqual(t.rows, [
    { email: 'a@x.org', name: 'Doe, Jane', note: 'said "hi"\nthen left' },
    { email: 'b@x.org', name: 'Bob', note: '' },
  ]);
  assert.deepEqual(t.lines, [2, 4]);
});

test('CSV with semicolons is detected', () => {
  assert.deepEqual(csv.parseCsv('email;name\na@x.org;Ann').rows, [{ email: 'a@x.org', name: 'Ann' }]);
});

test('CSV errors name the line', () => {
  assert.throws(() => csv.parseCsv('email,name\na@x.org'), /CSV line 2: has 1 fields but the header has 2/);
  assert.throws(() => csv.parseCsv('email,name\na@x.org,"Ann\n'), /CSV line 2: a quoted field is never closed/);
  assert.throws(() => csv.parseCsv('email,name\na@x.org,An"n'), /CSV line 2: a quote inside an unquoted field/);
  assert.throws(() => csv.parseCsv('email,email\n'), /column "email" appears twice/);
  assert.throws(() => csv.parseCsv(''), /empty/);
});

test('CSV output round-trips through the parser', () => {
  const rows = [['a@x.org', 'delivered', 'ok, "250"'], ['b@x.org', 'failed', 'line\nbreak']];
  const text = csv.toCsv(['rcpt', 'status', 'detail'], rows);
  const back = csv.parseCsv(text);
  assert.deepEqual(back.rows.map((r) => [r.rcpt, r.status, r.detail]), rows);
});

test('templates merge columns, escape in HTML, and name an unknown column', () => {
  const row = { name: 'Ann <&>', code: '42' };
  assert.equal(template.merge('Hi {{name}}, code {{ code }}', row, 'Subject'), 'Hi Ann <&>, code 42');
  assert.equal(template.merge('<p>{{name}}</p>', row, 'Body', true), '<p>Ann &lt;&amp;&gt;</p>');
  assert.deepEqual(template.placeholders('{{a}} {{b}} {{a}}'), ['a', 'b']);
  assert.throws(() => template.merge('Hi {{nmae}}', row, 'Subject'), /Subject uses \{\{nmae\}\}, but the CSV has no column "nmae"/);
  assert.throws(() => template.checkTemplate('{{x}}', ['email'], 'Body'), /no column "x"/);
});

test('HTML becomes readable text', () => {
  const h = '<p>Hello <b>Ann</b>,</p><p>see <a href="https://x.org/a">the plan</a>:</p>'
    + '<ul><li>one</li><li>two</li></ul><ol><li>first</li></ol><blockquote>quoted<br>text</blockquote>'
    + '<p>5 &lt; 6 &amp; caf&#233;&nbsp;ok &#x263A;</p><script>alert(1)</script><img src="cid:x" alt="logo">';
  assert.equal(
    html.htmlToText(h),
    'Hello Ann,\n\nsee the plan <https://x.org/a>:\n\n- one\n- two\n\n1. first\n\n> quoted\n> text\n\n5 < 6 & café ok ☺\n\n[logo]\n',
  );
  assert.equal(html.htmlToText('<div>a</div><div>b<br></div>'), 'a\nb\n');
});

test('the spec has HTML with a text alternative, and drops inline parts the HTML no longer uses', () => {
  const s = spec.assembleSpec({
    from: 'Ann <ann@x.org>', to: ['bob@x.org'], cc: [], bcc: ['c@x.org'], subject: 'Hi',
    html: '<p>Hello</p><img src="cid:img1@postwire">',
    attachments: [
      { filename: 'a.txt', contentType: 'text/plain', content: 'aGk=' },
      { filename: 'img1.png', contentType: 'image/png', content: 'AA==', inline: true, contentId: 'img1@postwire' },
      { filename: 'img2.png', contentType: 'image/png', content: 'AA==', inline: true, contentId: 'img2@postwire' },
    ],
    tnef: false,
  });
  assert.deepEqual(Object.keys(s).sort(), ['attachments', 'bcc', 'from', 'html', 'subject', 'text', 'to']);
  assert.equal(s.text, 'Hello\n');
  assert.deepEqual(s.attachments.map((a) => a.filename), ['a.txt', 'img1.png']);
  const blank = spec.assembleSpec({ from: '', to: [], cc: [], bcc: [], subject: '', html: '<p><br></p>', attachments: [], tnef: true });
  assert.deepEqual(blank, { text: '', tnef: true });
});

test('a meeting attendee can be optional; the default meeting is the next full hour, for an hour', () => {
  const c = calendar.buildCalendar({
    start: '2026-12-01T10:00', end: '2026-12-01T11:00', timeZone: 'UTC', location: '', summary: 'x', description: '',
    attendees: ['Bob <bob@x.org>', 'carl@y.org'], roles: { 'carl@y.org': 'OPT-PARTICIPANT' }, organizer: 'ann@x.org', uid: 'u',
  });
  assert.deepEqual(c.attendees.map((a) => a.role), ['REQ-PARTICIPANT', 'OPT-PARTICIPANT']);
  assert.deepEqual(calendar.defaultMeetingTimes(new Date(2026, 11, 1, 9, 41, 7)), { start: '2026-12-01T10:00', end: '2026-12-01T11:00' });
  assert.deepEqual(calendar.defaultMeetingTimes(new Date(2026, 11, 31, 23, 0, 0)), { start: '2027-01-01T00:00', end: '2027-01-01T01:00' });
});

test('the meeting panel gives spec.calendar, and names the field that is wrong', () => {
  const fields = {
    start: '2026-12-01T10:00', end: '2026-12-01T11:30', timeZone: 'Europe/Madrid', location: 'Room 4',
    attendees: ['Bob <bob@x.org>', 'carl@y.org'], summary: 'Plan', description: '', organizer: 'Ann <ann@x.org>', uid: 'u1@x.org',
  };
  const c = calendar.buildCalendar(fields);
  assert.deepEqual(c, {
    method: 'REQUEST', uid: 'u1@x.org', sequence: 0, start: '2026-12-01T10:00:00', end: '2026-12-01T11:30:00',
    timeZone: 'Europe/Madrid', allDay: false, summary: 'Plan', organizer: 'Ann <ann@x.org>', location: 'Room 4',
    attendees: [
      { email: 'bob@x.org', name: 'Bob', role: 'REQ-PARTICIPANT', partstat: 'NEEDS-ACTION', rsvp: true },
      { email: 'carl@y.org', role: 'REQ-PARTICIPANT', partstat: 'NEEDS-ACTION', rsvp: true },
    ],
  });
  const bad = (patch, field, re) => {
    assert.throws(() => calendar.buildCalendar({ ...fields, ...patch }), (e) => e.field === field && re.test(e.message));
  };
  bad({ start: '' }, 'start', /start is missing/);
  bad({ end: '2026-02-30T10:00' }, 'end', /not a valid/);
  bad({ end: '2026-12-01T09:00' }, 'end', /after its start/);
  bad({ timeZone: 'Mars/Olympus' }, 'timeZone', /Unknown time zone/);
  bad({ attendees: [] }, 'attendees', /at least one attendee/);
  bad({ attendees: ['nope'] }, 'attendees', /Attendee "nope"/);
  bad({ organizer: '' }, 'organizer', /organizer/);
});

test('every relay code has its own message', () => {
  const seen = new Set();
  const all = [...codes.RELAY_CODES, ...codes.CLIENT_CODES];
  for (const code of all) {
    const m = codes.describeCode(code);
    assert.ok(!m.startsWith('The relay refused:'), code);
    assert.ok(m.endsWith(`(${code})`), m);
    seen.add(m);
  }
  assert.equal(seen.size, all.length);
  assert.match(codes.describeCode('sender_not_allowed', 'x@y may not'), /may not send from.*sender_not_allowed: x@y may not/);
  assert.match(codes.describeCode('brand_new', 'detail'), /The relay refused: detail \(brand_new\)/);
});

test('base64 round-trips large binary', () => {
  const bytes = new Uint8Array(200_000).map((_, i) => (i * 7) & 255);
  assert.deepEqual(b64.base64ToBytes(b64.bytesToBase64(bytes)), bytes);
});

test('the preview shows inline parts from their data, loads nothing remote and escapes text', async () => {
  const preview = await importWebModule('preview');
  const doc = preview.previewDocument({
    html: '<p>x</p><img src="cid:a1@x"><img src="https://tracker.example/p.gif"><img src=\'cid:missing\'>',
    attachments: [{ filename: 'a.png', contentType: 'image/png', content: 'AAAA', inline: true, contentId: '<a1@x>' }],
  });
  assert.match(doc, /<img src="data:image\/png;base64,AAAA">/);
  assert.match(doc, /<img data-blocked-src="https:\/\/tracker\.example\/p\.gif">/);
  assert.match(doc, /<img data-blocked-src='cid:missing'>/);
  assert.match(doc, /Content-Security-Policy" content="default-src 'none'; img-src data:/);
  assert.doesNotMatch(doc, /class="attachments"/, 'an image shown inline by cid is not listed again');
  const withFiles = preview.previewDocument({
    text: 'see attached',
    attachments: [
      { filename: 'q<1>.pdf', contentType: 'application/pdf', content: 'JVBERi0xLjQK', inline: false },
      { filename: null, contentType: '', content: 'AAE=', inline: false },
      { filename: 'logo.png', contentType: 'image/png', content: 'AAAA', inline: true, contentId: '<unused@x>' },
    ],
  });
  assert.match(withFiles, /<li>3 attachments:<\/li>/);
  assert.match(withFiles, /<li><b>q&lt;1&gt;\.pdf<\/b> <small>\(application\/pdf, 9 bytes\)<\/small><\/li>/);
  assert.match(withFiles, /<li><b>attachment<\/b> <small>\(application\/octet-stream, 2 bytes\)<\/small><\/li>/);
  assert.match(withFiles, /<li><b>logo\.png<\/b> /, 'an inline part the body does not show is listed');
  const text = preview.previewDocument({ text: '<b>not bold</b> & more' });
  assert.match(text, /&lt;b&gt;not bold&lt;\/b&gt; &amp; more/);
  const big = new Uint8Array(300 * 1024).fill(65);
  assert.match(preview.rawText(big), /… \(45056 more bytes; download the \.eml to see all\)$/);
});

test('an invitation is read from iCalendar text, folded lines and escapes included', async () => {
  const inv = await importWebModule('invitation');
  const ics = 'BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Plan\\, budget\r\n and more\r\n'
    + 'DTSTART;TZID=Europe/Madrid:20261203T150000\r\nDTEND;TZID=Europe/Madrid:20261203T160000\r\nLOCATION:Room 9\r\n'
    + 'ORGANIZER;CN="Eve O":mailto:eve@example.com\r\nATTENDEE;CN=Ann;RSVP=TRUE:mailto:ann@example.com\r\n'
    + 'ATTENDEE:mailto:bob@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';
  assert.deepEqual(inv.readIcs(ics), {
    method: 'REQUEST', summary: 'Plan, budgetand more', start: '2026-12-03 15:00', end: '2026-12-03 16:00',
    timeZone: 'Europe/Madrid', location: 'Room 9', organizer: 'Eve O <eve@example.com>',
    attendees: ['Ann <ann@example.com>', 'bob@example.org'],
  });
  assert.equal(inv.formatIcsTime('20261203T150000Z'), '2026-12-03 15:00 UTC');
  assert.equal(inv.formatIcsTime('20261203'), '2026-12-03');
  assert.equal(inv.readIcs('BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n'), null);
});

test('a draft keeps attachments in order while they fit its limit, and names the others; From alone is no draft', () => {
  const part = (name, bytes) => ({ filename: name, contentType: 'application/octet-stream', content: Buffer.alloc(bytes).toString('base64') });
  const { kept, skipped } = drafts.keepAttachments([part('a', 600), part('b', 500), part('c', 400)], 1000);
  assert.deepEqual(kept.map((p) => p.filename), ['a', 'c']);
  assert.deepEqual(skipped, ['b']);
  const blank = (h) => spec.isBlankHtml(h);
  const empty = { version: 1, savedAt: 1, from: 'ann@x.org', to: [], cc: [], bcc: [], subject: '', html: '<p><br></p>', inline: [], attachments: [], skipped: [], meeting: { enabled: false }, tnef: false };
  assert.equal(drafts.isEmptyDraft(empty, blank), true);
  assert.equal(drafts.isEmptyDraft({ ...empty, subject: 'x' }, blank), false);
  assert.equal(drafts.isEmptyDraft({ ...empty, html: '<p>hi</p>' }, blank), false);
  assert.equal(drafts.draftKey({ ...empty, savedAt: 5 }), drafts.draftKey({ ...empty, savedAt: 9 }));
});

test('a file\'s size in the message is its base64 in 76-character lines with CRLF', () => {
  assert.equal(attachments.encodedSize(0), 0);
  assert.equal(attachments.encodedSize(57), 78);
  assert.equal(attachments.encodedSize(58), 84);
  assert.equal(attachments.encodedSize(1200), 1644);
});

test('attachments as bytes: sizes, drafts and the spec take Uint8Array content as it is', () => {
  assert.equal(spec.contentSize(new Uint8Array(1234)), 1234);
  assert.equal(spec.contentSize(Buffer.alloc(1234).toString('base64')), 1234);
  assert.equal(spec.contentSize('='), 0);
  assert.equal(spec.contentBase64(new Uint8Array([0, 1, 2, 255])), 'AAEC/w==');
  assert.equal(spec.contentBase64('AAEC\r\n/w=='), 'AAEC/w==');
  const big = new Uint8Array(600);
  const { kept, skipped } = drafts.keepAttachments([
    { filename: 'a', contentType: 'application/octet-stream', content: big },
    { filename: 'b', contentType: 'application/octet-stream', content: new Uint8Array(500) },
  ], 1000);
  assert.equal(kept[0].content, big, 'the same bytes, not a copy');
  assert.deepEqual(skipped, ['b']);
  // a draft's key names each byte array instead of spelling out its bytes
  const d = { version: 1, savedAt: 1, from: '', to: [], cc: [], bcc: [], subject: '', html: '', inline: [], attachments: kept, skipped, meeting: { enabled: false }, tnef: false };
  const key = drafts.draftKey(d);
  assert.ok(key.length < 500, key);
  assert.equal(drafts.draftKey({ ...d, savedAt: 7 }), key);
  assert.notEqual(drafts.draftKey({ ...d, attachments: [{ ...kept[0], content: new Uint8Array(600) }] }), key);
  const s = spec.assembleSpec({ from: 'a@x.org', to: ['b@x.org'], cc: [], bcc: [], subject: 's', html: '<p>hi</p>', attachments: kept, tnef: false });
  assert.equal(s.attachments[0].content, big);
});
