//! `weir collect` as a real process on loopback: captures replayed to it
//! end up as the same flows, SIGTERM finalizes, a restart in the same slot
//! keeps both parts, unknown exporters are dropped and counted, and the
//! metrics endpoint tells the truth. Every process started is stopped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_decode::{Datagram, Decoder, DecoderConfig, Sink};
use weir_record::FlowRecord;
use weir_store::{ChunkReader, SlotFile, TimeRange, list_files};

struct Running {
    child: Child,
    netflow: SocketAddr,
    sflow: SocketAddr,
    metrics: Option<SocketAddr>,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, extra: &[&str]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.args(["collect", "-w", dir.to_str().unwrap()])
        .args(["--netflow", "127.0.0.1:0", "--sflow", "127.0.0.1:0"])
        .args(["--metrics", "127.0.0.1:0", "--log", "warn"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut netflow, mut sflow, mut metrics) = (None, None, None);
    let mut line = String::new();
    while netflow.is_none() || sflow.is_none() || metrics.is_none() {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "collector exited early");
        let addr = |l: &str| l.split_whitespace().nth(2).unwrap().parse::<SocketAddr>().unwrap();
        if line.ends_with("(netflow)\n") {
            netflow = Some(addr(&line));
        } else if line.ends_with("(sflow)\n") {
            sflow = Some(addr(&line));
        } else if let Some(rest) = line.strip_prefix("metrics on http://") {
            metrics = Some(rest.trim().trim_end_matches("/metrics").parse().unwrap());
        }
    }
    Running { child, netflow: netflow.unwrap(), sflow: sflow.unwrap(), metrics, stdout }
}

fn signal(r: &Running, sig: &str) {
    let pid = r.child.id().to_string();
    assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
}

