//! Test harness: runs the real nfcapd on loopback, feeds it datagrams built
//! with weir-encode, and reads files back with the real nfdump.
#![allow(dead_code, clippy::print_stderr, clippy::print_stdout)]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weir_encode::netflow::{
    LegacyEncoder, LegacyVersion, Template, TemplateEncoder, TemplateProtocol,
};
use weir_record::{FlowRecord, ip_to_u128};

/// Whether `prog` runs (`prog -V`).
pub fn have(prog: &str) -> bool {
    Command::new(prog).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Whether nfcapd and nfdump are installed; prints a note if not.
pub fn nfdump_installed(test: &str) -> bool {
    let ok = have("nfcapd") && have("nfdump");
    if !ok {
        eprintln!("note: {test} skipped: nfcapd/nfdump (1.7) not installed");
    }
    ok
}

/// A running nfcapd, stopped with SIGTERM on [`Nfcapd::stop`] or drop.
pub struct Nfcapd {
    child: Option<Child>,
    /// The flow directory (`-w`).
    pub dir: PathBuf,
    /// The UDP port it listens on (127.0.0.1).
    pub port: u16,
}

fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
    s.local_addr().unwrap().port()
}

impl Nfcapd {
    /// Starts `nfcapd -b 127.0.0.1 -p PORT -w DIR -t 60 -I ident [extra]`.
    pub fn start(dir: &Path, ident: &str, extra: &[&str]) -> Nfcapd {
        Nfcapd::spawn(dir, &["-I", ident], "-w", extra)
    }

    /// Starts nfcapd with dynamic sources (`-M DIR`: one directory per
    /// exporter address).
    pub fn start_dynamic(dir: &Path, extra: &[&str]) -> Nfcapd {
        Nfcapd::spawn(dir, &[], "-M", extra)
    }

