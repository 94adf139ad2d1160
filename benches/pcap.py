#!/usr/bin/env python3
"""pcap -> flows benchmark: packets/s of `weir pcap` on one core, side by
side with nfpcapd 1.7.1 (Debian's nfdump package) and softflowd 1.1.0 on
the same file.

Writes a deterministic synthetic capture (--packets Ethernet frames over
--flows flows: 80 % TCP sessions ending with FIN, 15 % UDP, 5 % ICMP, 10 %
of them IPv6, packets of the flows interleaved, 10 000 packets per second
of packet time) and times, pinned to one core with `taskset -c 0` (median
of --runs, page cache warm):

  * `weir pcap -r FILE -w DIR` (flows into slot files, zstd level 1),
  * `nfpcapd -r FILE -w DIR` (flows into nfcapd files, uncompressed),
  * `softflowd -d -r FILE -n 127.0.0.1:PORT -v 9 -m 4000000` (flows
    exported as NetFlow v9 to a loopback socket nobody reads; -m so that
    its default cache of 8192 flows does not force flows out early).
    softflowd 1.1.0 waits for a control command (softflowctl) before it
    reads a file: timed from that command until its statistics show every
    packet processed (polled every millisecond).

Each tool's flow count is printed beside its time. Target: weir >= 3x
nfpcapd's packets/s.

Usage: python3 benches/pcap.py [--packets 1M] [--flows 100k] [--runs 3]
       [--keep FILE]
Needs: cargo build --release -p weir-cli; nfpcapd and softflowd/softflowctl
(apt-get install -y nfdump softflowd) for the comparison columns.
Prints a Markdown table (for docs/PCAP.md).
"""

import argparse
import os
import random
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIR = os.path.join(ROOT, "target", "release", "weir")
ENV = dict(os.environ, TZ="UTC")
ONE_CORE = ["taskset", "-c", "0"] if shutil.which("taskset") else []


def count_value(s):
    m = re.fullmatch(r"([0-9.]+)([kM]?)", s)
    return int(float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6}[m.group(2)])


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def frame(flow, seq, last):
    """One Ethernet frame of `flow` (the seq-th packet)."""
    v6, proto, src, dst, sport, dport = flow
    payload = bytes(16 + (seq * 37 + sport) % 200)
    if proto == 6:
        flags = 0x02 if seq == 0 else (0x11 if last else 0x18)
        l4 = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 0x50, flags, 65535, 0, 0)
    elif proto == 17:
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    else:
        l4 = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, sport, seq)
    l4 += payload
    if v6:
        ip = struct.pack("!IHBB", 0x60000000, len(l4), 58 if proto == 1 else proto, 64) + src + dst
        et = 0x86DD
    else:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), seq & 0xFFFF, 0, 64, proto, 0, src, dst)
        ip = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
        et = 0x0800
    return b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02" + struct.pack("!H", et) + ip + l4


def write_capture(path, packets, flows, seed=1):
    rnd = random.Random(seed)
    per_flow = max(1, packets // flows)
    fl = []
    for i in range(flows):
        v6 = rnd.random() < 0.1
        r = rnd.random()
        proto = 6 if r < 0.8 else (17 if r < 0.95 else 1)
        if v6:
            src = b"\x20\x01\x0d\xb8" + rnd.randbytes(12)
            dst = b"\x20\x01\x0d\xb8\xff" + rnd.randbytes(11)
        else:
            src = bytes([10, rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255)])
            dst = bytes([192, 0, 2 + rnd.randrange(2), rnd.randrange(1, 255)])
        fl.append((v6, proto, src, dst, rnd.randrange(1024, 65535), rnd.choice([53, 80, 443, 123, 8080])))
    # Interleave: each flow's packets in order, flows mixed.
    order = [i for i in range(flows) for _ in range(per_flow)]
    rnd.shuffle(order)
    seen = [0] * flows
    t0 = 1_709_532_000 * 1_000_000
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for n, i in enumerate(order):
            k = seen[i]
            seen[i] += 1
            fr = frame(fl[i], k, k == per_flow - 1)
            ts = t0 + n * 100  # 10 000 packets per second
            f.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(fr), len(fr)))
            f.write(fr)
    return len(order)


