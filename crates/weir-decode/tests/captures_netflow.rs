//! Every NetFlow v1/v5/v7/v9 and IPFIX capture in `shared/captures`,
//! decoded through one `Decoder` per file, compared field by field with
//! tshark's reading of it (`<name>.expected.csv`, see INDEX.md there).
//!
//! Matching: the CSV numbers records 1.. per frame (data and options
//! records, in set order); so does this test (flows and `Event::Options`,
//! in the order the decoder hands them out). Rules:
//! - **Options records** (`kind=options`) must be options records here
//!   too; tshark gives no fields for them, so only the kind is compared.
//! - **Extra records**: a data set sent before its template in the same
//!   message is decoded by weir (after the message's last set) but not by
//!   tshark; such records come after tshark's records of that frame and are
//!   allowed only in files whose INDEX row lists "sets w/o template".
//! - **Empty CSV cells** mean tshark found no such field. Addresses: weir
//!   must have none either. Ports/protocol: weir's required fields are 0.
//!   Packets/octets: not compared (weir also reads total, NSEL
//!   initiator/responder counters, which tshark shows under other names).
//! - **Times**: `uptime` (v1-v9): absolute = export time - (header uptime -
//!   record uptime), export time = unix_secs (+ unix_nsecs for v1/v5/v7,
//!   read from the datagram: the CSV lacks it); an uptime after the
//!   header's is clamped to the export time (weir's documented rule).
//!   IPFIX `uptime` (IE 21/22): init time (IE 160, from the exporter's
//!   options records) + uptime; without an init time only the duration is
//!   compared. `abs`: the ISO time truncated to ms. Empty: not compared.
//!   If start > end weir swaps them; the expectation does the same.
//! - `ALLOWED` lists the known, explained differences (file, count).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use weir_decode::pcap::read_capture;
use weir_decode::{Datagram, Decoder, DecoderConfig, Event, SamplingPolicy, Sink};
use weir_record::{FlowRecord, ip_to_u128};

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/captures");

/// Known, explained differences: (file, mismatching values, extra records
/// weir decodes that tshark does not list, why).
const ALLOWED: &[(&str, usize, usize, &str)] = &[
    (
        "ipfix_logstash_softflowd.pcap",
        2,
        0,
        "flowStartSysUpTime is 0 in two records: tshark 4.0 leaves a start uptime of 0 \
         out (empty cell), so the test takes the end for both; weir uses init time + 0",
    ),
    (
        "nfv9_graylog_nprobe_2.pcap",
        2,
        0,
        "FIRST_SWITCHED = 0: tshark leaves it out (frame 3) or, when both are 0, shows \
         them as absolute 1970-01-01 (frame 2); weir converts 0 as a sysUptime value",
    ),
    (
        "mixed_graylog_nprobe_v5_v9.pcap",
        2,
        0,
        "same nProbe quirk as nfv9_graylog_nprobe_2: both uptimes 0, tshark shows 1970-01-01",
    ),
    (
        "nfv9_graylog_dat1.pcap",
        0,
        2,
        "frame 1 announces count=2 but holds 2 templates and 2 data records; tshark stops \
         at the count, weir walks the flowset lengths and decodes the 2 data records",
    ),
    (
        "nfv9_logstash_h3c.pcap",
        0,
        15,
        "tshark flags a field of the H3C template as malformed and stops after the first \
         of 16 records of frame 2; weir decodes all 16 (the flowset length frames them)",
    ),
];

/// Captures whose "tshark errors" are not about the flow export itself.
const TSHARK_ONLY: &[(&str, &str)] = &[(
    "gen_softflowd_psamp.pcap",
    "tshark dissects the packets inside the PSAMP dataLinkFrameSection / \
     ipHeaderPacketSection values and flags them as cut short (they are truncated \
     samples by design); the IPFIX records themselves are well formed",
)];

#[derive(Debug)]
enum Item {
    Flow(Box<FlowRecord>),
    Options(Vec<(u16, u32, Vec<u8>)>),
}

#[derive(Default)]
struct Collect {
    items: Vec<Item>,
    errors: usize,
}

impl Sink for Collect {
    fn flow(&mut self, f: &FlowRecord) {
        self.items.push(Item::Flow(Box::new(f.clone())));
    }
    fn event(&mut self, e: &Event<'_>) {
        match e {
            Event::Options(o) => self.items.push(Item::Options(
                o.values.iter().map(|(f, v)| (f.id, f.enterprise, v.clone())).collect(),
            )),
            Event::Error(_) => self.errors += 1,
            _ => {}
        }
    }
}

struct Row {
    exporter: String,
    version: String,
    domain: String,
    hdr_up: String,
    hdr_secs: String,
    record: usize,
    kind: String,
    src: String,
    dst: String,
    sport: String,
    dport: String,
    proto: String,
    packets: String,
    octets: String,
    first: String,
    last: String,
    time_kind: String,
}

