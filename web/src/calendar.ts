/**
 * The meeting-request panel's logic (pure, no DOM): turns the panel's fields
 * (start, end, time zone, location, attendees) into spec.calendar, with an
 * error naming the field when one is missing or wrong.
 */

import { parseAddress } from './address';
import type { CalendarAttendee, CalendarSpec } from './spec';

/** The panel's fields as typed. */
export interface CalendarFields {
  /** `YYYY-MM-DDTHH:MM` or with seconds, from an `<input type="datetime-local">`. */
  start: string;
  end: string;
  timeZone: string;
  location: string;
  /** Attendee addresses (chips), `Name <addr>` or `addr`. */
  attendees: string[];
  /** Role per attendee email (lower case): REQ-PARTICIPANT (the default) or OPT-PARTICIPANT. */
  roles?: Record<string, AttendeeRole>;
  summary: string;
  description: string;
  organizer: string;
  /** Unique id of the event; a fresh one for a new request. */
  uid: string;
}

/** A meeting-request field that is missing or wrong. */
export class CalendarError extends Error {
  /** Which field ("start", "end", "timeZone", "attendees", "organizer"). */
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.name = 'CalendarError';
    this.field = field;
  }
}

/** Whether an attendee must come (Outlook's "Required") or may (its "Optional"). */
export type AttendeeRole = 'REQ-PARTICIPANT' | 'OPT-PARTICIPANT';

/** `YYYY-MM-DDTHH:MM` of a Date in the browser's own zone (a datetime-local value). */
export function localInputValue(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** The default meeting: from the next full hour after `now`, one hour long, in the browser's zone. */
export function defaultMeetingTimes(now: Date): { start: string; end: string } {
  const start = new Date(now.getTime());
  start.setMinutes(0, 0, 0);
  start.setHours(start.getHours() + 1);
  const end = new Date(start.getTime());
  end.setHours(end.getHours() + 1);
  return { start: localInputValue(start), end: localInputValue(end) };
}

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/;

/** Normalises a datetime-local value to `YYYY-MM-DDTHH:MM:SS`, or null. */
export function normaliseLocal(v: string): string | null {
  const m = LOCAL.exec(v.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m;
  const date = new Date(Date.UTC(+y, +mo - 1, +d, +h, +mi, +(s ?? 0)));
  if (date.getUTCMonth() !== +mo - 1 || date.getUTCDate() !== +d || +h > 23 || +mi > 59) return null;
  return `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}`;
}

/** Whether the runtime knows a IANA time-zone name. */
export function isTimeZone(tz: string): boolean {
  if (!tz) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Builds spec.calendar (method REQUEST) from the panel's fields. */
export function buildCalendar(f: CalendarFields): CalendarSpec {
  const start = normaliseLocal(f.start);
  if (!start) throw new CalendarError('start', 'Meeting start is missing or not a valid date and time');
  const end = normaliseLocal(f.end);
  if (!end) throw new CalendarError('end', 'Meeting end is missing or not a valid date and time');
  if (end <= start) throw new CalendarError('end', 'Meeting end must be after its start');
  if (!isTimeZone(f.timeZone)) throw new CalendarError('timeZone', `Unknown time zone "${f.timeZone}" (use a name like Europe/Madrid)`);
  const organizer = parseAddress(f.organizer);
  if (!organizer.ok) throw new CalendarError('organizer', `The organizer (From) is not a valid address: ${organizer.error}`);
  if (f.attendees.length === 0) throw new CalendarError('attendees', 'A meeting request needs at least one attendee');
  const attendees: CalendarAttendee[] = f.attendees.map((a) => {
    const p = parseAddress(a);
    if (!p.ok) throw new CalendarError('attendees', `Attendee "${a}": ${p.error}`);
    const role = f.roles?.[p.email.toLowerCase()] ?? 'REQ-PARTICIPANT';
    const att: CalendarAttendee = { email: p.email, role, partstat: 'NEEDS-ACTION', rsvp: true };
    if (p.name) att.name = p.name;
    return att;
  });
  const cal: CalendarSpec = {
    method: 'REQUEST',
    uid: f.uid,
    sequence: 0,
    start,
    end,
    timeZone: f.timeZone,
    allDay: false,
    summary: f.summary.trim() || '(no title)',
    organizer: organizer.text,
    attendees,
  };
  if (f.location.trim()) cal.location = f.location.trim();
  if (f.description.trim()) cal.description = f.description.trim();
  return cal;
}