    fn spawn(dir: &Path, ident: &[&str], dir_flag: &str, extra: &[&str]) -> Nfcapd {
        std::fs::create_dir_all(dir).unwrap();
        for _ in 0..5 {
            let port = free_udp_port();
            let child = Command::new("nfcapd")
                .args(["-b", "127.0.0.1", "-p", &port.to_string(), "-t", "60"])
                .args(ident)
                .arg(dir_flag)
                .arg(dir)
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nfcapd");
            let mut n = Nfcapd { child: Some(child), dir: dir.to_path_buf(), port };
            // nfcapd is listening once the port can no longer be bound.
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(5) {
                if UdpSocket::bind(("127.0.0.1", port)).is_err() {
                    std::thread::sleep(Duration::from_millis(50));
                    return n;
                }
                if let Some(c) = n.child.as_mut()
                    && c.try_wait().ok().flatten().is_some()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            n.stop();
        }
        panic!("nfcapd did not start");
    }

    /// Sends datagrams to it (paced a little so the socket buffer keeps up).
    pub fn send(&self, datagrams: &[Vec<u8>]) {
        self.send_from("127.0.0.1", datagrams);
    }

    /// Sends datagrams from another loopback address (127.0.0.2, ...).
    pub fn send_from(&self, ip: &str, datagrams: &[Vec<u8>]) {
        let s = UdpSocket::bind((ip, 0)).unwrap();
        for (i, d) in datagrams.iter().enumerate() {
            s.send_to(d, ("127.0.0.1", self.port)).unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Stops it with SIGTERM (nfcapd then renames the current file to its
    /// slot name) and returns the nfcapd files in its directory tree.
    pub fn stop(&mut self) -> Vec<PathBuf> {
        if let Some(mut c) = self.child.take() {
            // Give nfcapd time to process the last datagrams.
            std::thread::sleep(Duration::from_millis(300));
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let t0 = Instant::now();
            loop {
                if c.try_wait().ok().flatten().is_some() {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(10) {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut files = Vec::new();
        collect(&self.dir, &mut files);
        files.sort();
        files
    }
}

/// The nfcapd files (not `nfcapd.current.*`) under `dir`, sorted.
pub fn nfcapd_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    collect(dir, &mut v);
    v.sort();
    v
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("nfcapd.") && !n.starts_with("nfcapd.current"))
        {
            out.push(p);
        }
    }
}

impl Drop for Nfcapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Checks that nfcapd kept (nearly) all of `sent` flows: UDP on a loaded
/// machine may drop a few datagrams, which is not what the tests are about
/// (every flow that arrived is compared with nfdump's reading).
pub fn received_most(got: u64, sent: u64, what: &str) {
    assert!(got <= sent && got * 10 >= sent * 9, "{what}: {got} of {sent} flows arrived");
    if got < sent {
        eprintln!("note: {what}: {got} of {sent} flows arrived (UDP drops)");
    }
}

/// Milliseconds since the epoch now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `n` flows with every field weir stores set (IPv4 and IPv6, TCP, UDP,
/// ICMP), first/last within the last minute before `now`.
pub fn full_flows(rng: &mut Rng, n: usize, now: u64, v6: bool) -> Vec<FlowRecord> {
    (0..n)
        .map(|i| {
            let proto = [6u8, 17, 1, 6, 17, 47][rng.below(6) as usize];
            let proto = if v6 && proto == 1 { 58 } else { proto };
            let first = now - 30_000 - rng.below(20_000);
            let last = first + rng.below(10_000);
            let addr = |r: &mut Rng| {
                if v6 {
                    ip_to_u128(std::net::IpAddr::V6(std::net::Ipv6Addr::from(
                        (0x2001_0db8u128 << 96) | u128::from(r.next()),
                    )))
                } else {
                    ip_to_u128(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                        0x0a00_0000 | (r.next() as u32 & 0x00ff_ffff),
                    )))
                }
            };
            let icmp = proto == 1 || proto == 58;
            let mpls = |r: &mut Rng, bottom: bool| {
                Some(((r.below(1 << 20) as u32) << 4) | ((r.below(8) as u32) << 1) | bottom as u32)
            };
            FlowRecord {
                first,
                last,
                received: 0,
                src_addr: Some(addr(rng)),
                dst_addr: Some(addr(rng)),
                src_port: if icmp { 0 } else { rng.below(65536) as u16 },
                dst_port: if icmp {
                    (rng.below(20) as u16) << 8 | rng.below(5) as u16
                } else {
                    rng.below(65536) as u16
                },
                proto,
                tcp_flags: if proto == 6 { rng.below(64) as u8 } else { 0 },
                src_tos: rng.below(256) as u8,
                dst_tos: Some(rng.below(256) as u8),
                packets: 1 + rng.below(1000),
                bytes: 40 + rng.below(5_000_000_000),
                out_packets: Some(rng.below(1000)),
                out_bytes: Some(rng.below(1_000_000)),
                flows: Some(1 + rng.below(3)),
                input_if: Some(rng.below(1 << 20) as u32),
                output_if: Some(rng.below(1 << 20) as u32),
                src_as: Some(rng.below(1 << 32) as u32),
                dst_as: Some(rng.below(1 << 32) as u32),
                next_as: Some(rng.below(65536) as u32),
                prev_as: Some(rng.below(65536) as u32),
                next_hop: Some(addr(rng)),
                bgp_next_hop: Some(addr(rng)),
                src_mask: Some(rng.below(33) as u8),
                dst_mask: Some(rng.below(33) as u8),
                src_vlan: Some(rng.below(4096) as u16),
                dst_vlan: Some(rng.below(4096) as u16),
                in_src_mac: Some(rng.next() & 0xffff_ffff_ffff),
                out_dst_mac: Some(rng.next() & 0xffff_ffff_ffff),
                in_dst_mac: Some(rng.next() & 0xffff_ffff_ffff),
                out_src_mac: Some(rng.next() & 0xffff_ffff_ffff),
                mpls1: mpls(rng, false),
                mpls2: mpls(rng, false),
                mpls3: mpls(rng, i % 2 == 0),
                mpls4: mpls(rng, false),
                mpls5: mpls(rng, false),
                mpls6: mpls(rng, false),
                mpls7: mpls(rng, false),
                mpls8: mpls(rng, false),
                mpls9: mpls(rng, false),
                mpls10: mpls(rng, true),
                direction: Some(rng.below(2) as u8),
                fwd_status: Some([64u8, 65, 128, 129, 192][rng.below(5) as usize]),
                engine_type: Some(rng.below(256) as u8),
                engine_id: Some(rng.below(256) as u8),
                sampling_rate: None,
                end_reason: Some(1 + rng.below(5) as u8),
                ..Default::default()
            }
        })
        .collect()
}

/// Datagrams of one v9 or IPFIX exporter domain: full IPv4 and IPv6
/// templates plus a minimal IPv4 one, `n` flows of each.
pub fn template_datagrams(p: TemplateProtocol, domain: u32, n: usize, seed: u64) -> Vec<Vec<u8>> {
    let now = now_ms();
    let mut rng = Rng::new(seed);
    let mut enc = TemplateEncoder::new(p, domain, now - 3_600_000);
    enc.add_template(Template::full_ipv4(256, p));
    enc.add_template(Template::full_ipv6(257, p));
    enc.add_template(Template::ipv4(258, p));
    let mut out = vec![enc.template_message(now)];
    let v4 = full_flows(&mut rng, n, now, false);
    let v6 = full_flows(&mut rng, n, now, true);
    let plain = full_flows(&mut rng, n, now, false);
    out.extend(enc.data(256, &v4, now, false));
    out.extend(enc.data(257, &v6, now, false));
    out.extend(enc.data(258, &plain, now, false));
    out
}

/// NetFlow v5 datagrams with `n` flows.
pub fn v5_datagrams(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let now = now_ms();
    let mut rng = Rng::new(seed);
    let mut enc = LegacyEncoder::new(LegacyVersion::V5, now - 3_600_000);
    enc.engine_type = 1;
    enc.engine_id = 2;
    let mut flows = full_flows(&mut rng, n, now, false);
    for f in &mut flows {
        f.packets %= 1 << 31;
        f.bytes %= 1 << 31;
    }
    enc.encode(&flows, now)
}

/// Runs nfdump with `args` and returns stdout (panics on failure).
pub fn nfdump(args: &[&str]) -> String {
    let out = Command::new("nfdump").env("TZ", "UTC").args(args).output().expect("run nfdump");
    assert!(out.status.success(), "nfdump {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn parse_ip(s: &str) -> u128 {
    ip_to_u128(s.parse().unwrap_or_else(|_| panic!("address {s}")))
}

fn parse_mac(s: &str) -> u64 {
    u64::from_str_radix(&s.replace(':', ""), 16).unwrap()
}

/// `label-exp-bos` as weir's stack entry.
fn parse_mpls(s: &str) -> Option<u32> {
    let p: Vec<u32> = s.split('-').map(|x| x.trim().parse().unwrap()).collect();
    let v = p[0] << 4 | p[1] << 1 | p[2];
    (v != 0).then_some(v)
}

fn num(s: &str) -> u64 {
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).unwrap()
    } else {
        s.parse().unwrap_or_else(|_| panic!("number {s}"))
    }
}

/// The flows of `file` as nfdump 1.7.1 reads them, from `-o raw` (every
/// field, full precision) plus `-o csv` for the destination ToS (the raw
/// printer of 1.7.1 shows the source ToS there), the source ToS (not
/// printed by raw for ICMP) and the forwarding status (printed by raw only
/// with the misc extension).
pub fn nfdump_flows(file: &Path) -> Vec<FlowRecord> {
    let f = file.to_str().unwrap();
    let raw = nfdump(&["-r", f, "-q", "-o", "raw"]);
    let csv = nfdump(&["-r", f, "-q", "-o", "csv"]);
    let csv_rows: Vec<Vec<String>> = csv
        .lines()
        .filter(|l| l.split(',').count() > 40)
        .map(|l| l.split(',').map(|s| s.trim().to_string()).collect())
        .collect();
    let mut out = Vec::new();
    for (i, rec) in raw.split("Flow Record:").skip(1).enumerate() {
        let mut kv = std::collections::HashMap::new();
        for line in rec.lines() {
            if let Some((k, v)) = line.split_once('=') {
                kv.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let first = |k: &str| kv.get(k).map(|v| v.split_whitespace().next().unwrap().to_string());
        let n = |k: &str| first(k).map(|v| num(&v));
        let flags = kv.get("Flags").unwrap();
        let version: u8 = flags
            .split("NETFLOW v")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        let row = &csv_rows[i];
        let mut r = FlowRecord {
            first: n("first").unwrap(),
            last: n("last").unwrap(),
            received: n("received at").unwrap(),
            proto: n("proto").unwrap() as u8,
            tcp_flags: n("tcp flags").unwrap() as u8,
            src_tos: row[10].parse().unwrap(),
            packets: n("in packets").unwrap(),
            bytes: n("in bytes").unwrap(),
            fwd_status: Some(row[9].parse().unwrap()),
            engine_type: n("engine type").map(|v| v as u8),
            engine_id: n("engine ID").map(|v| v as u8),
            exporter_id: n("export sysid").map(|v| v as u16),
            flow_version: Some(version),
            ..Default::default()
        };
        if let Some(icmp) = first("ICMP") {
            let (t, c) = icmp.split_once('.').unwrap();
            r.dst_port = (t.parse::<u16>().unwrap() << 8) | c.parse::<u16>().unwrap();
            r.src_port = 0;
        } else {
            r.src_port = n("src port").unwrap() as u16;
            r.dst_port = n("dst port").unwrap() as u16;
        }
        r.src_addr = first("src addr").map(|v| parse_ip(&v));
        r.dst_addr = first("dst addr").map(|v| parse_ip(&v));
        r.input_if = n("input").map(|v| v as u32);
        r.output_if = n("output").map(|v| v as u32);
        r.src_mask = n("src mask").map(|v| v as u8);
        r.dst_mask = n("dst mask").map(|v| v as u8);
        r.direction = n("direction").map(|v| v as u8);
        r.end_reason = n("end reason").map(|v| v as u8);
        r.dst_tos = kv.contains_key("dst tos").then(|| row[21].parse().unwrap());
        r.out_packets = n("out packets");
        r.out_bytes = n("out bytes");
        r.flows = n("aggr flows");
        r.src_vlan = n("src vlan").map(|v| v as u16);
        r.dst_vlan = n("dst vlan").map(|v| v as u16);
        r.src_as = n("src as").map(|v| v as u32);
        r.dst_as = n("dst as").map(|v| v as u32);
        r.next_as = n("bgp next as").map(|v| v as u32);
        r.prev_as = n("bgp prev as").map(|v| v as u32);
        r.bgp_next_hop = first("bgp next hop").map(|v| parse_ip(&v));
        r.next_hop = first("ip next hop").map(|v| parse_ip(&v));
        r.exporter_addr = first("ip exporter").map(|v| parse_ip(&v));
        r.in_src_mac = first("in src mac").map(|v| parse_mac(&v));
        r.out_dst_mac = first("out dst mac").map(|v| parse_mac(&v));
        r.in_dst_mac = first("in dst mac").map(|v| parse_mac(&v));
        r.out_src_mac = first("out src mac").map(|v| parse_mac(&v));
        let labels = r.mpls_mut();
        for (k, l) in labels.into_iter().enumerate() {
            *l = first(&format!("MPLS Lbl {:2}", k + 1)).and_then(|v| parse_mpls(&v));
        }
        out.push(r);
    }
    out
}

/// `nfdump -I` as key -> value.
pub fn nfdump_info(file: &Path) -> std::collections::BTreeMap<String, String> {
    nfdump(&["-I", "-r", file.to_str().unwrap()])
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// One line of `nfdump -E`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfExporter {
    pub sysid: u16,
    pub ip: String,
    pub version: u16,
    pub id: u32,
    pub sequence_failures: u64,
    pub packets: u64,
    pub flows: u64,
    /// (packet interval, packet space) of its samplers.
    pub samplers: Vec<(u32, u32)>,
    /// The file has no exporter stat record for it.
    pub no_stat: bool,
}

/// `nfdump -E FILE`, parsed.
pub fn nfdump_exporters(file: &Path) -> Vec<NfExporter> {
    let text = nfdump(&["-E", file.to_str().unwrap()]);
    let mut out: Vec<NfExporter> = Vec::new();
    for l in text.lines() {
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("SysID:") {
            let mut kv = std::collections::HashMap::new();
            kv.insert("SysID", rest.split(',').next().unwrap().trim().to_string());
            for part in rest.split(',').skip(1) {
                if let Some((k, v)) = part.split_once(':') {
                    kv.insert(k.trim(), v.trim().to_string());
                }
            }
            let g = |k: &str| kv.get(k).unwrap_or_else(|| panic!("{k} in {l}")).clone();
            // Files without exporter stat records (nfdump -w): "ID: 3 - no flows sent".
            let no_stat = l.ends_with("no flows sent");
            let c = |k: &str| if no_stat { 0 } else { g(k).parse().unwrap() };
            out.push(NfExporter {
                sysid: g("SysID").parse().unwrap(),
                ip: g("IP"),
                version: g("version").parse().unwrap(),
                id: g("ID").split_whitespace().next().unwrap().parse().unwrap(),
                sequence_failures: c("Sequence failures"),
                packets: c("packets"),
                flows: c("flows"),
                samplers: Vec::new(),
                no_stat,
            });
        } else if l.starts_with("Sampler") {
            let get = |k: &str| -> u32 {
                l.split(k)
                    .nth(1)
                    .unwrap()
                    .trim()
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            let last = out.last_mut().expect("sampler after its exporter");
            last.samplers.push((get("packet interval:"), get("packet space:")));
        }
    }
    out
}
