#!/usr/bin/env python3
"""Query benchmark: `weir query` vs nfdump 1.7.1 over the same flows.

Builds the same flows in both stores: `weir gen --send` sends the
generator's NetFlow v9 datagrams to nfcapd, and `weir import` converts the
nfcapd files into weir slot files, so both tools read identical flows. The
flows span --hours of flow time (sent --speed times faster than real time)
and include a slammer-like UDP/1434 burst. Both stores are checked to hold
the same number of flows.

Then each query runs --runs times per tool, alternating tools, with the
same argument list (weir query takes nfdump's flags). Reported per query:
median wall seconds of each tool, the ratio nfdump/weir, peak RSS (from
wait4) of each, and the flow count each tool's summary line reports (must
agree).

Usage: python3 benches/query.py [--flows 10M] [--hours 6] [--runs 5]
       [--keep DIR] [--reuse DIR]
Needs: cargo build --release -p weir-cli; nfcapd/nfdump (apt-get install -y nfdump).
The weir binary is target/release/weir, or the one the WEIR environment
variable names (another CARGO_TARGET_DIR, an older build to compare).
Prints a Markdown table (pasted into docs/PERFORMANCE.md).
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIR = os.environ.get("WEIR") or os.path.join(ROOT, "target", "release", "weir")
START = "2024-03-04T00:00"
ENV = dict(os.environ, TZ="UTC")


def count_value(s):
    m = re.fullmatch(r"([0-9.]+)([kM]?)", s)
    return int(float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6}[m.group(2)])


def stored(tool, d):
    if tool == "weir":
        out = subprocess.run([WEIR, "inspect", d], capture_output=True, text=True).stdout
        m = re.search(r"^Flows: (\d+)$", out, re.M)
        return int(m.group(1)) if m else 0
    out = subprocess.run(["nfdump", "-R", d, "-I"], capture_output=True, text=True, env=ENV).stdout
    m = re.search(r"^Flows: (\d+)$", out, re.M)
    return int(m.group(1)) if m else 0


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def build(base, flows, hours, speed):
    """Fills base/weir and base/nfcapd with the same flows."""
    wdir, ndir = os.path.join(base, "weir"), os.path.join(base, "nfcapd")
    os.makedirs(wdir)
    os.makedirs(ndir)
    nport = 39901
    nfcapd = subprocess.Popen(
        ["nfcapd", "-b", "127.0.0.1", "-p", str(nport), "-w", ndir, "-S", "1", "-t", "300", "-B", str(64 << 20)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    time.sleep(1.0)
    rate = flows / (hours * 3600.0)
    slammer = "+%dm+20m" % int(hours * 30)  # 20 minutes in the middle
    send = subprocess.run(
        [WEIR, "gen", "--send", f"127.0.0.1:{nport}", "--format", "v9", "--start", START,
         "--duration", f"{hours}h", "--rate", f"{rate:.3f}/s", "--speed", str(speed),
         "--slammer", slammer, "--slammer-rate", "300/s", "--seed", "11"],
        capture_output=True, text=True)
    print("#", send.stdout.strip() or send.stderr.strip(), file=sys.stderr)
    time.sleep(2.0)
    stop(nfcapd)
    imp = subprocess.run([WEIR, "import", "--utc", "--no-progress", "-w", wdir, ndir],
                         capture_output=True, text=True)
    print("#", imp.stdout.strip().replace("\n", "\n# "), imp.stderr.strip(), file=sys.stderr)
    return wdir, ndir


def run_timed(argv):
    """Runs argv with stdout to /dev/null; returns (wall s, peak RSS KiB, stdout head)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, env=ENV)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0, os.SEEK_END)
        size = out.tell()
        out.seek(max(0, size - 4096))
        tail = out.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) not in (0,):
        tail += f"\n[exit {os.waitstatus_to_exitcode(status)}]"
    return wall, ru.ru_maxrss, tail


def summary_flows(tail):
    m = re.search(r"Summary: total flows: (\d+)", tail)
    if m:
        return m.group(1)
    m = re.search(r"\[exit (\d+)\]", tail)
    return f"exit {m.group(1)}" if m else "-"


def queries(window):
    return [
        ("full dump to null", ["-o", "null"]),
        ("full scan, every record tested (`bytes > 0`)", ["-o", "null", "bytes > 0"]),
        ("`proto udp and port 1434`", ["-o", "line", "proto udp and port 1434"]),
        ("`-s ip/bytes -n 10`", ["-s", "ip/bytes", "-n", "10"]),
        ("`-s srcip/flows 'net 10.0.0.0/8'`", ["-s", "srcip/flows", "net 10.0.0.0/8"]),
        ("`-s srcip` (all sources)", ["-s", "srcip"]),
        ("`-A srcas,dstas -O bytes`", ["-A", "srcas,dstas", "-O", "bytes", "-o", "line"]),
        ("`-a` (5-tuple)", ["-a", "-o", "line"]),
        ("`-o long` to /dev/null", ["-o", "long"]),
        ("one-hour `-t` window", ["-t", window, "-o", "line"]),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", default="10M")
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--speed", type=float, default=0.0, help="default: send in about 40 s")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", help="build the stores here and keep them")
    ap.add_argument("--reuse", help="use stores built earlier with --keep")
    ap.add_argument("--only", help="run only queries whose name contains this")
    a = ap.parse_args()
    if not os.path.exists(WEIR):
        sys.exit("build first: cargo build --release -p weir-cli")
    if not shutil.which("nfdump"):
        sys.exit("needs nfdump: apt-get install -y nfdump")
    if a.reuse:
        base = a.reuse
        wdir, ndir = os.path.join(base, "weir"), os.path.join(base, "nfcapd")
    else:
        base = a.keep or tempfile.mkdtemp(prefix="bench-query-")
        speed = a.speed or a.hours * 3600.0 / 40.0
        wdir, ndir = build(base, count_value(a.flows), a.hours, speed)
    sw, sn = stored("weir", wdir), stored("nfcapd", ndir)
    wbytes = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(wdir) for f in fs)
    nbytes = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(ndir) for f in fs)
    print(f"stored flows: weir {sw:,} ({wbytes / max(sw, 1):.1f} B/flow), "
          f"nfcapd {sn:,} ({nbytes / max(sn, 1):.1f} B/flow, uncompressed)")
    hour = int(a.hours // 2)
    window = f"2024/03/04.{hour:02d}:00:00-2024/03/04.{hour:02d}:59:59"
    print()
    print(f"| query | weir median s | nfdump median s | nfdump/weir | weir peak RSS MiB | nfdump peak RSS MiB | flows (weir / nfdump) |")
    print("|---|---|---|---|---|---|---|")
    for name, tail in queries(window):
        if a.only and a.only not in name:
            continue
        wt, nt, wr, nr = [], [], 0, 0
        wsum = nsum = "-"
        for _ in range(a.runs):
            w, rss, out = run_timed([WEIR, "query", "-R", wdir] + tail)
            wt.append(w)
            wr = max(wr, rss)
            wsum = summary_flows(out)
            n, rss, out = run_timed(["nfdump", "-R", ndir] + tail)
            nt.append(n)
            nr = max(nr, rss)
            nsum = summary_flows(out)
        wm, nm = statistics.median(wt), statistics.median(nt)
        print(f"| {name} | {wm:.3f} | {nm:.3f} | {nm / wm:.2f} | {wr / 1024:.0f} | {nr / 1024:.0f} | {wsum} / {nsum} |",
              flush=True)
    if not (a.keep or a.reuse):
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