fn read_csv(path: &Path) -> BTreeMap<usize, Vec<Row>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "frame");
    let mut out: BTreeMap<usize, Vec<Row>> = BTreeMap::new();
    for l in lines {
        let c: Vec<String> = l.split(',').map(str::to_string).collect();
        assert_eq!(c.len(), 19, "{l}");
        let frame = c[0].parse().unwrap();
        out.entry(frame).or_default().push(Row {
            exporter: c[1].clone(),
            version: c[2].clone(),
            domain: c[3].clone(),
            hdr_up: c[4].clone(),
            hdr_secs: c[5].clone(),
            record: c[7].parse().unwrap(),
            kind: c[8].clone(),
            src: c[9].clone(),
            dst: c[10].clone(),
            sport: c[11].clone(),
            dport: c[12].clone(),
            proto: c[13].clone(),
            packets: c[14].clone(),
            octets: c[15].clone(),
            first: c[16].clone(),
            last: c[17].clone(),
            time_kind: c[18].clone(),
        });
    }
    out
}

/// "1048574.885000000" (seconds) → ms.
fn secs_to_ms(s: &str) -> u64 {
    let (i, f) = s.split_once('.').unwrap_or((s, "0"));
    let f = format!("{f:0<3}");
    i.parse::<u64>().unwrap() * 1000 + f[..3].parse::<u64>().unwrap()
}

/// "2023-02-28T09:46:01.088000000Z" → ms since the epoch (truncated).
fn iso_to_ms(s: &str) -> u64 {
    let s = s.trim_end_matches('Z');
    let (date, time) = s.split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<u64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    // days from civil (H. Hinnant's algorithm)
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe - 719_468) as u64;
    let frac = format!("{frac:0<3}");
    (days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1000 + frac[..3].parse::<u64>().unwrap()
}

fn ip(s: &str) -> u128 {
    ip_to_u128(s.parse::<IpAddr>().unwrap())
}

#[derive(Default)]
struct FileResult {
    compared_records: usize,
    matched_records: usize,
    mismatches: Vec<String>,
    extra_records: usize,
    errors: usize,
    failed_datagrams: usize,
    unknown_sets: u64,
}

fn check_file(pcap: &Path, csv: &Path) -> FileResult {
    let mut res = FileResult::default();
    let expected = read_csv(csv);
    let cap = read_capture(&std::fs::read(pcap).unwrap()).unwrap();
    let mut dec =
        Decoder::new(DecoderConfig { sampling: SamplingPolicy::Raw, ..Default::default() });
    // IPFIX init times (IE 160) by (exporter, domain), from options records.
    let mut init: BTreeMap<(String, u32), u64> = BTreeMap::new();
    let mut seen_frames = 0;
    for d in &cap.datagrams {
        let mut sink = Collect::default();
        let dg = Datagram { exporter: d.src, received_ms: d.ts_ms, payload: &d.payload };
        match dec.decode(&dg, &mut sink) {
            Ok(info) => {
                res.unknown_sets += info.unknown_template_sets;
                assert_eq!(info.errors.len(), sink.errors);
            }
            Err(_) => res.failed_datagrams += 1,
        }
        res.errors += sink.errors;
        let p = &d.payload;
        let version = if p.len() >= 2 { u16::from_be_bytes([p[0], p[1]]) } else { 0 };
        let domain = match version {
            9 if p.len() >= 20 => u32::from_be_bytes([p[16], p[17], p[18], p[19]]),
            10 if p.len() >= 16 => u32::from_be_bytes([p[12], p[13], p[14], p[15]]),
            _ => 0,
        };
        let exporter = d.src.ip().to_string();
        for it in &sink.items {
            if let Item::Options(vals) = it {
                for (id, ent, v) in vals {
                    if (*id, *ent, v.len()) == (160, 0, 8) {
                        let t = u64::from_be_bytes(v.as_slice().try_into().unwrap());
                        init.insert((exporter.clone(), domain), t);
                    }
                }
            }
        }
        let rows = expected.get(&d.frame).map(Vec::as_slice).unwrap_or(&[]);
        if !rows.is_empty() {
            seen_frames += 1;
        }
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.record, i + 1);
            res.compared_records += 1;
            let mut local: Vec<String> = Vec::new();
            let mut bad = |what: &str, rec: usize, got: String, want: &str| {
                local.push(format!(
                    "frame {} record {rec}: {what}: weir {got}, tshark {want}",
                    d.frame
                ));
            };
            match (sink.items.get(i), row.kind.as_str()) {
                (None, k) => bad("record", row.record, "missing".into(), k),
                (Some(Item::Options(_)), "options") => {}
                (Some(Item::Flow(f)), "flow") => {
                    compare_flow(f, row, p, &exporter, domain, &init, &mut bad);
                }
                (Some(Item::Flow(_)), k) => bad("kind", row.record, "flow".into(), k),
                (Some(Item::Options(_)), k) => bad("kind", row.record, "options".into(), k),
            }
            if local.is_empty() {
                res.matched_records += 1;
            }
            res.mismatches.extend(local);
        }
        if sink.items.len() > rows.len() {
            res.extra_records += sink.items.len() - rows.len();
        }
    }
    assert_eq!(seen_frames, expected.len(), "frames of the CSV not found in {}", pcap.display());
    res
}

