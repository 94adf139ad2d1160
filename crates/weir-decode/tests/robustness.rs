//! Hostile input never panics the decoder: every datagram of every shared
//! capture, truncated at every length and with bytes flipped, and every
//! crash input the fuzzers ever found (tests/fuzz/regressions/decode_any).

use std::path::PathBuf;

use weir_decode::{Datagram, Decoder, DecoderConfig, Sink};
use weir_record::FlowRecord;

struct Nothing;
impl Sink for Nothing {
    fn flow(&mut self, _f: &FlowRecord) {}
}

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(rel)
}

fn datagrams() -> Vec<Vec<u8>> {
    let dir = repo("../shared/captures");
    let Ok(rd) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut out = Vec::new();
    let mut paths: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
    paths.sort();
    for p in paths {
        let name = p.to_string_lossy().to_string();
        if name.ends_with(".pcap") || name.ends_with(".pcapng") {
            let bytes = std::fs::read(&p).unwrap();
            if let Ok(c) = weir_decode::pcap::read_capture(&bytes) {
                out.extend(c.datagrams.into_iter().map(|d| d.payload));
            }
        }
    }
    out
}

fn feed(dec: &mut Decoder, payload: &[u8]) {
    let dg = Datagram {
        exporter: "192.0.2.9:2055".parse().unwrap(),
        received_ms: 1_709_532_000_000,
        payload,
    };
    let before: u64 = dec.accounts().iter().map(|(_, a)| a.datagrams).sum();
    let _ = dec.decode(&dg, &mut Nothing);
    let after: u64 = dec.accounts().iter().map(|(_, a)| a.datagrams).sum();
    assert_eq!(after, before + 1, "every datagram is counted, decodable or not");
}

#[test]
fn truncated_and_flipped_capture_datagrams_never_panic() {
    let all = datagrams();
    if all.is_empty() {
        eprintln!("skipped: ../shared/captures is not here");
        return;
    }
    // One decoder for everything, so that templates learnt from intact
    // datagrams meet the damaged ones, as in a collector.
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for d in &all {
        feed(&mut dec, d);
        for cut in (0..d.len()).step_by(d.len() / 64 + 1) {
            feed(&mut dec, &d[..cut]);
        }
        for _ in 0..16 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = d.clone();
            if m.is_empty() {
                continue;
            }
            let i = (x as usize) % m.len();
            m[i] ^= (x >> 32) as u8 | 1;
            feed(&mut dec, &m);
        }
    }
}

/// Every crash input the fuzzers found, replayed behind the version of the
/// target that found it (the file name's prefix: `v5-`, `legacy-`, `v9-`,
/// `ipfix-`, `sflow-`; see tests/fuzz/README.md).
#[test]
fn fuzz_regressions_never_panic() {
    let dir = repo("tests/fuzz/regressions/decode");
    let mut dec = Decoder::new(DecoderConfig::default());
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let version: &[u8] = match name.split('-').next().unwrap_or("") {
            "v5" => &[0, 5],
            "legacy" => &[0, 1],
            "v9" => &[0, 9],
            "ipfix" => &[0, 10],
            "sflow" => &[0, 0, 0, 5],
            _ => continue,
        };
        let mut payload = version.to_vec();
        payload.extend_from_slice(&std::fs::read(&p).unwrap());
        feed(&mut dec, &payload);
    }
}
