//! Every sFlow capture in `shared/captures` against tshark's reading of it
//! (`<name>.expected.csv`, see `shared/captures/INDEX.md`).
//!
//! All files go through ONE decoder (`SamplingPolicy::Raw`, so that
//! `packets == 1` and `bytes` is the sampled frame length). For each
//! datagram the test lists the samples' types from their 8-byte framing
//! (format + length, nothing else) and pairs the i-th flow sample with the
//! i-th flow the decoder emitted and the i-th counter sample with the i-th
//! counter event, then compares every column tshark gives that a flow
//! record or counter event holds.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use weir_decode::pcap::udp_datagrams;
use weir_decode::{
    CounterSample, Datagram, Decoder, DecoderConfig, Event, HeaderInfo, SamplingPolicy, Sink,
};
use weir_record::{FlowRecord, ip_to_u128};

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/captures");

/// Captures whose comparison is known not to be exact, with the reason.
/// Each entry names (file, frame, sample index within the frame).
/// Keep this empty unless a difference is explained.
const KNOWN_DIFFERENCES: &[(&str, usize, usize, &str)] = &[(
    "gen_pmacctd_sfprobe.pcap",
    38,
    1,
    "IPv6 with a fragment header: tshark's hdr_proto is ipv6.nxt of the fixed header (44, \
     the fragment header); weir stores the upper-layer protocol behind it (17), as nfdump does",
)];

#[derive(Default)]
struct Collect {
    flows: Vec<FlowRecord>,
    counters: Vec<CounterSample>,
    headers: Vec<HeaderInfo>,
    errors: Vec<String>,
}

impl Sink for Collect {
    fn flow(&mut self, f: &FlowRecord) {
        self.flows.push(f.clone());
    }
    fn event(&mut self, e: &Event<'_>) {
        match e {
            Event::Counters(c) => self.counters.push(**c),
            Event::Header(h) => self.headers.push((*h).clone()),
            Event::Error(e) => self.errors.push(e.to_string()),
            _ => {}
        }
    }
}

/// One row of an sFlow `.expected.csv`, by column name.
struct Row(BTreeMap<String, String>);

impl Row {
    fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or_else(|| panic!("no column {k}"))
    }
    fn num(&self, k: &str) -> Option<u64> {
        let v = self.get(k);
        (!v.is_empty()).then(|| v.parse().unwrap_or_else(|_| panic!("{k}={v}")))
    }
}

fn read_csv(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let cols: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let vals: Vec<&str> = l.split(',').collect();
            assert_eq!(vals.len(), cols.len(), "{}: {l}", path.display());
            Row(cols.iter().cloned().zip(vals.into_iter().map(str::to_string)).collect())
        })
        .collect()
}

/// The samples of a datagram from their framing alone: for each sample
/// `enterprise << 12 | format`, and for counter samples whether one of
/// their records is a generic interface record (format 1).
fn sample_formats(p: &[u8]) -> Vec<(u32, bool)> {
    let be = |at: usize| p.get(at..at + 4).map(|s| u32::from_be_bytes(s.try_into().unwrap()));
    let mut at = match be(4) {
        Some(1) => 28,
        Some(2) => 40,
        _ => return vec![],
    };
    let n = be(at - 4).unwrap_or(0);
    let mut out = Vec::new();
    for _ in 0..n {
        let (Some(f), Some(len)) = (be(at), be(at + 4)) else { break };
        let end = at + 8 + len as usize;
        let mut generic = false;
        // Counter records start after seq + source id (+ index when expanded) + count.
        let first = match f {
            2 => Some(at + 8 + 12),
            4 => Some(at + 8 + 16),
            _ => None,
        };
        if let Some(mut r) = first {
            while r + 8 <= end {
                let (Some(rf), Some(rl)) = (be(r), be(r + 4)) else { break };
                generic |= rf == 1;
                r += 8 + rl as usize;
            }
        }
        out.push((f, generic));
        at = end;
    }
    out
}

fn type_name(format: u32) -> &'static str {
    match format {
        1 => "flow",
        2 => "counters",
        3 => "expanded_flow",
        4 => "expanded_counters",
        5 => "discard",
        _ => "other",
    }
}