fn compare_flow(
    f: &FlowRecord,
    row: &Row,
    p: &[u8],
    exporter: &str,
    domain: u32,
    init: &BTreeMap<(String, u32), u64>,
    bad: &mut impl FnMut(&str, usize, String, &str),
) {
    let r = row.record;
    if f.exporter_addr != Some(ip(&row.exporter)) {
        bad("exporter", r, format!("{:?}", f.exporter_addr), &row.exporter);
    }
    if f.flow_version.map(|v| v.to_string()) != Some(row.version.clone()) {
        bad("version", r, format!("{:?}", f.flow_version), &row.version);
    }
    let want_domain =
        if row.domain.is_empty() { None } else { Some(row.domain.parse::<u32>().unwrap()) };
    if f.obs_domain != want_domain {
        bad("domain", r, format!("{:?}", f.obs_domain), &row.domain);
    }
    for (what, got, want) in
        [("src_addr", f.src_addr, &row.src), ("dst_addr", f.dst_addr, &row.dst)]
    {
        let want_v = if want.is_empty() { None } else { Some(ip(want)) };
        if got != want_v {
            bad(what, r, format!("{:?}", got.map(weir_record::u128_to_ip)), want);
        }
    }
    // ICMP: weir stores type << 8 | code in dst_port and 0 in src_port
    // (nfdump's convention) when the record carries an ICMP type/code
    // element; tshark shows the transport port fields (0, absent, or what
    // the exporter put there, e.g. Cisco ASA: the ICMP id). The type/code
    // is not in the CSV, so for ICMP flows only src_port == 0 is checked
    // when the ports differ.
    let icmp = (f.proto == 1 || f.proto == 58)
        && f.src_port == 0
        && (row.dport.is_empty() || row.dport.parse::<u16>().unwrap() != f.dst_port);
    for (what, got, want) in [
        ("src_port", u64::from(f.src_port), &row.sport),
        ("dst_port", u64::from(f.dst_port), &row.dport),
        ("protocol", u64::from(f.proto), &row.proto),
    ] {
        if icmp && what != "protocol" {
            continue;
        }
        let want_v = if want.is_empty() { 0 } else { want.parse().unwrap() };
        if got != want_v {
            bad(what, r, got.to_string(), want);
        }
    }
    for (what, got, want) in
        [("packets", f.packets, &row.packets), ("octets", f.bytes, &row.octets)]
    {
        if !want.is_empty() && got != want.parse::<u64>().unwrap() {
            bad(what, r, got.to_string(), want);
        }
    }
    // A missing start or end takes the other's value (weir's rule).
    let (tf, tl) = match (row.first.as_str(), row.last.as_str()) {
        ("", l) => (l, l),
        (f, "") => (f, f),
        (f, l) => (f, l),
    };
    let (first, last) = match row.time_kind.as_str() {
        "uptime" if row.version != "10" => {
            let hdr_up = secs_to_ms(&row.hdr_up);
            let mut export = row.hdr_secs.parse::<u64>().unwrap() * 1000;
            if row.version != "9" && p.len() >= 16 {
                export += u64::from(u32::from_be_bytes([p[12], p[13], p[14], p[15]])) / 1_000_000;
            }
            // Ahead of the header by up to 60 s is clock skew (clamped to the
            // export time), by more it is from before the 49.7-day wrap.
            let conv = |s: &str| {
                let up = secs_to_ms(s);
                if up <= hdr_up {
                    export - (hdr_up - up)
                } else if up - hdr_up <= 60_000 {
                    export
                } else {
                    export - (hdr_up + (1 << 32) - up)
                }
            };
            (conv(tf), conv(tl))
        }
        "uptime" => match init.get(&(exporter.to_string(), domain)) {
            Some(i) => (i + secs_to_ms(tf), i + secs_to_ms(tl)),
            None => {
                let d = secs_to_ms(tl).abs_diff(secs_to_ms(tf));
                if f.last - f.first != d {
                    bad("duration", r, (f.last - f.first).to_string(), &d.to_string());
                }
                return;
            }
        },
        "abs" => (iso_to_ms(tf), iso_to_ms(tl)),
        _ => return,
    };
    let (first, last) = (first.min(last), first.max(last));
    if (f.first, f.last) != (first, last) {
        bad(
            "times",
            r,
            format!("{}..{}", f.first, f.last),
            &format!("{first}..{last} ({} {} {})", row.first, row.last, row.time_kind),
        );
    }
}

