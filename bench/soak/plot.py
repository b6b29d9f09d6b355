"""Draws the soak's samples (sample.py's CSV) as an SVG line chart, one panel
per series sharing the time axis, and prints the figures of the run as JSON:
baseline, peak and final value of each series.

    python3 bench/soak/plot.py SAMPLES.csv OUT.svg [LABEL=SECONDS]... [--title TEXT]

Each LABEL=SECONDS draws a dashed vertical line at that time (seconds on the
sampler's clock), e.g. `load=10 idle=700`. Standard library only: the SVG is
written by hand.
"""

import csv
import math
import json
import sys
from xml.sax.saxutils import escape

PANELS = [
    # column, title, scale, unit
    ("rss_kib", "resident memory (RSS)", 1 / 1024, "MiB"),
    ("fds", "open files (/proc/PID/fd)", 1, ""),
    ("data_dir_bytes", "data directory on disk (du)", 1 / 2**20, "MiB"),
    ("queue_depth", "messages in the spool, not yet final", 1, ""),
]
W, PANEL_H, LEFT, RIGHT, TOP, GAP = 860, 130, 70, 20, 40, 46
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def nice_max(v: float) -> float:
    """The top of an axis at or above v with four round steps (1, 2, 2.5 or 5
    times a power of ten each)."""
    if v <= 0:
        return 4.0
    step = v / 4
    mag = 10 ** math.floor(math.log10(step))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= step:
            return 4 * m * mag
    return 40 * mag


def fmt(v: float) -> str:
    return f"{v:.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


def main() -> None:
    args = [a for a in sys.argv[1:]]
    title = "postwire relay soak"
    if "--title" in args:
        i = args.index("--title")
        title = args[i + 1]
        del args[i : i + 2]
    src, out = args[0], args[1]
    marks = [(a.split("=")[0], float(a.split("=")[1])) for a in args[2:]]
    with open(src) as f:
        rows = list(csv.DictReader(f))
    ts = [float(r["t_s"]) for r in rows]
    t_max = max(ts[-1], 1.0)
    height = TOP + len(PANELS) * (PANEL_H + GAP) + 10
    plot_w = W - LEFT - RIGHT
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
        f'viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    figures = {}
    for p, (col, label, scale, unit) in enumerate(PANELS):
        vals = [(t, float(r[col]) * scale) for t, r in zip(ts, rows) if r.get(col, "") != ""]
        if not vals:
            continue
        top = TOP + p * (PANEL_H + GAP) + 14
        ymax = nice_max(max(v for _, v in vals))
        x = lambda t: LEFT + plot_w * t / t_max  # noqa: E731
        y = lambda v: top + PANEL_H - PANEL_H * v / ymax  # noqa: E731
        svg.append(
            f'<text x="{LEFT}" y="{top - 5}" font-weight="bold">{escape(label)}'
            f'{" (" + unit + ")" if unit else ""}</text>'
        )
        svg.append(
            f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL_H}" '
            f'fill="none" stroke="#999"/>'
        )
        for k in range(5):
            v = ymax * k / 4
            yy = y(v)
            svg.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>')
            svg.append(f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{fmt(v)}</text>')
        step = nice_max(t_max / 2) / 4
        t = 0.0
        while t <= t_max:
            xx = x(t)
            svg.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top + PANEL_H}" y2="{top + PANEL_H + 4}" stroke="#999"/>')
            svg.append(f'<text x="{xx:.1f}" y="{top + PANEL_H + 16}" text-anchor="middle">{fmt(t)}</text>')
            t += step
        for name, at in marks:
            xx = x(at)
            svg.append(
                f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top}" y2="{top + PANEL_H}" '
                f'stroke="#777" stroke-dasharray="4 3"/>'
            )
            if p == 0:
                svg.append(f'<text x="{xx + 3:.1f}" y="{top + 11}" fill="#555">{escape(name)}</text>')
        pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in vals)
        svg.append(
            f'<polyline points="{pts}" fill="none" stroke="{COLOURS[p]}" stroke-width="1.4"/>'
        )
        base = vals[0][1]
        peak = max(v for _, v in vals)
        final = vals[-1][1]
        figures[col] = {
            "unit": unit or "count",
            "baseline": round(base, 1),
            "peak": round(peak, 1),
            "final": round(final, 1),
        }
    svg.append(
        f'<text x="{LEFT + plot_w / 2}" y="{height - 4}" text-anchor="middle">'
        f"seconds since the relay started</text>"
    )
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")
    figures["duration_s"] = t_max
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
