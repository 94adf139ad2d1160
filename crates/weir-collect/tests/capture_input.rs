//! `-f`: a capture larger than one read part (16 MiB), ending in a cut
//! record, is read in parts: every flow of every complete datagram is
//! stored, in the slot of its capture time, and the cut record is
//! reported, not fatal.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use weir_collect::send::{Format, SendOptions, encode};
use weir_collect::{CollectConfig, Collector, Input};
use weir_encode::pcap::{LINKTYPE_RAW, PcapWriter, ipv4_udp_packet};
use weir_gen::{GenConfig, Generator};
use weir_record::FlowRecord;

/// Writes the v9 datagrams of `flows` as a pcap of raw IPv4/UDP frames,
/// one per datagram, captured at the flows' receive times; returns the
/// number of datagrams.
fn write_capture(flows: &[FlowRecord], path: &Path) -> usize {
    let mut opts = SendOptions::new("127.0.0.1:9995".parse().unwrap(), Format::V9);
    opts.agent = Some("127.0.0.1".parse().unwrap());
    let dgs = encode(flows, &opts);
    let t0 = flows[0].received;
    let span = flows[flows.len() - 1].received - t0 + 1;
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut pcap = PcapWriter::new(file, LINKTYPE_RAW).unwrap();
    let (src, dst) = ("192.0.2.1:2055".parse().unwrap(), "127.0.0.1:9995".parse().unwrap());
    let mut frame = Vec::new();
    for (i, d) in dgs.iter().enumerate() {
        let ts_ms = t0 + span * i as u64 / dgs.len() as u64;
        ipv4_udp_packet(src, dst, d, &mut frame);
        pcap.packet(ts_ms * 1_000_000, frame.len() as u32, &frame).unwrap();
    }
    pcap.flush().unwrap();
    dgs.len()
}

#[test]
fn a_capture_larger_than_a_read_part_is_stored_completely() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = GenConfig { seed: 7, rate: 100_000.0, duration_ms: 10_000, ..GenConfig::default() };
    let flows: Vec<FlowRecord> = Generator::new(cfg).take(300_000).collect();
    let cap = dir.path().join("exporter.pcap");
    let datagrams = write_capture(&flows, &cap);
    // A last record cut short: 16-byte header promising 1 000 bytes, 10 there.
    let mut tail = Vec::new();
    for v in [0u32, 0, 1000, 1000] {
        tail.extend_from_slice(&v.to_le_bytes());
    }
    tail.extend_from_slice(&[0x45; 10]);
    let mut bytes = std::fs::read(&cap).unwrap();
    let whole = bytes.len();
    assert!(whole > 16 << 20, "{whole} bytes: more than one read part");
    bytes.extend_from_slice(&tail);
    std::fs::write(&cap, &bytes).unwrap();

    let out = dir.path().join("flows");
    let mut c = CollectConfig::new(&out);
    c.input = Input::Capture(cap.clone());
    c.slot_secs = 60;
    let report = Collector::build(c).unwrap().run(Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(report.datagrams, datagrams as u64);
    assert_eq!(report.flows, flows.len() as u64);
    // Flows land in the slots of their capture times.
    let stored: u64 =
        report.files.iter().map(|f| weir_store::SlotFile::open(f).unwrap().rows()).sum();
    assert_eq!(stored, flows.len() as u64);
    let t0 = flows[0].received / 1000;
    let t1 = flows[flows.len() - 1].received / 1000;
    let slots =
        (weir_store::slot_start(t1 as i64, 60) - weir_store::slot_start(t0 as i64, 60)) / 60 + 1;
    assert_eq!(report.files.len() as i64, slots, "{:?}", report.files);
}

#[test]
fn a_file_that_is_not_a_capture_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"these are not packets").unwrap();
    let mut c = CollectConfig::new(dir.path().join("flows"));
    c.input = Input::Capture(path.clone());
    let err = Collector::build(c).unwrap().run(Arc::new(AtomicBool::new(false))).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("notes.txt") && text.contains("not a pcap"), "{text}");
}