fn index_line(index: &str, file: &str) -> String {
    let prefix = format!("| {file} |");
    index.lines().find(|l| l.starts_with(&prefix)).unwrap_or("").to_string()
}

#[test]
fn netflow_captures_match_tshark() {
    let dir = PathBuf::from(CAPTURES);
    if !dir.is_dir() {
        eprintln!("SKIP: capture directory {} is absent", dir.display());
        return;
    }
    let index = std::fs::read_to_string(dir.join("INDEX.md")).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            (n.ends_with(".pcap") || n.ends_with(".pcapng")) && !n.starts_with("sflow_")
        })
        .collect();
    files.sort();
    let mut report = String::new();
    let mut failures = Vec::new();
    let (mut n_files, mut n_records, mut n_exact) = (0, 0, 0);
    for pcap in &files {
        let name = pcap.file_name().unwrap().to_string_lossy().to_string();
        let stem = name.trim_end_matches(".pcapng").trim_end_matches(".pcap");
        let csv = dir.join(format!("{stem}.expected.csv"));
        let head = std::fs::read_to_string(&csv).unwrap();
        if head.starts_with("frame,exporter,version,agent") {
            continue; // sFlow
        }
        n_files += 1;
        let line = index_line(&index, &name);
        let res = check_file(pcap, &csv);
        n_records += res.compared_records;
        let _ = writeln!(
            report,
            "{name}: {} records ({} exact), {} mismatches, {} extra, {} errors, {} failed datagrams, {} unknown-template sets",
            res.compared_records,
            res.matched_records,
            res.mismatches.len(),
            res.extra_records,
            res.errors,
            res.failed_datagrams,
            res.unknown_sets
        );
        for m in res.mismatches.iter().take(8) {
            let _ = writeln!(report, "    {m}");
        }
        let (allowed, allowed_extra) =
            ALLOWED.iter().find(|a| a.0 == name).map_or((0, 0), |a| (a.1, a.2));
        if res.mismatches.len() != allowed {
            failures
                .push(format!("{name}: {} mismatches (allowed {allowed})", res.mismatches.len()));
        }
        n_exact += res.matched_records;
        // Data sets before their template in one message: weir decodes them.
        let deferred_ok = line.contains("sets w/o template");
        if res.extra_records != allowed_extra && !(deferred_ok && res.extra_records > 0) {
            failures.push(format!(
                "{name}: {} records tshark does not list (allowed {allowed_extra})",
                res.extra_records
            ));
        }
        let malformed = line.contains("MALFORMED") || line.contains("TRUNCATED");
        if malformed && res.errors + res.failed_datagrams == 0 {
            failures.push(format!("{name}: malformed capture but no error reported"));
        }
        // "tshark errors": weir must notice something too (an error, a set
        // without template, or a set decoded only after its template), except
        // where tshark's complaint is about its own dissection, not the flow
        // export framing (TSHARK_ONLY).
        let noticed =
            res.errors + res.failed_datagrams + res.unknown_sets as usize + res.extra_records;
        if line.contains("tshark errors")
            && noticed == 0
            && !TSHARK_ONLY.iter().any(|t| t.0 == name)
        {
            failures.push(format!("{name}: tshark reports errors, weir noticed nothing"));
        }
    }
    println!("{report}");
    println!("{n_files} captures, {n_records} records compared, {n_exact} matched exactly");
    assert!(failures.is_empty(), "{}\n{report}", failures.join("\n"));
}

/// Debugging aid: `WEIR_DUMP=<capture file name> cargo test -p weir-decode
/// --test captures_netflow dump -- --ignored --nocapture` prints every
/// event and flow of one capture.
#[test]
#[ignore = "debugging aid"]
fn dump() {
    struct Print;
    impl Sink for Print {
        fn flow(&mut self, f: &FlowRecord) {
            println!("  flow {f:?}");
        }
        fn event(&mut self, e: &Event<'_>) {
            println!("  event {e:?}");
        }
    }
    let Ok(name) = std::env::var("WEIR_DUMP") else { return };
    let cap = read_capture(&std::fs::read(Path::new(CAPTURES).join(name)).unwrap()).unwrap();
    let mut dec =
        Decoder::new(DecoderConfig { sampling: SamplingPolicy::Raw, ..Default::default() });
    for d in &cap.datagrams {
        println!("frame {} from {} ({} bytes)", d.frame, d.src, d.payload.len());
        let dg = Datagram { exporter: d.src, received_ms: d.ts_ms, payload: &d.payload };
        println!("  => {:?}", dec.decode(&dg, &mut Print));
    }
}
