/**
 * The meeting-request panel: a "Meeting request" switch that opens fields
 * for start, end, time zone (suggested from the browser's list), location,
 * title and attendees (address chips); calendar.ts turns them into
 * spec.calendar.
 */

import { buildCalendar, CalendarError } from './calendar';
import { ChipInput } from './chips';
import { byId, h, randomId } from './dom';
import type { CalendarSpec } from './spec';

/** The panel's controls. */
export class CalendarPanel {
  readonly enabled: HTMLInputElement;
  readonly attendees: ChipInput;
  private uid = `${randomId()}@postwire`;

  constructor() {
    this.enabled = byId<HTMLInputElement>('meeting');
    const fields = byId('meeting-fields');
    const sync = () => (fields.hidden = !this.enabled.checked);
    this.enabled.addEventListener('change', sync);
    sync();
    this.attendees = new ChipInput(byId<HTMLInputElement>('attendees'), 'Attendees');
    const tz = byId<HTMLInputElement>('tz');
    tz.value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    const list = byId('tz-list');
    const zones = (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.('timeZone') ?? [];
    list.replaceChildren(...zones.map((z) => h('option', { value: z })));
    const start = byId<HTMLInputElement>('start');
    const end = byId<HTMLInputElement>('end');
    if (!start.value) {
      const d = new Date(Date.now() + 86_400_000);
      d.setMinutes(0, 0, 0);
      const local = (x: Date) =>
        new Date(x.getTime() - x.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
      start.value = local(d);
      end.value = local(new Date(d.getTime() + 3_600_000));
    }
  }

  /** spec.calendar, or undefined when the switch is off; throws CalendarError. */
  value(organizer: string, subject: string, description: string): CalendarSpec | undefined {
    if (!this.enabled.checked) return undefined;
    const bad = this.attendees.invalid();
    if (bad.length) throw new CalendarError('attendees', `Attendee "${bad[0].input}": ${bad[0].error}`);
    return buildCalendar({
      start: byId<HTMLInputElement>('start').value,
      end: byId<HTMLInputElement>('end').value,
      timeZone: byId<HTMLInputElement>('tz').value.trim(),
      location: byId<HTMLInputElement>('location').value,
      attendees: this.attendees.values(),
      summary: byId<HTMLInputElement>('meeting-title').value || subject,
      description,
      organizer,
      uid: this.uid,
    });
  }

  /** Starts a new event (a fresh UID). */
  reset(): void {
    this.uid = `${randomId()}@postwire`;
  }
}