/// SIGTERM, then wait (bounded) and return the rest of stdout.
fn stop(mut r: Running) -> String {
    signal(&r, "-TERM");
    let t0 = Instant::now();
    loop {
        if let Some(status) = r.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "collector did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut rest = String::new();
    r.stdout.read_to_string(&mut rest).unwrap();
    rest
}

fn metrics(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// The value of the metric line starting with `prefix` (name + labels).
fn metric(page: &str, prefix: &str) -> Option<u64> {
    page.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn rows(dir: &Path) -> Vec<FlowRecord> {
    let mut out = Vec::new();
    let mut r = ChunkReader::new();
    let Ok(files) = list_files(dir, TimeRange::ALL) else { return out };
    for e in files {
        let f = SlotFile::open(&e.path).unwrap();
        for i in 0..f.blocks().len() {
            out.extend(f.block(i).unwrap().read_all(&mut r).unwrap().records());
        }
    }
    out
}

fn captures() -> Option<PathBuf> {
    let d = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/captures"));
    d.is_dir().then_some(d)
}

struct Count(u64);
impl Sink for Count {
    fn flow(&mut self, _f: &FlowRecord) {
        self.0 += 1;
    }
}

/// Sends every UDP payload of a capture from loopback address `from`;
/// returns (datagrams, flows the decoder finds in them).
fn replay(path: &Path, from: &str, to: SocketAddr) -> (u64, u64) {
    let bytes = std::fs::read(path).unwrap();
    let cap = weir_decode::pcap::read_capture(&bytes).unwrap();
    let sock = UdpSocket::bind(format!("{from}:0")).unwrap();
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut flows = Count(0);
    for d in &cap.datagrams {
        let dg = Datagram {
            exporter: sock.local_addr().unwrap(),
            received_ms: d.ts_ms,
            payload: &d.payload,
        };
        let _ = dec.decode(&dg, &mut flows);
        sock.send_to(&d.payload, to).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    (cap.datagrams.len() as u64, flows.0)
}

fn walk_tmp(d: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk_tmp(&p, out);
        } else if p.to_string_lossy().ends_with(".tmp") {
            out.push(p);
        }
    }
}

/// Every capture in ../shared/captures, replayed from its own loopback
/// address, ends up in the slot files as exactly the flows the decoder
/// finds in it; footers and metrics count every datagram per exporter;
/// SIGTERM leaves only finalized files.
#[test]
fn replayed_captures_are_stored_completely() {
    let Some(caps) = captures() else { return };
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), &["-t", "3", "-M"]);
    let mut names: Vec<PathBuf> = std::fs::read_dir(&caps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    names.sort();
    let mut expect = Vec::new();
    for (i, p) in names.iter().enumerate() {
        let from = format!("127.0.{}.{}", 1 + i / 200, 1 + i % 200);
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let sflow = name.contains("sflow") || name.contains("sfprobe");
        let to = if sflow { r.sflow } else { r.netflow };
        let (datagrams, flows) = replay(p, &from, to);
        expect.push((from, datagrams, flows, sflow, p.clone()));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let page = metrics(r.metrics.unwrap());
    let summary = stop(r);
    let total: u64 = expect.iter().map(|e| e.2).sum();
    assert!(summary.contains(&format!(" {total} flows into ")), "{summary}");
    assert!(summary.contains("queue drops 0"), "{summary}");
    let mut leftovers = Vec::new();
    walk_tmp(dir.path(), &mut leftovers);
    assert!(leftovers.is_empty(), "unfinished files after SIGTERM: {leftovers:?}");
    for (from, datagrams, flows, sflow, path) in &expect {
        let m: u64 = page
            .lines()
            .filter(|l| {
                l.starts_with("weir_datagrams_total{")
                    && l.contains(&format!("exporter=\"{from}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        if *sflow {
            // sFlow is accounted under the agent address, not the sender's.
            continue;
        }
        assert_eq!(m, *datagrams, "metrics datagrams of {}", path.display());
        let sub = dir.path().join(from.replace('.', "-"));
        assert_eq!(rows(&sub).len() as u64, *flows, "{}", path.display());
        let stored: u64 = list_files(&sub, TimeRange::ALL)
            .unwrap()
            .iter()
            .flat_map(|e| SlotFile::open(&e.path).unwrap().info().exporters.clone())
            .map(|x| x.datagrams)
            .sum();
        assert_eq!(stored, *datagrams, "footer datagrams of {}", path.display());
    }
    assert_eq!(rows(dir.path()).len() as u64, total);
}

fn v5_datagram(seq: u32, n: u16) -> Vec<u8> {
    let mut d = vec![0u8; 24 + 48 * n as usize];
    d[1] = 5;
    d[2..4].copy_from_slice(&n.to_be_bytes());
    d[4..8].copy_from_slice(&100_000u32.to_be_bytes());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as u32;
    d[8..12].copy_from_slice(&now.to_be_bytes());
    d[16..20].copy_from_slice(&seq.to_be_bytes());
    for i in 0..n as usize {
        let r = &mut d[24 + 48 * i..24 + 48 * (i + 1)];
        r[0..4].copy_from_slice(&[10, 0, 0, 1]);
        r[4..8].copy_from_slice(&[10, 0, 0, 2]);
        r[16..20].copy_from_slice(&1u32.to_be_bytes());
        r[20..24].copy_from_slice(&100u32.to_be_bytes());
        r[24..28].copy_from_slice(&99_000u32.to_be_bytes());
        r[28..32].copy_from_slice(&99_500u32.to_be_bytes());
        r[32..34].copy_from_slice(&1234u16.to_be_bytes());
        r[34..36].copy_from_slice(&80u16.to_be_bytes());
        r[38] = 6;
    }
    d
}

/// A collector restarted within the slot writes a second file for it and
/// leaves the first untouched: both parts are kept.
#[test]
fn restart_in_the_same_slot_keeps_both_parts() {
    let dir = tempfile::tempdir().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (round, n) in [(0u32, 10u16), (1, 7)] {
        let r = start(dir.path(), &["-t", "3600", "-S", "0"]);
        sock.send_to(&v5_datagram(round * 100, n), r.netflow).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let s = stop(r);
        assert!(s.contains(&format!(" {n} flows into 1 files")), "{s}");
    }
    let files = list_files(dir.path(), TimeRange::ALL).unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(files[0].name.start_s, files[1].name.start_s);
    assert_eq!((files[0].name.seq, files[1].name.seq), (0, 1));
    assert_eq!(rows(dir.path()).len(), 17);
}

/// With fixed sources, datagrams from other exporters are dropped and
/// counted; the metrics endpoint shows them.
#[test]
fn unknown_exporters_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), &["-n", "lab,10.0.0.0/8;192.0.2.0/24,lab"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in 0..5 {
        sock.send_to(&v5_datagram(seq * 3, 3), r.netflow).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1200));
    let page = metrics(r.metrics.unwrap());
    assert_eq!(
        metric(&page, "weir_unknown_exporter_datagrams_total{exporter=\"127.0.0.1\"}"),
        Some(5),
        "{page}"
    );
    let s = stop(r);
    assert!(s.contains("datagrams from unknown exporters 5"), "{s}");
    assert_eq!(rows(&dir.path().join("lab")).len(), 0);
}

/// Metrics report datagrams, flows, sequence gaps and decode errors per
/// exporter.
#[test]
fn metrics_count_flows_sequence_gaps_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), &[]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // v5 sequence = flows sent before: 0, 4, then a gap of 10 flows, 18.
    for (seq, n) in [(0, 4), (4, 4), (18, 4)] {
        sock.send_to(&v5_datagram(seq, n), r.netflow).unwrap();
    }
    sock.send_to(b"\x00\x2a garbage", r.netflow).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let page = metrics(r.metrics.unwrap());
    let ex = "{exporter=\"127.0.0.1\",protocol=\"netflow v5\",domain=\"0\"}";
    assert_eq!(metric(&page, &format!("weir_datagrams_total{ex}")), Some(3), "{page}");
    assert_eq!(metric(&page, &format!("weir_flows_total{ex}")), Some(12), "{page}");
    assert_eq!(metric(&page, &format!("weir_sequence_failures_total{ex}")), Some(10), "{page}");
    assert!(
        page.contains("weir_decode_errors_total{exporter=\"127.0.0.1\",protocol=\"unknown\""),
        "{page}"
    );
    assert_eq!(metric(&page, "weir_queue_dropped_datagrams_total{"), Some(0));
    stop(r);
}

/// -R forwards every datagram unchanged; -x runs after each rotation with
/// its placeholders and without a shell; -P holds the pid while running.
#[test]
fn repeater_after_rotation_command_and_pidfile() {
    let dir = tempfile::tempdir().unwrap();
    let marks = tempfile::tempdir().unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let pidfile = dir.path().join("weir.pid");
    let repeat = format!("127.0.0.1/{}", sink.local_addr().unwrap().port());
    let exec = format!("touch {}/%i-%u", marks.path().display());
    let r = start(
        dir.path(),
        &[
            "-R",
            &repeat,
            "-x",
            &exec,
            "-P",
            pidfile.to_str().unwrap(),
            "-I",
            "edge",
            "-t",
            "3600",
            "-S",
            "0",
        ],
    );
    let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert_eq!(pid, r.child.id());
    let d = v5_datagram(0, 2);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(&d, r.netflow).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = sink.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &d[..], "repeated unchanged");
    std::thread::sleep(Duration::from_millis(300));
    stop(r);
    assert!(!pidfile.exists(), "pid file removed at exit");
    let files = list_files(dir.path(), TimeRange::ALL).unwrap();
    assert_eq!(files.len(), 1);
    let mark = marks.path().join(format!("edge-{}", files[0].name.start_s));
    assert!(
        mark.exists(),
        "after-rotation command ran: {:?}",
        std::fs::read_dir(marks.path()).unwrap().count()
    );
}

