// The relay's Prometheus text (/metrics) turned into chart series: counters
// sampled at every poll become per-minute rates from the deltas between two
// samples; the queue depth gauge is charted as it is.

/** The series the operator view charts: [metric, label, kind]. */
export const SERIES = [
  { metric: 'postwire_accepted_total', label: 'Accepted per minute', kind: 'rate' },
  { metric: 'postwire_delivered_total', label: 'Delivered per minute', kind: 'rate' },
  { metric: 'postwire_deferred_total', label: 'Deferred per minute', kind: 'rate' },
  { metric: 'postwire_failed_total', label: 'Failed per minute', kind: 'rate' },
  { metric: 'postwire_queue_depth', label: 'Queue depth', kind: 'gauge' },
] as const;

export type SeriesName = (typeof SERIES)[number]['metric'];

/** Unlabelled samples of a Prometheus text exposition: name -> value. */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[2]) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) out.set(m[1], v);
  }
  return out;
}

export interface Point {
  t: number;
  v: number;
}

/** Keeps the last `keep` points of every series from successive samples. */
export class MetricHistory {
  private last: { t: number; values: Map<string, number> } | null = null;
  readonly points = new Map<string, Point[]>();

  constructor(private readonly keep = 120) {
    for (const s of SERIES) this.points.set(s.metric, []);
  }

  /** Adds one sample taken at `t` (ms). Counters that went down (a restart) restart from zero. */
  add(t: number, values: Map<string, number>): void {
    const prev = this.last;
    for (const s of SERIES) {
      const v = values.get(s.metric);
      if (v === undefined) continue;
      const list = this.points.get(s.metric)!;
      if (s.kind === 'gauge') {
        list.push({ t, v });
      } else if (prev && t > prev.t) {
        const before = prev.values.get(s.metric);
        if (before === undefined) continue;
        const delta = v >= before ? v - before : v;
        list.push({ t, v: (delta * 60_000) / (t - prev.t) });
      }
      if (list.length > this.keep) list.splice(0, list.length - this.keep);
    }
    this.last = { t, values };
  }
}
