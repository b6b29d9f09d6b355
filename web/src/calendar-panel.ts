/**
 * The meeting-request panel: a "Meeting request" switch that opens fields
 * for start, end, time zone (suggested from the browser's list), location,
 * title and attendees (address chips); calendar.ts turns them into
 * spec.calendar.
 *
 * As in Outlook and Gmail, the To and Cc recipients are invited by default
 * (To as required, Cc as optional attendees), and follow To and Cc as they
 * change; each attendee can be removed or switched between required and
 * optional, and more can be typed. The organizer is From. A new request
 * starts at the next full hour, for an hour, in the browser's own time zone.
 */

import { defaultMeetingTimes, buildCalendar, CalendarError, type AttendeeRole } from './calendar';
import { ChipInput } from './chips';
import { byId, h, randomId } from './dom';
import type { CalendarSpec } from './spec';

/** Where the default attendees and the organizer come from. */
export interface MeetingSource {
  to: ChipInput;
  cc: ChipInput;
  from: HTMLInputElement;
}

/** What the panel holds, for a draft. */
export interface MeetingSnapshot {
  enabled: boolean;
  title: string;
  start: string;
  end: string;
  timeZone: string;
  location: string;
  attendees: string[];
  roles: Record<string, AttendeeRole>;
  auto: Record<string, 'to' | 'cc'>;
  removed: string[];
  uid: string;
}

const REQ: AttendeeRole = 'REQ-PARTICIPANT';
const OPT: AttendeeRole = 'OPT-PARTICIPANT';

/** The panel's controls. */
export class CalendarPanel {
  readonly enabled: HTMLInputElement;
  readonly attendees: ChipInput;
  private uid = `${randomId()}@postwire`;
  /** Attendees that came from To or Cc (by lower-case email), and from which. */
  private auto = new Map<string, 'to' | 'cc'>();
  /** Attendees from To or Cc that the person removed: not invited again. */
  private removed = new Set<string>();
  /** Role per attendee (lower-case email); missing means required. */
  private roles = new Map<string, AttendeeRole>();
  /** Whether the person chose the times (then they are not reset). */
  private timesTouched = false;
  private start = byId<HTMLInputElement>('start');
  private end = byId<HTMLInputElement>('end');
  private tz = byId<HTMLInputElement>('tz');