/// -f places the flows of a capture in slots by capture time.
#[test]
fn capture_input_places_flows_by_capture_time() {
    let Some(caps) = captures() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cap = caps.join("gen_softflowd_ipfix.pcap");
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "collect",
            "-f",
            cap.to_str().unwrap(),
            "-w",
            dir.path().to_str().unwrap(),
            "-t",
            "60",
            "--log",
            "warn",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // 195 flow records; the one options record (INDEX.md: 195/1) is not a flow.
    assert!(text.contains("collected 7 datagrams, 195 flows"), "{text}");
    let bytes = std::fs::read(&cap).unwrap();
    let first_ts = weir_decode::pcap::read_capture(&bytes).unwrap().datagrams[0].ts_ms / 1000;
    let files = list_files(dir.path(), TimeRange::ALL).unwrap();
    assert_eq!(files[0].name.start_s, weir_store::slot_start(first_ts as i64, 60));
    assert_eq!(rows(dir.path()).len(), 195);
}

/// -f - reads the capture from stdin; a gzip-compressed capture is
/// decompressed on the way, and a broken one is named.
#[test]
fn capture_input_from_stdin_and_gzip() {
    let Some(caps) = captures() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cap = std::fs::read(caps.join("gen_softflowd_ipfix.pcap")).unwrap();
    let run = |input: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["collect", "-f", "-", "-w", dir.path().to_str().unwrap(), "--log", "warn"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&cap);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("collected 7 datagrams, 195 flows"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&cap).unwrap();
    let gz = gz.finish().unwrap();
    let out = run(&gz);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("collected 7 datagrams, 195 flows"));
    // Cut in the middle: the datagrams before the cut are collected, and
    // the cut is a warning naming where reading failed.
    let out = run(&gz[..gz.len() * 2 / 3]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (text, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let flows: u64 = text
        .split("datagrams, ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(flows > 0 && flows < 195, "{text}");
    assert!(err.contains("reading failed after"), "{err}");
    // The gzip stream cut off after its header: nothing to read, named.
    let out = run(&gz[..10]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("capture -"), "{err}");
}

/// kill -9 leaves the open slot unfinished; the next start recovers every
/// complete block into a published file and says so.
#[test]
fn kill_9_then_restart_recovers_the_open_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = start(dir.path(), &["-t", "3600", "-S", "0", "-I", "crashy"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // 40 000 flows: more than one 32 768-row block, so at least one block
    // reaches the disk before the crash.
    for i in 0..1000u32 {
        sock.send_to(&v5_datagram(i * 30, 30), r.netflow).unwrap();
        sock.send_to(&v5_datagram(i * 30 + 15, 10), r.netflow).unwrap();
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    signal(&r, "-KILL");
    r.child.wait().unwrap();
    let mut tmp = Vec::new();
    walk_tmp(dir.path(), &mut tmp);
    assert_eq!(tmp.len(), 1, "the crash left the open slot unfinished");
    assert!(list_files(dir.path(), TimeRange::ALL).unwrap().is_empty());

    let r = start(dir.path(), &["-t", "3600", "-S", "0", "-I", "crashy"]);
    let out = stop(r);
    let line = out.lines().find(|l| l.starts_with("recovered ")).unwrap_or_else(|| panic!("{out}"));
    let kept: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!((32_768..=40_000).contains(&kept), "{line}");
    let mut tmp = Vec::new();
    walk_tmp(dir.path(), &mut tmp);
    assert!(tmp.is_empty(), "{tmp:?}");
    let files = list_files(dir.path(), TimeRange::ALL).unwrap();
    let recovered = files
        .iter()
        .map(|e| SlotFile::open(&e.path).unwrap())
        .find(|f| f.rows() as usize == kept)
        .unwrap();
    assert!(recovered.verify().is_ok());
    assert_eq!(recovered.info().ident, "crashy");
    assert_eq!(rows(dir.path()).len(), kept);
}

/// -R with -A: the repeated datagram reaches the next hop with the
/// exporter's own address and port, unchanged. Needs CAP_NET_RAW: skipped
/// with a note without it.
#[test]
#[allow(clippy::print_stderr)]
fn spoofing_repeater_keeps_the_exporter_address() {
    let dir = tempfile::tempdir().unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let repeat = format!("127.0.0.1/{}", sink.local_addr().unwrap().port());
    let probe = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["collect", "-w", dir.path().to_str().unwrap(), "--netflow", "127.0.0.1:0"])
        .args(["-R", &repeat, "-A", "--duration", "0s", "--log", "warn"])
        .output()
        .unwrap();
    if !probe.status.success() {
        let err = String::from_utf8_lossy(&probe.stderr);
        assert!(err.contains("CAP_NET_RAW"), "{err}");
        eprintln!("skipped: {}", err.trim());
        return;
    }
    let r = start(dir.path(), &["-R", &repeat, "-A", "-t", "3600", "-S", "0"]);
    // An exporter on another loopback address than the collector's.
    let exporter = UdpSocket::bind("127.0.0.2:0").unwrap();
    let d = v5_datagram(0, 3);
    exporter.send_to(&d, r.netflow).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = sink.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &d[..], "repeated unchanged");
    assert_eq!(from, exporter.local_addr().unwrap(), "the exporter's address and port");
    std::thread::sleep(Duration::from_millis(300));
    let out = stop(r);
    assert!(out.contains(" 3 flows into 1 files"), "{out}");
}

/// -J: a collector that joined a multicast group (on the loopback
/// interface) stores the flows an exporter sends to the group.
#[test]
fn multicast_group_is_joined() {
    let dir = tempfile::tempdir().unwrap();
    let group = "239.255.77.1";
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["collect", "-w", dir.path().to_str().unwrap(), "-J", group, "-p", "0"])
        .args(["--multicast-if", "127.0.0.1", "-t", "3600", "-S", "0", "--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    if !line.starts_with("listening on") {
        // Sandboxes without multicast on the loopback interface.
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let _ = child.wait();
        assert!(err.contains("cannot listen on"), "{line}{err}");
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: {}", err.trim());
        }
        return;
    }
    let addr: SocketAddr = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert_eq!(addr.ip().to_string(), group, "{line}");
    let r = Running { child, netflow: addr, sflow: addr, metrics: None, stdout };
    // Out through the loopback interface only.
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    s.set_multicast_if_v4(&"127.0.0.1".parse().unwrap()).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let sock: UdpSocket = s.into();
    sock.send_to(&v5_datagram(0, 7), addr).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = stop(r);
    assert!(out.contains(" 7 flows into 1 files"), "{out}");
    assert_eq!(rows(dir.path()).len(), 7);
}

/// An IPv6 listener receives from an IPv6 exporter; the exporter's address
/// is stored in every flow and in the footer. Twenty datagrams back to
/// back: the first wakes the receive thread, the rest are taken many per
/// `recvmmsg` call, whose IPv6 source addresses must come through too.
#[test]
fn ipv6_listener_and_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.args([
        "collect",
        "-w",
        dir.path().to_str().unwrap(),
        "--netflow",
        "[::1]:0",
        "-t",
        "3600",
        "-S",
        "0",
        "--log",
        "warn",
    ])
    .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr: SocketAddr = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(addr.is_ipv6(), "{line}");
    let r = Running { child, netflow: addr, sflow: addr, metrics: None, stdout };
    let sock = UdpSocket::bind("[::1]:0").unwrap();
    for seq in 0..20 {
        sock.send_to(&v5_datagram(seq * 5, 5), r.netflow).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let out = stop(r);
    assert!(out.contains(" 100 flows into 1 files"), "{out}");
    let recs = rows(dir.path());
    assert_eq!(recs.len(), 100);
    let v6 = weir_record::ip_to_u128("::1".parse().unwrap());
    assert!(recs.iter().all(|f| f.exporter_addr == Some(v6)));
}

/// Files under `d` whose name ends with `suffix`.
fn walk_suffix(d: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk_suffix(&p, suffix, out);
        } else if p.to_string_lossy().ends_with(suffix) {
            out.push(p);
        }
    }
}

