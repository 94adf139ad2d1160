//! `weir pcap` and `weir sflow2pcap` as real processes.
//!
//! * The flows of `traffic/input_mix.pcap` (the traffic behind the gen_*
//!   captures) agree with softflowd's (its NetFlow v9 export of the same
//!   file, `gen_softflowd_v9.pcap`) and with nfpcapd 1.7.1's (run here when
//!   installed), within the differences docs/PCAP.md lists.
//! * sflow2pcap of every sFlow capture is read by tshark (when installed)
//!   with the number of packets and the addresses of the reference decode.
//!
//! Captures are read from ../shared/captures, never copied.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether ../shared/captures is next to the checkout (tests that read it
/// are skipped with a note when it is not, as the other capture tests are).
#[allow(clippy::print_stderr)]
fn have_captures() -> bool {
    if captures().is_dir() {
        return true;
    }
    eprintln!("skipped: {} not found", captures().display());
    false
}

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/captures")
}

fn input_mix() -> PathBuf {
    captures().join("traffic/input_mix.pcap")
}

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool).arg(arg).output().is_ok()
}

fn weir() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.env("TZ", "UTC");
    c
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A flow as compared: (proto, src, sport, dst, dport, packets, bytes).
type Row = (u8, String, u16, String, u16, u64, u64);

/// A 5-tuple: (proto, src, sport, dst, dport).
type Key = (u8, String, u16, String, u16);

fn port(s: &str) -> u16 {
    // ICMP type.code as nfdump prints it.
    match s.trim().split_once('.') {
        Some((t, c)) => t.parse::<u16>().unwrap() << 8 | c.parse::<u16>().unwrap(),
        None => s.trim().parse().unwrap(),
    }
}

