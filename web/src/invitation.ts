/**
 * Reading an invitation for display (pure, no DOM): the summary of a
 * VEVENT from iCalendar text (unfolded lines; SUMMARY, DTSTART, DTEND,
 * LOCATION, ORGANIZER, ATTENDEE), or from spec.calendar when the parser
 * already gave one.
 */

import type { CalendarSpec } from './spec';

/** What the page shows of an invitation. */
export interface InvitationView {
  method: string;
  summary: string;
  start: string;
  end: string;
  timeZone: string;
  location: string;
  organizer: string;
  attendees: string[];
}

/** `20261203T150000Z` -> `2026-12-03 15:00 UTC`, `20261203T150000` -> `2026-12-03 15:00`, `20261203` -> `2026-12-03`. */
export function formatIcsTime(v: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?$/.exec(v.trim());
  if (!m) return v;
  const [, y, mo, d, h, mi, , z] = m;
  return h === undefined ? `${y}-${mo}-${d}` : `${y}-${mo}-${d} ${h}:${mi}${z ? ' UTC' : ''}`;
}

function unescapeText(v: string): string {
  return v.replace(/\\n/gi, '\n').replace(/\\([,;\\])/g, '$1');
}

/** Extracts the first VEVENT of iCalendar text; null when there is none. */
export function readIcs(ics: string): InvitationView | null {
  const lines = ics.replace(/\r?\n[ \t]/g, '').split(/\r?\n/);
  let inEvent = false;
  let found = false;
  const v: InvitationView = { method: '', summary: '', start: '', end: '', timeZone: '', location: '', organizer: '', attendees: [] };
  for (const line of lines) {
    const idx = line.indexOf(':');
    if (idx < 0) continue;
    const left = line.slice(0, idx);
    const value = line.slice(idx + 1);
    const [name, ...params] = left.split(';');
    const key = name.toUpperCase();
    if (key === 'METHOD') v.method = value.trim();
    if (key === 'BEGIN' && value.trim().toUpperCase() === 'VEVENT') {
      inEvent = true;
      found = true;
      continue;
    }
    if (key === 'END' && value.trim().toUpperCase() === 'VEVENT') {
      if (inEvent) break;
    }
    if (!inEvent) continue;
    const tzid = params.find((p) => p.toUpperCase().startsWith('TZID='))?.slice(5) ?? '';
    const cn = params.find((p) => p.toUpperCase().startsWith('CN='))?.slice(3).replace(/^"|"$/g, '') ?? '';
    const mail = value.replace(/^mailto:/i, '');
    switch (key) {
      case 'SUMMARY': v.summary = unescapeText(value); break;
      case 'LOCATION': v.location = unescapeText(value); break;
      case 'DTSTART': v.start = formatIcsTime(value); if (tzid) v.timeZone = tzid; break;
      case 'DTEND': v.end = formatIcsTime(value); break;
      case 'ORGANIZER': v.organizer = cn ? `${cn} <${mail}>` : mail; break;
      case 'ATTENDEE': v.attendees.push(cn ? `${cn} <${mail}>` : mail); break;
    }
  }
  return found ? v : null;
}

/** The view of spec.calendar. */
export function fromCalendar(c: CalendarSpec): InvitationView {
  return {
    method: c.method,
    summary: c.summary,
    start: c.start.replace('T', ' ').replace(/:00$/, ''),
    end: (c.end ?? '').replace('T', ' ').replace(/:00$/, ''),
    timeZone: c.timeZone,
    location: c.location ?? '',
    organizer: c.organizer,
    attendees: c.attendees.map((a) => (a.name ? `${a.name} <${a.email}>` : a.email)),
  };
}
