//! `weir decode` on real captures: what an operator debugging an exporter sees.

use crate::{capture, weir};

/// softflowd's NetFlow v5 export of input_mix.pcap: 6 datagrams, 157 flows
/// (INDEX.md), every one printed, and the exporter summary adds up.
#[test]
fn text_lists_every_flow_and_the_exporter_counters() {
    let Some(cap) = capture("gen_softflowd_v5.pcap") else { return };
    let (code, out) = weir(&["decode", &cap]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("  flow ")).count(), 157, "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("  netflow v5 domain 0 sequence ")).count(), 6);
    assert!(out.contains("# 6 frames, 6 UDP datagrams, 0 undecodable"), "{out}");
    assert!(
        out.contains(
            "# exporter 127.0.0.1 netflow v5 domain 0: datagrams 6 flows 157 sequence-failures 0"
        ),
        "{out}"
    );
}

/// CSV rows carry the same addresses and counters tshark read.
#[test]
fn csv_agrees_with_tshark_on_the_first_record() {
    let Some(cap) = capture("gen_softflowd_v5.pcap") else { return };
    let (code, out) = weir(&["decode", "-o", "csv", &cap]);
    assert_eq!(code, 0);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 157);
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let expected =
        std::fs::read_to_string(capture("gen_softflowd_v5.expected.csv").unwrap()).unwrap();
    let exp: Vec<&str> = expected.lines().nth(1).unwrap().split(',').collect();
    // expected columns: frame,exporter,version,...,src_addr(9),dst_addr(10),src_port,dst_port,protocol,packets,octets
    let r = &rows[0];
    assert_eq!(r[col("src_addr")], exp[9]);
    assert_eq!(r[col("dst_addr")], exp[10]);
    assert_eq!(r[col("src_port")], exp[11]);
    assert_eq!(r[col("dst_port")], exp[12]);
    assert_eq!(r[col("proto")], exp[13]);
    assert_eq!(r[col("packets")], exp[14]);
    assert_eq!(r[col("bytes")], exp[15]);
    assert_eq!(r[col("flow_version")], "5");
}

/// JSON output is one valid object per line: headers, templates, flows.
#[test]
fn json_lines_are_valid_and_typed() {
    let Some(cap) = capture("nfv9_telegraf_example.pcap") else { return };
    let (code, out) = weir(&["decode", "-o", "json", &cap]);
    assert_eq!(code, 0);
    let mut types = std::collections::BTreeMap::new();
    for line in out.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        *types.entry(v["type"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    assert_eq!(types.get("header"), Some(&1));
    assert_eq!(types.get("template"), Some(&1));
    assert_eq!(types.get("flow"), Some(&8), "{types:?}");
}

/// sFlow: one flow per sample, counters scaled by the sampling rate unless
/// --raw-counters.
#[test]
fn sflow_samples_scale_by_the_rate() {
    let Some(cap) = capture("sflow_akvorado_1140.pcap") else { return };
    let (_, scaled) = weir(&["decode", "-o", "csv", &cap]);
    let (_, raw) = weir(&["decode", "-o", "csv", "--raw-counters", &cap]);
    let col = |out: &str, name: &str, row: usize| -> u64 {
        let header: Vec<&str> = out.lines().next().unwrap().split(',').collect();
        let i = header.iter().position(|h| *h == name).unwrap();
        out.lines().nth(row + 1).unwrap().split(',').nth(i).unwrap().parse().unwrap()
    };
    assert_eq!(scaled.lines().count(), 6, "5 samples + header");
    for row in 0..5 {
        let rate = col(&raw, "sampling_rate", row);
        assert!(rate > 1);
        assert_eq!(col(&raw, "packets", row), 1);
        assert_eq!(col(&scaled, "packets", row), rate);
        assert_eq!(col(&scaled, "bytes", row), rate * col(&raw, "bytes", row));
    }
}

/// A malformed exporter: each problem is named with its byte offset, the
/// counters show it, nothing panics.
#[test]
fn malformed_datagrams_are_named_with_offsets() {
    let Some(cap) = capture("nfv9_exatel_malformed_1.pcapng") else { return };
    let (code, out) = weir(&["decode", &cap]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("error offset 24: bad template"), "{out}");
    assert!(out.contains("decode-errors 3"), "{out}");
}

#[test]
fn not_a_capture_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.pcap");
    std::fs::write(&p, b"this is not a capture").unwrap();
    let mut out = Vec::new();
    let err = weir_cli::run(["weir", "decode", p.to_str().unwrap()], &mut out).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("x.pcap") && msg.contains("not a pcap or pcapng file"), "{msg}");
}