def timed(args, runs, setup=None):
    times = []
    out = ""
    for _ in range(runs):
        if setup:
            setup()
        t = time.perf_counter()
        r = subprocess.run(ONE_CORE + args, capture_output=True, text=True, env=ENV)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            sys.exit(f"{' '.join(args)} failed ({r.returncode}): {r.stderr[-2000:]}")
        out = r.stdout + r.stderr
    return statistics.median(times), out


def softflowd_run(cap, tmp, total):
    """softflowd 1.1.0 in -r mode waits for a control command before it
    reads the file and for another before it exits: time from the first
    command until its statistics show every packet processed."""
    ctl = os.path.join(tmp, "sf.ctl")
    pid = os.path.join(tmp, "sf.pid")
    for p in (ctl, pid):
        if os.path.exists(p):
            os.unlink(p)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    proc = subprocess.Popen(
        ONE_CORE + ["softflowd", "-d", "-r", cap, "-n", f"127.0.0.1:{port}", "-v", "9",
                    "-m", "4000000", "-p", pid, "-c", ctl],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stats():
        r = subprocess.run(["softflowctl", "-c", ctl, "statistics"], capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else ""

    try:
        deadline = time.time() + 30
        while not os.path.exists(ctl) and time.time() < deadline:
            time.sleep(0.001)
        t = time.perf_counter()
        stats()
        flows = "?"
        deadline = time.time() + 600
        while time.time() < deadline:
            out = stats()
            m = re.search(r"Packets processed: (\d+)", out)
            if m and int(m.group(1)) >= total:
                elapsed = time.perf_counter() - t
                act = re.search(r"Number of active flows: (\d+)", out)
                exp = re.search(r"Flows expired: (\d+)", out)
                if act and exp:
                    flows = str(int(act.group(1)) + int(exp.group(1)))
                break
            time.sleep(0.001)
        else:
            sys.exit("softflowd did not finish reading the file")
        subprocess.run(["softflowctl", "-c", ctl, "shutdown"], capture_output=True)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sink.close()
    return elapsed, flows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", default="1M")
    ap.add_argument("--flows", default="100k")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", help="write/reuse the capture here")
    a = ap.parse_args()
    if not os.path.exists(WEIR):
        sys.exit("build first: cargo build --release -p weir-cli")
    tmp = tempfile.mkdtemp(prefix="weir-pcap-bench-")
    try:
        cap = a.keep or os.path.join(tmp, "bench.pcap")
        if not (a.keep and os.path.exists(cap)):
            t = time.perf_counter()
            n = write_capture(cap, count_value(a.packets), count_value(a.flows))
            print(f"wrote {n} packets ({os.path.getsize(cap)} bytes) in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        with open(cap, "rb") as f:
            f.read()  # warm the page cache
        npk = sum(1 for _ in iter_pcap(cap))
        rows = []
        out_dir = os.path.join(tmp, "weir")

        def clean(d):
            return lambda: shutil.rmtree(d, ignore_errors=True)

        s, out = timed([WEIR, "pcap", "-r", cap, "-w", out_dir], a.runs, clean(out_dir))
        m = re.search(r"into (\d+) flows", out)
        rows.append(("weir pcap", s, m.group(1) if m else "?"))
        if shutil.which("nfpcapd"):
            nd = os.path.join(tmp, "nfp")

            def mk():
                shutil.rmtree(nd, ignore_errors=True)
                os.makedirs(nd)

            s, out = timed(["nfpcapd", "-r", cap, "-w", nd], a.runs, mk)
            m = re.search(r"Flows: (\d+)", out)
            rows.append(("nfpcapd 1.7.1", s, m.group(1) if m else "?"))
        if shutil.which("softflowd") and shutil.which("softflowctl"):
            times, flows = [], "?"
            for _ in range(a.runs):
                e, flows = softflowd_run(cap, tmp, npk)
                times.append(e)
            rows.append(("softflowd 1.1.0", statistics.median(times), flows))
        base = next((r[1] for r in rows if r[0].startswith("nfpcapd")), None)
        print(f"{npk} packets, one core (taskset -c 0), median of {a.runs}\n")
        print("| tool | seconds | packets/s | flows | vs nfpcapd |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, s, flows in rows:
            rel = f"{base / s:.1f}x" if base else "-"
            print(f"| {name} | {s:.2f} | {npk / s:,.0f} | {flows} | {rel} |")
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def iter_pcap(path):
    with open(path, "rb") as f:
        f.read(24)
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            incl = struct.unpack("<IIII", h)[2]
            f.seek(incl, 1)
            yield incl


if __name__ == "__main__":
    main()