/// (source, destination) of the IPv4/IPv6 packet in an Ethernet frame
/// (802.1Q tags skipped).
fn frame_addrs(f: &[u8]) -> Option<(u128, u128)> {
    let v4 =
        |b: &[u8]| weir_record::ip_to_u128(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).into());
    let v6 = |b: &[u8]| u128::from_be_bytes(b.try_into().unwrap());
    let mut at = 12;
    while matches!(f.get(at..at + 2)?, [0x81, 0x00] | [0x88, 0xa8]) {
        at += 4;
    }
    let ip = f.get(at + 2..)?;
    match f.get(at..at + 2)? {
        [0x08, 0x00] if ip.len() >= 20 => Some((v4(&ip[12..16]), v4(&ip[16..20]))),
        [0x86, 0xdd] if ip.len() >= 40 => Some((v6(&ip[8..24]), v6(&ip[24..40]))),
        _ => None,
    }
}

/// Frames (time, source, destination) of every published header capture.
fn header_frames(dir: &Path) -> Vec<(u64, u128, u128)> {
    let mut pcaps = Vec::new();
    walk_suffix(dir, ".pcap", &mut pcaps);
    let mut out = Vec::new();
    for p in pcaps {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(!name.starts_with('.'), "unpublished capture {name}");
        // Beside its slot file.
        assert!(p.with_extension("").exists() || name.contains(".tmp"), "{name} has no slot file");
        let bytes = std::fs::read(&p).unwrap();
        for f in weir_decode::pcap::frames(&bytes).unwrap() {
            let f = f.unwrap();
            assert_eq!(f.linktype, 1);
            assert!(f.orig_len as usize >= f.data.len());
            let (s, d) = frame_addrs(f.data).expect("an IP packet");
            out.push((f.ts_ns / 1_000_000, s, d));
        }
    }
    out.sort();
    out
}