  constructor(private source: MeetingSource) {
    this.enabled = byId<HTMLInputElement>('meeting');
    const fields = byId('meeting-fields');
    this.attendees = new ChipInput(byId<HTMLInputElement>('attendees'), 'Attendees', {
      unique: true,
      decorate: (p) => this.roleSelect(p.email),
    });
    this.attendees.onRemove((p) => {
      if (p.ok && this.auto.has(p.email.toLowerCase())) this.removed.add(p.email.toLowerCase());
    });
    this.attendees.onChange(() => {
      for (const p of this.attendees.entries()) if (p.ok) this.removed.delete(p.email.toLowerCase());
    });
    this.enabled.addEventListener('change', () => {
      fields.hidden = !this.enabled.checked;
      if (this.enabled.checked) {
        if (!this.timesTouched) this.defaultTimes();
        this.sync();
      }
    });
    fields.hidden = !this.enabled.checked;
    for (const c of [source.to, source.cc]) c.onChange(() => this.sync());
    source.from.addEventListener('input', () => this.showOrganizer());
    for (const el of [this.start, this.end]) el.addEventListener('input', () => (this.timesTouched = true));
    this.tz.value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    const zones = (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.('timeZone') ?? [];
    byId('tz-list').replaceChildren(...zones.map((z) => h('option', { value: z })));
    this.defaultTimes();
    this.showOrganizer();
  }

  private defaultTimes(): void {
    const t = defaultMeetingTimes(new Date());
    this.start.value = t.start;
    this.end.value = t.end;
  }

  private showOrganizer(): void {
    const from = this.source.from.value.trim();
    byId('organizer').textContent = from ? `${from} (From)` : 'From (fill in From)';
  }

  private roleSelect(email: string): HTMLSelectElement {
    const key = email.toLowerCase();
    const sel = h(
      'select',
      { class: 'role', 'aria-label': `${email}: required or optional` },
      h('option', { value: REQ, text: 'Required' }),
      h('option', { value: OPT, text: 'Optional' }),
    );
    sel.value = this.roles.get(key) ?? REQ;
    sel.addEventListener('change', () => this.roles.set(key, sel.value === OPT ? OPT : REQ));
    return sel;
  }

  /**
   * Invites the To and Cc recipients not yet invited (unless removed by the
   * person), and uninvites those added from To or Cc that are no longer there.
   */
  sync(): void {
    this.showOrganizer();
    if (!this.enabled.checked) return;
    const want = new Map<string, { text: string; from: 'to' | 'cc' }>();
    for (const [c, from] of [[this.source.to, 'to'], [this.source.cc, 'cc']] as const) {
      for (const p of c.entries()) if (p.ok && !want.has(p.email.toLowerCase())) want.set(p.email.toLowerCase(), { text: p.text, from });
    }
    for (const key of [...this.auto.keys()]) {
      if (!want.has(key)) {
        this.auto.delete(key);
        this.roles.delete(key);
        this.attendees.removeEmail(key);
      }
    }
    const present = new Set(this.attendees.entries().flatMap((p) => (p.ok ? [p.email.toLowerCase()] : [])));
    const add: string[] = [];
    for (const [key, w] of want) {
      if (present.has(key) || this.removed.has(key)) continue;
      this.auto.set(key, w.from);
      if (!this.roles.has(key)) this.roles.set(key, w.from === 'cc' ? OPT : REQ);
      add.push(w.text);
    }
    if (add.length) this.attendees.add(add.join(', '));
  }

  /**
   * spec.calendar, or undefined when the switch is off; throws CalendarError.
   * `commit` as for ChipInput.values().
   */
  value(organizer: string, subject: string, description: string, commit = true): CalendarSpec | undefined {
    if (!this.enabled.checked) return undefined;
    const bad = this.attendees.invalid(commit);
    if (bad.length) throw new CalendarError('attendees', `Attendee "${bad[0].input}": ${bad[0].error}`);
    return buildCalendar({
      start: this.start.value,
      end: this.end.value,
      timeZone: this.tz.value.trim(),
      location: byId<HTMLInputElement>('location').value,
      attendees: this.attendees.values(commit),
      roles: Object.fromEntries(this.roles),
      summary: byId<HTMLInputElement>('meeting-title').value || subject,
      description,
      organizer,
      uid: this.uid,
    });
  }

  /** What the panel holds (for a draft). */
  snapshot(): MeetingSnapshot {
    return {
      enabled: this.enabled.checked,
      title: byId<HTMLInputElement>('meeting-title').value,
      start: this.start.value,
      end: this.end.value,
      timeZone: this.tz.value,
      location: byId<HTMLInputElement>('location').value,
      attendees: this.attendees.entries().map((p) => (p.ok ? p.text : p.input)),
      roles: Object.fromEntries(this.roles),
      auto: Object.fromEntries(this.auto),
      removed: [...this.removed],
      uid: this.uid,
    };
  }

  /** Puts a snapshot back (a restored draft). */
  restore(s: MeetingSnapshot): void {
    this.roles = new Map(Object.entries(s.roles ?? {}));
    this.auto = new Map(Object.entries(s.auto ?? {}));
    this.removed = new Set(s.removed ?? []);
    this.uid = s.uid || this.uid;
    byId<HTMLInputElement>('meeting-title').value = s.title ?? '';
    this.start.value = s.start ?? '';
    this.end.value = s.end ?? '';
    this.timesTouched = true;
    this.tz.value = s.timeZone || this.tz.value;
    byId<HTMLInputElement>('location').value = s.location ?? '';
    this.attendees.set(s.attendees ?? []);
    this.enabled.checked = !!s.enabled;
    byId('meeting-fields').hidden = !this.enabled.checked;
    this.showOrganizer();
  }

  /** Starts a new event (a fresh UID, no attendees, default times). */
  reset(): void {
    this.uid = `${randomId()}@postwire`;
    this.auto.clear();
    this.removed.clear();
    this.roles.clear();
    this.timesTouched = false;
    this.attendees.set([]);
    byId<HTMLInputElement>('meeting-title').value = '';
    byId<HTMLInputElement>('location').value = '';
    this.defaultTimes();
  }
}