fn weir_flows(dir: &Path) -> Vec<Row> {
    let out =
        weir().args(["query", "-R", dir.to_str().unwrap(), "-q", "-o", "csv"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("firstSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,packets,bytes,flows")
    );
    lines
        .map(|l| {
            let p: Vec<&str> = l.split(',').collect();
            (
                p[2].parse().unwrap(),
                p[3].to_string(),
                port(p[4]),
                p[5].to_string(),
                port(p[6]),
                p[7].parse().unwrap(),
                p[8].parse().unwrap(),
            )
        })
        .collect()
}

/// softflowd 1.1.0's flows of input_mix.pcap, from its NetFlow v9 export.
fn softflowd_flows() -> Vec<Row> {
    let cap = captures().join("gen_softflowd_v9.pcap");
    let out = weir().args(["decode", "-o", "csv", cap.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let p: Vec<&str> = l.split(',').collect();
            (
                p[9].parse().unwrap(),
                p[5].to_string(),
                p[7].parse().unwrap(),
                p[6].to_string(),
                p[8].parse().unwrap(),
                p[13].parse().unwrap(),
                p[14].parse().unwrap(),
            )
        })
        .collect()
}

fn nfpcapd_flows(tmp: &Path) -> Vec<Row> {
    let dir = tmp.join("nfpcapd");
    std::fs::create_dir_all(&dir).unwrap();
    let st = Command::new("timeout")
        .args(["60", "nfpcapd", "-r"])
        .arg(input_mix())
        .args(["-w", dir.to_str().unwrap(), "-t", "60"])
        .env("TZ", "UTC")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let out = Command::new("nfdump")
        .args(["-R", dir.to_str().unwrap(), "-q", "-N", "-6"])
        .args(["-o", "fmt:%pr|%sa|%sp|%da|%dp|%pkt|%byt"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let p: Vec<&str> = l.split('|').map(str::trim).collect();
            (p.len() == 7).then(|| {
                (
                    p[0].parse().unwrap(),
                    p[1].to_string(),
                    port(p[2]),
                    p[3].to_string(),
                    port(p[4]),
                    p[5].parse().unwrap(),
                    p[6].parse().unwrap(),
                )
            })
        })
        .collect()
}

/// Packets and bytes per (src, dst) address pair.
fn by_pair(rows: &[Row]) -> BTreeMap<(String, String), (u64, u64)> {
    let mut m = BTreeMap::new();
    for r in rows {
        let e = m.entry((r.1.clone(), r.3.clone())).or_insert((0, 0));
        e.0 += r.5;
        e.1 += r.6;
    }
    m
}

/// Packets and bytes per 5-tuple.
fn by_key(rows: &[Row]) -> BTreeMap<Key, (u64, u64)> {
    let mut m = BTreeMap::new();
    for r in rows {
        let e = m.entry((r.0, r.1.clone(), r.2, r.3.clone(), r.4)).or_insert((0, 0));
        e.0 += r.5;
        e.1 += r.6;
    }
    m
}

fn run_pcap(dir: &Path, extra: &[&str]) -> String {
    let out = weir()
        .args(["pcap", "-r"])
        .arg(input_mix())
        .args(["-w", dir.to_str().unwrap(), "-t", "60"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn flows_agree_with_softflowd_and_nfpcapd() {
    if !have_captures() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let report = run_pcap(&tmp.path().join("weir"), &[]);
    assert!(report.contains("read 1520 frames"), "{report}");
    assert!(report.contains("1516 packets"), "{report}");
    assert!(report.contains("4 not IP, 0 truncated, 0 malformed"), "{report}");
    let ours = weir_flows(&tmp.path().join("weir"));
    let w = by_pair(&ours);
    assert_eq!(w.values().map(|v| v.0).sum::<u64>(), 1516);

    // softflowd counts every fragment as a packet, as weir does, and later
    // fragments in a flow of ports 0; per address pair the packets agree
    // everywhere and the bytes everywhere but where a frame carried
    // Ethernet padding (softflowd counts captured bytes, weir the IP total
    // length).
    let s = by_pair(&softflowd_flows());
    assert_eq!(w.keys().collect::<Vec<_>>(), s.keys().collect::<Vec<_>>());
    let mut padded = 0;
    for (k, (wp, wb)) in &w {
        let (sp, sb) = s[k];
        assert_eq!(*wp, sp, "packets of {k:?}");
        if *wb != sb {
            assert!(sb > *wb && sb - wb <= 26 * sp, "bytes of {k:?}: weir {wb}, softflowd {sb}");
            padded += 1;
        }
    }
    assert!(padded <= 1, "{padded} pairs differ in bytes");

    if !(have("nfpcapd", "-V") && have("nfdump", "-V")) {
        eprintln!("skipped: nfpcapd/nfdump not installed (apt-get install -y nfdump)");
        return;
    }
    let nf = nfpcapd_flows(tmp.path());
    // Per 5-tuple: the same packets and bytes except where nfpcapd 1.7.1
    // reassembles IPv4 fragments (one packet per datagram, 20 header bytes
    // less per fragment), keeps IPv6 fragments and hop-by-hop headers as
    // protocol 44 / 0 with ports 0.
    let (wk, nk) = (by_key(&ours), by_key(&nf));
    let same = wk.iter().filter(|(k, v)| nk.get(*k) == Some(v)).count();
    assert!(same * 100 >= wk.len() * 95, "only {same} of {} 5-tuples agree", wk.len());
    let n = by_pair(&nf);
    assert_eq!(w.keys().collect::<Vec<_>>(), n.keys().collect::<Vec<_>>());
    let mut reassembled = 0;
    for (k, (wp, wb)) in &w {
        let (np, nb) = n[k];
        if k.0.contains(':') {
            assert_eq!((*wp, *wb), (np, nb), "IPv6 pair {k:?}");
        } else if (*wp, *wb) != (np, nb) {
            reassembled += 1;
            assert!(*wp > np, "{k:?}: weir {wp} packets, nfpcapd {np}");
            assert_eq!(wb - nb, 20 * (wp - np), "{k:?}: bytes weir {wb}, nfpcapd {nb}");
        }
    }
    assert!(reassembled <= 5, "{reassembled} pairs with fragments");
}

#[test]
fn snapshot_flows_keep_the_totals() {
    if !have_captures() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run_pcap(&tmp.path().join("a"), &[]);
    let report = run_pcap(&tmp.path().join("b"), &["--active-timeout", "100ms"]);
    assert!(report.contains("active timeout"), "{report}");
    let (a, b) = (weir_flows(&tmp.path().join("a")), weir_flows(&tmp.path().join("b")));
    assert!(b.len() > a.len(), "{} snapshot flows vs {}", b.len(), a.len());
    assert_eq!(by_key(&a), by_key(&b));
    // No snapshot flow spans more than the interval.
    let out = weir()
        .args(["query", "-R", tmp.path().join("b").to_str().unwrap(), "-q", "-o", "fmt:%td"])
        .args(["-N"])
        .output()
        .unwrap();
    for l in String::from_utf8(out.stdout).unwrap().lines().skip(1) {
        let secs: f64 = l.trim().parse().unwrap_or_else(|_| panic!("duration {l:?}"));
        assert!(secs < 0.1 + 1e-9, "{l}");
    }
}

#[test]
fn gzip_input_and_damaged_captures() {
    if !have_captures() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let gz = tmp.path().join("mix.pcap.gz");
    let data = std::fs::read(input_mix()).unwrap();
    if have("gzip", "--version") {
        let mut child = Command::new("gzip")
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let d2 = data.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&d2).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        std::fs::write(&gz, out.stdout).unwrap();
        let o = weir()
            .args(["pcap", "-r", gz.to_str().unwrap(), "-w"])
            .arg(tmp.path().join("gz"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("1516 packets"));
    }
    // pcapng (converted by editcap, from tshark's package): the same flows.
    if have("editcap", "-V") {
        let ng = tmp.path().join("mix.pcapng");
        let st = Command::new("editcap")
            .args(["-F", "pcapng"])
            .arg(input_mix())
            .arg(&ng)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(&std::fs::read(&ng).unwrap()[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
        let o = weir()
            .args(["pcap", "-r", ng.to_str().unwrap(), "-w"])
            .arg(tmp.path().join("ng"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("1516 packets, 679965 bytes"));
        run_pcap(&tmp.path().join("plain"), &[]);
        assert_eq!(
            by_key(&weir_flows(&tmp.path().join("ng"))),
            by_key(&weir_flows(&tmp.path().join("plain")))
        );
    }
    // Cut in the middle of a frame: the frames before are used, exit 1.
    let cut = tmp.path().join("cut.pcap");
    std::fs::write(&cut, &data[..data.len() / 2 + 7]).unwrap();
    let o = weir()
        .args(["pcap", "-r", cut.to_str().unwrap(), "-w"])
        .arg(tmp.path().join("cut"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("error: ") && text.contains("runs past the end"), "{text}");
    assert!(!weir_flows(&tmp.path().join("cut")).is_empty());
    // Not a capture at all: reported, nothing written, exit 1.
    let junk = tmp.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture").unwrap();
    let o = weir()
        .args(["pcap", "-r", junk.to_str().unwrap(), "-w"])
        .arg(tmp.path().join("junk"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("not a pcap or pcapng file"));
}

/// The sFlow captures and, per capture, the expected (src, dst) of every
/// sampled header (rows of the reference decode with a header protocol).
fn sflow_expectations() -> Vec<(PathBuf, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(captures()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".pcap") || !(name.starts_with("sflow_") || name.contains("sfprobe")) {
            continue;
        }
        let csv = std::fs::read_to_string(p.with_extension("expected.csv")).unwrap();
        let mut lines = csv.lines();
        let head: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
        let (hp, src, dst) = (col("header_protocol"), col("hdr_src"), col("hdr_dst"));
        let rows = lines
            .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
            .filter(|r| !r[hp].is_empty())
            .map(|r| (r[src].clone(), r[dst].clone()))
            .collect();
        out.push((p, rows));
    }
    out.sort();
    assert!(out.len() >= 13, "{} sFlow captures", out.len());
    out
}

/// (src, dst) of the outermost IP layer of every packet tshark reads.
fn tshark_addresses(pcap: &Path) -> Vec<(String, String)> {
    let out = Command::new("tshark")
        .args(["-n", "-r", pcap.to_str().unwrap(), "-T", "fields", "-E", "occurrence=f"])
        .args(["-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst"])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let g = |i: usize| f.get(i).copied().unwrap_or("").to_string();
            if g(0).is_empty() { (g(2), g(3)) } else { (g(0), g(1)) }
        })
        .collect()
}

#[test]
fn sflow2pcap_of_every_sflow_capture_reads_in_tshark() {
    if !have_captures() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tshark = have("tshark", "-v");
    if !tshark {
        eprintln!("skipped tshark checks: tshark not installed (apt-get install -y tshark)");
    }
    for (cap, expected) in sflow_expectations() {
        let name = cap.file_stem().unwrap().to_str().unwrap().to_string();
        let out = tmp.path().join(format!("{name}.out.pcap"));
        // To stdout, as `weir sflow2pcap -r X | tcpdump -r -` would.
        let o = weir().args(["sflow2pcap", "-r", cap.to_str().unwrap()]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.code().is_some_and(|c| c <= 1), "{name}: {err}");
        assert!(
            err.contains(&format!("-> {} packets written", expected.len())),
            "{name}: expected {} packets: {err}",
            expected.len()
        );
        std::fs::write(&out, &o.stdout).unwrap();
        let frames = weir_decode::pcap::frames(&o.stdout).unwrap().count();
        assert_eq!(frames, expected.len(), "{name}");
        if tshark {
            let mut got = tshark_addresses(&out);
            let mut want = expected.clone();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{name}");
        }
    }
}

#[test]
fn sflow2pcap_listens_and_tcpdump_reads_the_stream() {
    if !have_captures() {
        return;
    }
    let cap = captures().join("gen_pmacctd_sfprobe.pcap");
    let dgs = weir_decode::pcap::udp_datagrams(&std::fs::read(&cap).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("live.pcap");
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = weir()
        .args(["sflow2pcap", "-l", &format!("127.0.0.1:{port}"), "--duration", "4s", "-w"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Kill(child);
    std::thread::sleep(Duration::from_millis(800));
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &dgs {
        tx.send_to(&d.payload, ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "sflow2pcap did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut text).unwrap();
    assert!(text.contains("62 datagrams") && text.contains("-> 397 packets written"), "{text}");
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(weir_decode::pcap::frames(&bytes).unwrap().count(), 397);
    if have("tcpdump", "--version") {
        let mut td = Command::new("tcpdump")
            .args(["-n", "-r", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        td.stdin.take().unwrap().write_all(&bytes).unwrap();
        let o = td.wait_with_output().unwrap();
        assert!(o.status.success());
        let lines = String::from_utf8_lossy(&o.stdout).lines().count();
        assert_eq!(lines, 397);
    }
}

/// `weir pcap -i lo`: UDP datagrams sent on the loopback interface while
/// the capture runs become one flow with their exact packet count and IP
/// bytes, each frame counted once (loopback shows it leaving and
/// arriving). Needs CAP_NET_RAW: skipped with a note without it.
#[cfg(target_os = "linux")]
#[test]
#[allow(clippy::print_stderr)]
fn live_capture_on_loopback() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Kill(
        weir()
            .args(["pcap", "-i", "lo", "-w", dir.path().to_str().unwrap()])
            .args(["-t", "2", "-e", "2,1", "--duration", "3s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    if !first.starts_with("capturing on lo") {
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
        assert!(err.contains("CAP_NET_RAW"), "{first}{err}");
        eprintln!("skipped: {}", err.trim());
        return;
    }
    // The socket is open: everything sent from now on is captured.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap();
    let mut ip_bytes = 0u64;
    for i in 0..20usize {
        let payload = vec![0x5a; 50 + 37 * i];
        tx.send_to(&payload, to).unwrap();
        ip_bytes += 28 + payload.len() as u64;
    }
    let status = child.0.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(status.success(), "{first}{rest}");
    let (sport, dport) = (tx.local_addr().unwrap().port(), to.port());
    let ours: Vec<Row> = weir_flows(dir.path())
        .into_iter()
        .filter(|r| r.0 == 17 && r.2 == sport && r.4 == dport)
        .collect();
    assert_eq!(
        ours,
        vec![(17, "127.0.0.1".to_string(), sport, "127.0.0.1".to_string(), dport, 20, ip_bytes)],
        "{first}{rest}"
    );
    assert!(rest.contains("loopback frames seen twice"), "{rest}");
}