/// `--sflow-pcap`: the packet headers of the generator's sFlow samples are
/// kept as a pcap beside each slot file, one frame per stored sFlow flow,
/// with the flow's addresses, stamped with the flow's arrival time;
/// NetFlow datagrams add none; queries ignore the captures.
#[test]
fn sflow_headers_are_kept_beside_the_slot_files() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), &["-t", "2", "--sflow-pcap"]);
    for (fmt, to) in [("sflow", r.sflow), ("v9", r.netflow)] {
        let st = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["gen", "--send", &to.to_string(), "--format", fmt])
            .args(["--rate", "1500/s", "--duration", "3s", "--seed", "5"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
    std::thread::sleep(Duration::from_millis(300));
    let out = stop(r);
    let flows = rows(dir.path());
    let mut sflow: Vec<(u64, u128, u128)> = flows
        .iter()
        .filter(|f| f.flow_version == Some(0x85))
        .map(|f| (f.received, f.src_addr.unwrap(), f.dst_addr.unwrap()))
        .collect();
    sflow.sort();
    assert!(sflow.len() >= 4000, "{} sFlow flows", sflow.len());
    assert!(flows.len() > sflow.len() + 4000, "v9 flows missing");
    let frames = header_frames(dir.path());
    assert_eq!(frames.len(), sflow.len());
    assert_eq!(frames, sflow);
    let mut pcaps = Vec::new();
    walk_suffix(dir.path(), ".pcap", &mut pcaps);
    assert!(pcaps.len() >= 2, "several slots: {pcaps:?}");
    let line = out.lines().find(|l| l.starts_with("kept ")).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        line,
        format!(
            "kept {} sFlow sampled headers in pcaps beside the slot files; not kept 0",
            sflow.len()
        )
    );
    // tshark (installed by .ci/run) reads every capture whole.
    if Command::new("tshark").arg("-v").output().is_ok() {
        let mut read = 0;
        for p in &pcaps {
            let out = Command::new("tshark")
                .args(["-n", "-r", p.to_str().unwrap(), "-T", "fields", "-e", "frame.number"])
                .output()
                .unwrap();
            assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
            read += String::from_utf8_lossy(&out.stdout).lines().count();
        }
        assert_eq!(read, sflow.len());
    } else {
        eprintln!("skipped the tshark check: tshark not installed (apt-get install -y tshark)");
    }
    // weir query reads the same directory without tripping over them.
    let q = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["query", "-R", dir.path().to_str().unwrap(), "-q", "-o", "null"])
        .output()
        .unwrap();
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
}

