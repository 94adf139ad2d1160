#!/usr/bin/env python3
"""Profile build benchmark: one retroactive build of a 5-channel profile vs
five separate `weir query` runs (one per channel filter) over the same
slots.

Generates --hours of flows (--flows in total, with a slammer burst) into
5-minute slot files with `weir gen -w`, adds a 5-channel shadow profile,
and times (median of --runs, page cache warm):

  * `weir profile build NAME --rebuild` (all five channels in one pass),
  * `weir query -R DIR -o null FILTER` for each channel's filter.

Reports build throughput (flows scanned per second), each query's time,
and the build's cost in single-channel queries (build time / mean query
time; target: at most 1.5). The build's per-slot counts equal the
queries' (tested in crates/weir-profile/tests/build.rs).

Usage: python3 benches/profile.py [--flows 5M] [--hours 6] [--runs 5]
       [--threads N] [--keep DIR] [--reuse DIR]
Needs: cargo build --release -p weir-cli.
Prints a Markdown table (for docs/PERFORMANCE.md).
"""

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIR = os.path.join(ROOT, "target", "release", "weir")
START = "2024-03-04T00:00"
ENV = dict(os.environ, TZ="UTC")

CHANNELS = [
    ("slammer", "proto udp and dst port 1434", "+"),
    ("web", "proto tcp and dst port in [80 443]", "+"),
    ("dns", "port 53", "+"),
    ("icmp", "proto icmp", "+"),
    ("inside", "src net 10.0.0.0/8", "-"),
]


def count_value(s):
    m = re.fullmatch(r"([0-9.]+)([kM]?)", s)
    return int(float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6}[m.group(2)])


def run(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, env=ENV, **kw)
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {r.stderr}")
    return r.stdout


def timed(args, runs):
    """Median wall seconds, median CPU seconds (user + system), last output."""
    times, cpus, out = [], [], ""
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = run(args)
        times.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return statistics.median(times), statistics.median(cpus), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", default="5M")
    ap.add_argument("--hours", type=float, default=6)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--keep")
    ap.add_argument("--reuse")
    a = ap.parse_args()
    if not os.path.exists(WEIR):
        sys.exit("build first: cargo build --release -p weir-cli")
    base = a.reuse or a.keep or tempfile.mkdtemp(prefix="weir-profile-bench-")
    data, profiles = os.path.join(base, "flows"), os.path.join(base, "profiles")
    if not a.reuse:
        flows = count_value(a.flows)
        rate = flows / (a.hours * 3600.0)
        run([WEIR, "gen", "-w", data, "--start", START, "--duration", f"{a.hours}h",
             "--rate", f"{rate:.3f}/s", "--slammer", "+%dm+20m" % int(a.hours * 30),
             "--slammer-rate", "300/s", "--seed", "11"])
    shutil.rmtree(profiles, ignore_errors=True)
    os.makedirs(profiles)
    with open(os.path.join(base, "bench5.toml"), "w") as f:
        f.write(f'name = "bench5"\nstart = "{START}"\ntype = "continuous"\nstorage = "shadow"\n')
        for name, flt, sign in CHANNELS:
            f.write(f'\n[[channel]]\nname = "{name}"\nfilter = "{flt}"\nsign = "{sign}"\n')
    common = ["--profiles", profiles, "--data", data]
    run([WEIR, "profile", *common, "add", os.path.join(base, "bench5.toml")])
    threads = ["-W", str(a.threads)] if a.threads else []
    # Warm the page cache.
    run([WEIR, "query", "-R", data, "-o", "null", "proto tcp"])
    build_s, build_cpu, out = timed([WEIR, "profile", *common, "build", "bench5", "--rebuild", "--no-progress", *threads], a.runs)
    m = re.search(r"(\d+) flows scanned", out)
    scanned = int(m.group(1)) if m else 0
    rows = []
    for name, flt, _ in CHANNELS:
        q_s, q_cpu, qout = timed([WEIR, "query", "-R", data, "-o", "null", *threads, flt], a.runs)
        m = re.search(r"passed: (\d+)", qout)
        rows.append((name, flt, q_s, q_cpu, int(m.group(1)) if m else 0))
    mean_q = statistics.mean(r[2] for r in rows)
    mean_cpu = statistics.mean(r[3] for r in rows)
    total_q = sum(r[2] for r in rows)
    total_cpu = sum(r[3] for r in rows)
    print(f"{scanned} flows in {base}, {a.runs} runs, medians\n")
    print("| run | wall s | CPU s | flows/s (wall) | matched |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| profile build, 5 channels, one pass | {build_s:.3f} | {build_cpu:.3f} | {scanned / build_s:,.0f} | |")
    for name, flt, q_s, q_cpu, passed in rows:
        print(f"| query `{flt}` | {q_s:.3f} | {q_cpu:.3f} | {scanned / q_s:,.0f} | {passed} |")
    print(f"| five queries together | {total_q:.3f} | {total_cpu:.3f} | {scanned / total_q:,.0f} | |")
    print(f"\nbuild = {build_s / mean_q:.2f} single-channel queries by wall time, "
          f"{build_cpu / mean_cpu:.2f} by CPU time (target <= 1.5); "
          f"{total_q / build_s:.2f}x faster than five queries")
    if not (a.keep or a.reuse):
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
