"""Samples a running relay every few seconds into a CSV, until a stop file appears
or the relay exits: its resident memory (VmRSS), its open files (entries of
/proc/PID/fd), the disk space of its data directory (as `du` counts it:
allocated blocks) and a few counters of its /metrics endpoint.

    python3 bench/soak/sample.py PID DATA_DIR METRICS_URL OUT_CSV [INTERVAL_S=2] [STOP_FILE]

Standard library only (it runs with the system's python3).
"""

import csv
import os
import sys
import time
import urllib.request

COLUMNS = [
    "t_s",
    "rss_kib",
    "fds",
    "data_dir_bytes",
    "queue_depth",
    "delivering",
    "sessions",
    "accepted_total",
    "delivered_total",
    "deferred_total",
    "failed_total",
]
METRICS = {
    "postwire_queue_depth": "queue_depth",
    "postwire_delivering": "delivering",
    "postwire_sessions": "sessions",
    "postwire_accepted_total": "accepted_total",
    "postwire_delivered_total": "delivered_total",
    "postwire_deferred_total": "deferred_total",
    "postwire_failed_total": "failed_total",
}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def disk_usage(root: str) -> int:
    """Allocated bytes under root, like `du -s --block-size=1`; files removed
    while walking are skipped."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def metrics(url: str) -> dict:
    out = {}
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            continue
        name = parts[0].split("{")[0]
        if name in METRICS:
            # Counters with labels (per outcome) are summed.
            key = METRICS[name]
            out[key] = out.get(key, 0) + float(parts[1])
    return out


def main() -> None:
    pid = int(sys.argv[1])
    data_dir, url, out = sys.argv[2], sys.argv[3], sys.argv[4]
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 2.0
    stop = sys.argv[6] if len(sys.argv) > 6 else None
    t0 = time.monotonic()
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        tick = 0
        while True:
            try:
                row = {
                    "t_s": round(time.monotonic() - t0, 1),
                    "rss_kib": rss_kib(pid),
                    "fds": open_files(pid),
                    "data_dir_bytes": disk_usage(data_dir),
                }
            except (FileNotFoundError, ProcessLookupError):
                break  # the relay exited
            row.update({k: int(v) for k, v in metrics(url).items()})
            w.writerow([row.get(c, "") for c in COLUMNS])
            f.flush()
            if stop and os.path.exists(stop):
                break
            tick += 1
            time.sleep(max(0.0, t0 + tick * interval - time.monotonic()))


if __name__ == "__main__":
    main()