fn capture_files() -> Option<Vec<PathBuf>> {
    let dir = Path::new(CAPTURES);
    if !dir.is_dir() {
        return None;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name.starts_with("sflow_") || name == "gen_pmacctd_sfprobe.pcap")
                && (name.ends_with(".pcap") || name.ends_with(".pcapng"))
        })
        .collect();
    files.sort();
    Some(files)
}

fn ip(s: &str) -> u128 {
    ip_to_u128(s.parse::<IpAddr>().unwrap_or_else(|_| panic!("address {s}")))
}

#[derive(Default)]
struct Tally {
    files: usize,
    samples: usize,
    flows: usize,
    counters: usize,
    mismatches: Vec<String>,
    known_hit: [bool; KNOWN_DIFFERENCES.len()],
}

fn check_file(dec: &mut Decoder, path: &Path, t: &mut Tally) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let stem = name.trim_end_matches(".pcapng").trim_end_matches(".pcap");
    let expected = read_csv(&path.with_file_name(format!("{stem}.expected.csv")));
    let mut by_frame: BTreeMap<usize, Vec<&Row>> = BTreeMap::new();
    for r in &expected {
        by_frame.entry(r.num("frame").unwrap() as usize).or_default().push(r);
    }
    let capture = std::fs::read(path).unwrap();
    let datagrams = udp_datagrams(&capture).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    t.files += 1;
    let mut seen_frames = Vec::new();
    for d in &datagrams {
        let rows = by_frame.get(&d.frame).cloned().unwrap_or_default();
        if rows.is_empty() && !d.payload.starts_with(&[0, 0, 0, 5]) {
            continue; // not sFlow (tshark lists nothing either)
        }
        seen_frames.push(d.frame);
        let mut sink = Collect::default();
        let dg = Datagram { exporter: d.src, received_ms: d.ts_ms, payload: &d.payload };
        let info = dec.decode(&dg, &mut sink);
        let mut miss = |sample: usize, what: String| {
            let known = KNOWN_DIFFERENCES
                .iter()
                .position(|k| k.0 == name && k.1 == d.frame && k.2 == sample);
            if let Some(i) = known {
                t.known_hit[i] = true;
            } else {
                t.mismatches.push(format!("{name} frame {} sample {sample}: {what}", d.frame));
            }
        };
        let info = match info {
            Ok(i) => i,
            Err(e) => {
                miss(0, format!("datagram not decoded: {e}"));
                continue;
            }
        };
        if !info.errors.is_empty() {
            miss(0, format!("errors: {:?}", sink.errors));
        }
        let formats = sample_formats(&d.payload);
        let mut ours: Vec<&str> = formats.iter().map(|f| type_name(f.0)).collect();
        let mut theirs: Vec<&str> = rows.iter().map(|r| r.get("sample_type")).collect();
        ours.sort_unstable();
        theirs.sort_unstable();
        if ours != theirs {
            miss(0, format!("sample types {ours:?}, tshark lists {theirs:?}"));
            continue;
        }
        let h = &sink.headers[0];
        for row in &rows {
            t.samples += 1;
            if h.agent.map(ip_to_u128) != Some(ip(row.get("agent")))
                || Some(u64::from(h.sequence)) != row.num("dgram_seq")
                || Some(u64::from(h.domain)) != row.num("sub_agent")
            {
                let n = row.num("sample").unwrap() as usize;
                miss(
                    n,
                    format!(
                        "header {h:?} vs agent {} seq {}",
                        row.get("agent"),
                        row.get("dgram_seq")
                    ),
                );
            }
        }

        // Flow samples: tshark keeps their order (their JSON keys differ).
        let flow_rows: Vec<&Row> =
            rows.iter().copied().filter(|r| r.get("sample_type").ends_with("flow")).collect();
        if flow_rows.len() != sink.flows.len() {
            miss(
                0,
                format!("{} flows emitted, tshark lists {}", sink.flows.len(), flow_rows.len()),
            );
        }
        for (f, row) in sink.flows.iter().zip(&flow_rows) {
            let n = row.num("sample").unwrap() as usize;
            t.flows += 1;
            let mut cmp = |what: &str, got: Option<u128>, want: Option<u128>| {
                if got != want {
                    miss(n, format!("{what}: {got:?} vs tshark {want:?}"));
                }
            };
            let num = |k: &str| row.num(k).map(u128::from);
            cmp("agent", f.exporter_addr, Some(ip(row.get("agent"))));
            cmp("sub_agent", f.obs_domain.map(u128::from), num("sub_agent"));
            cmp("sampling_rate", f.sampling_rate.map(u128::from), num("sampling_rate"));
            cmp("input_if", f.input_if.map(u128::from), num("input_if"));
            cmp("output_if", f.output_if.map(u128::from), num("output_if"));
            cmp("packets", Some(f.packets.into()), Some(1));
            cmp("frame_length", Some(f.bytes.into()), num("frame_length"));
            let addr = |k: &str| Some(row.get(k)).filter(|v| !v.is_empty()).map(ip);
            cmp("hdr_src", f.src_addr, addr("hdr_src"));
            cmp("hdr_dst", f.dst_addr, addr("hdr_dst"));
            cmp("hdr_proto", Some(f.proto.into()), Some(num("hdr_proto").unwrap_or(0)));
            match num("hdr_proto") {
                // ICMP: weir stores type << 8 | code in dst_port; tshark's
                // port columns, when present, are those of the packet quoted
                // inside an ICMP error, which no flow record holds.
                Some(1 | 58) => cmp("icmp src_port", Some(f.src_port.into()), Some(0)),
                _ => {
                    cmp("hdr_sport", Some(f.src_port.into()), Some(num("hdr_sport").unwrap_or(0)));
                    cmp("hdr_dport", Some(f.dst_port.into()), Some(num("hdr_dport").unwrap_or(0)));
                }
            }
        }

        // Counter samples: tshark's JSON groups samples with equal keys, so
        // its order is not the wire order; pair them by (sequence, source).
        let mut events: Vec<Option<&CounterSample>> = sink.counters.iter().map(Some).collect();
        let mut unmatched = 0;
        for row in rows.iter().filter(|r| r.get("sample_type").ends_with("counters")) {
            t.counters += 1;
            let (seq, src) = (row.num("sample_seq").unwrap(), row.num("source_id").unwrap());
            let found = events.iter_mut().find(|e| {
                e.is_some_and(|c| {
                    u64::from(c.sequence) == seq
                        && u64::from(c.source_id & 0x00ff_ffff) == src & 0x00ff_ffff
                        && (c.source_id >> 24 != 0 || u64::from(c.source_id) == src)
                        && c.agent.map(ip_to_u128) == Some(ip(row.get("agent")))
                })
            });
            match found {
                Some(e) => *e = None,
                None => unmatched += 1,
            }
        }
        let without_generic = formats.iter().filter(|(f, g)| matches!(f, 2 | 4) && !g).count();
        if unmatched != without_generic || events.iter().any(Option::is_some) {
            miss(
                0,
                format!(
                    "counter samples: {unmatched} without event, {without_generic} have no generic \
                 record; {} events left over",
                    events.iter().filter(|e| e.is_some()).count()
                ),
            );
        }
    }
    for f in by_frame.keys() {
        if !seen_frames.contains(f) {
            t.mismatches.push(format!("{name} frame {f}: tshark lists it, no datagram decoded"));
        }
    }
}

#[test]
fn sflow_captures_match_tshark() {
    let Some(files) = capture_files() else {
        eprintln!("SKIPPED: {CAPTURES} not found; sFlow capture tests not run");
        return;
    };
    assert!(files.len() >= 13, "expected the 12 sflow_* captures and gen_pmacctd_sfprobe");
    let mut dec =
        Decoder::new(DecoderConfig { sampling: SamplingPolicy::Raw, ..DecoderConfig::default() });
    let mut t = Tally::default();
    for f in &files {
        check_file(&mut dec, f, &mut t);
    }
    eprintln!(
        "{} captures, {} samples compared ({} flow, {} counter samples), {} mismatches",
        t.files,
        t.samples,
        t.flows,
        t.counters,
        t.mismatches.len()
    );
    assert!(t.mismatches.is_empty(), "{}", t.mismatches.join("\n"));
    // An allow-list entry that no longer differs must be removed.
    for (k, hit) in KNOWN_DIFFERENCES.iter().zip(t.known_hit) {
        assert!(hit, "known difference not seen any more: {k:?}");
    }
}
