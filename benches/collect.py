#!/usr/bin/env python3
"""Collector benchmark: weir collect vs nfcapd 1.7.1, fed by the same generator.

For each collector and each offered rate, starts the collector on loopback,
sends `weir gen --send` traffic for a fixed time, stops the collector with
SIGTERM, and reports flows sent, flows stored, loss and the collector's CPU
(user + system, from /proc/<pid>/stat) as a share of one core. The highest
rate with zero loss is the result; CPU per 1 M flows/s is CPU share divided
by the rate in millions.

Usage: python3 benches/collect.py [--rates 100k,250k,500k,1M] [--seconds 10]
                                 [--tools weir,weir-z0,nfcapd,nfcapd-lz4] [--weir PATH]
                                 [--passes N]
(weir-z0 is weir with -z 0, no block compression: nfcapd's default.)
With --passes N the whole plan runs N times, tools alternating within each
pass, and a second table gives per row the median CPU share and the flows
lost in each pass (shared machines drift by 10 % and more between runs).
Needs: cargo build --release -p weir-cli; nfcapd/nfdump (apt-get install -y nfdump).
Prints a Markdown table (pasted into docs/PERFORMANCE.md).
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIR = os.path.join(ROOT, "target", "release", "weir")
TICK = os.sysconf("SC_CLK_TCK")


def set_weir(path):
    global WEIR
    WEIR = os.path.abspath(path)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime, stime are fields 14 and 15 (1-based) of the whole line
    return (int(fields[11]) + int(fields[12])) / TICK


def rate_value(s):
    m = re.fullmatch(r"([0-9.]+)([kM]?)", s)
    return float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6}[m.group(2)]


def stored_weir(d):
    out = subprocess.run([WEIR, "inspect", d], capture_output=True, text=True).stdout
    m = re.search(r"^Flows: (\d+)$", out, re.M)
    return int(m.group(1)) if m else 0


def stored_nfcapd(d):
    total = 0
    for root, _, files in os.walk(d):
        for f in files:
            if f.startswith("nfcapd.") and not f.startswith("nfcapd.current"):
                out = subprocess.run(["nfdump", "-r", os.path.join(root, f), "-I"], capture_output=True, text=True).stdout
                m = re.search(r"^Flows: (\d+)$", out, re.M)
                total += int(m.group(1)) if m else 0
    return total


def run_one(tool, fmt, rate, seconds, port):
    d = tempfile.mkdtemp(prefix=f"bench-{tool}-")
    if tool.startswith("weir"):
        key = "--sflow" if fmt == "sflow" else "--netflow"
        cmd = [WEIR, "collect", "-w", d, key, f"127.0.0.1:{port}", "-t", "60", "-B", str(16 << 20), "--log", "warn"]
        if tool == "weir-z0":
            cmd += ["-z", "0"]  # no block compression, like nfcapd's default
    else:
        cmd = ["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", d, "-t", "60", "-B", str(16 << 20)]
        if tool == "nfcapd-lz4":
            cmd.append("-y")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    c0 = cpu_seconds(proc.pid)
    t0 = time.time()
    send = subprocess.run(
        [WEIR, "gen", "--send", f"127.0.0.1:{port}", "--format", fmt, "--rate", f"{int(rate)}/s", "--duration", f"{seconds}s"],
        capture_output=True, text=True,
    )
    # The CPU of the 1 s after the sender stops (the collector finishing
    # what is queued) is charged to the sending time, not spread over it.
    wall = time.time() - t0
    time.sleep(1.0)
    c1 = cpu_seconds(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    m = re.search(r"sent (\d+) flows", send.stdout)
    sent = int(m.group(1)) if m else 0
    achieved = re.search(r"\(([0-9.]+) flows/s\)", send.stdout)
    stored = stored_weir(d) if tool.startswith("weir") else stored_nfcapd(d)
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
    shutil.rmtree(d, ignore_errors=True)
    cpu = (c1 - c0) / wall
    return sent, stored, float(achieved.group(1)) if achieved else 0.0, cpu, size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="250k,500k,1M,1.5M,2M")
    ap.add_argument("--sflow-rates", default="100k,200k,400k")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--tools", default="weir,nfcapd,nfcapd-lz4", help="collectors to run, in order: weir, weir-z0 (-z 0: no block compression), nfcapd, nfcapd-lz4")
    ap.add_argument("--weir", default=WEIR, help="the weir binary (default: target/release/weir)")
    ap.add_argument("--passes", type=int, default=1, help="run the whole plan this many times; then print medians")
    a = ap.parse_args()
    set_weir(a.weir)
    if not os.path.exists(WEIR):
        sys.exit("build first: cargo build --release -p weir-cli")
    tools = [t for t in a.tools.split(",") if t.startswith("weir") or shutil.which("nfcapd")]
    print("| collector | format | offered flows/s | achieved flows/s | sent | stored | lost | CPU (share of one core) | CPU per 1 M flows/s | bytes/flow on disk |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    port = 39000
    plan = [(fmt, r) for fmt, rates in (("v9", a.rates), ("sflow", a.sflow_rates)) for r in rates.split(",") if r]
    results = {}
    for _ in range(max(1, a.passes)):
        for fmt, r in plan:
            for tool in tools:
                if fmt == "sflow" and tool.startswith("nfcapd"):
                    continue  # nfcapd does not read sFlow; sfcapd is not in Debian's nfdump package
                port += 1
                sent, stored, achieved, cpu, size = run_one(tool, fmt, rate_value(r), a.seconds, port)
                per_m = cpu / (achieved / 1e6) if achieved else 0.0
                bpf = size / stored if stored else 0.0
                results.setdefault((tool, fmt, r), []).append((cpu, sent - stored))
                print(f"| {tool} | {fmt} | {r} | {achieved:,.0f} | {sent:,} | {stored:,} | {sent - stored:,} | {cpu * 100:.1f} % | {per_m * 100:.1f} % | {bpf:.1f} |", flush=True)
    if a.passes > 1:
        print()
        print("| collector | format | offered flows/s | CPU share per pass | median | lost per pass |")
        print("|---|---|---|---|---|---|")
        for (tool, fmt, r), runs in results.items():
            cpus = sorted(c for c, _ in runs)
            mid = len(cpus) // 2
            median = cpus[mid] if len(cpus) % 2 else (cpus[mid - 1] + cpus[mid]) / 2
            each = ", ".join(f"{c * 100:.1f}" for c, _ in runs)
            lost = ", ".join(f"{l:,}" for _, l in runs)
            print(f"| {tool} | {fmt} | {r} | {each} | **{median * 100:.1f} %** | {lost} |")


if __name__ == "__main__":
    main()