/// kill -9 with `--sflow-pcap`: the next start publishes the open slot's
/// header capture beside the recovered slot, cut after its last complete
/// frame.
#[test]
fn kill_9_recovers_the_header_capture() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["-t", "3600", "-S", "0", "--sflow-pcap"];
    let mut r = start(dir.path(), &args);
    let st = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["gen", "--send", &r.sflow.to_string(), "--format", "sflow"])
        .args(["--rate", "20000/s", "--duration", "2s", "--seed", "6"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    // The decode thread flushes the capture when it cuts a block (every
    // 10 s of a slow source) or a block fills (32 768 rows): 40 000 flows
    // fill one.
    std::thread::sleep(Duration::from_millis(1500));
    signal(&r, "-KILL");
    r.child.wait().unwrap();
    let mut tmp = Vec::new();
    walk_suffix(dir.path(), ".tmp.pcap", &mut tmp);
    assert_eq!(tmp.len(), 1, "the crash left the open capture behind");
    // Tear the last frame, as a crash in the middle of a write would.
    let len = std::fs::metadata(&tmp[0]).unwrap().len();
    assert!(len > 24 + 16, "nothing reached the disk before the crash ({len} bytes)");
    std::fs::OpenOptions::new().write(true).open(&tmp[0]).unwrap().set_len(len - 5).unwrap();

    let r = start(dir.path(), &args);
    let out = stop(r);
    let line = out
        .lines()
        .find(|l| l.starts_with("recovered ") && l.contains("sampled headers"))
        .unwrap_or_else(|| panic!("{out}"));
    let kept: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut left = Vec::new();
    walk_suffix(dir.path(), ".tmp.pcap", &mut left);
    assert!(left.is_empty(), "{left:?}");
    let frames = header_frames(dir.path());
    assert_eq!(frames.len(), kept);
    assert!(kept > 1000, "{line}");
    assert!(frames.iter().all(|f| f.0 > 1_700_000_000_000), "stamped with arrival time");
}
