//! Column-direct decoding (`Sink::batch`) gives exactly the flows and
//! counters of row decoding (`Sink::flow`): every capture in
//! `shared/captures` and generated v9/IPFIX traffic, decoded both ways,
//! under every sampling policy, with small and odd builder room so that
//! data sets are split between calls.

use std::path::Path;

use weir_decode::pcap::read_capture;
use weir_decode::{Datagram, DatagramInfo, Decoder, DecoderConfig, SamplingPolicy, Sink};
use weir_encode::netflow::{Template, TemplateEncoder, TemplateProtocol};
use weir_record::{BatchBuilder, FlowRecord, ip_to_u128};

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/captures");

/// Rows only through `flow`.
#[derive(Default)]
struct Rows(BatchBuilder);

impl Sink for Rows {
    fn flow(&mut self, f: &FlowRecord) {
        self.0.push(f);
    }
}

/// Offers its builder with a room that cycles through `rooms`.
struct Columns {
    b: BatchBuilder,
    rooms: Vec<usize>,
    next: usize,
    by_flow: usize,
    appended: usize,
    offered: Option<usize>,
}

impl Sink for Columns {
    fn flow(&mut self, f: &FlowRecord) {
        self.by_flow += 1;
        self.b.push(f);
    }

    fn batch(&mut self) -> Option<(&mut BatchBuilder, usize)> {
        let room = self.rooms[self.next % self.rooms.len()];
        self.next += 1;
        self.offered = Some(self.b.len());
        Some((&mut self.b, room))
    }

    fn batch_done(&mut self) {
        let before = self.offered.take().expect("batch_done after batch");
        let room = self.rooms[(self.next - 1) % self.rooms.len()];
        let added = self.b.len() - before;
        assert!(added <= room, "{added} rows appended, room was {room}");
        self.appended += added;
    }
}

fn key(i: &DatagramInfo) -> (u64, u64, u64, u32, u64, u64, usize) {
    (
        i.flows,
        i.packets,
        i.bytes,
        i.sampling_rate,
        i.unknown_template_sets,
        i.sequence_failures,
        i.errors.len(),
    )
}

/// Decodes `datagrams` both ways; returns the rows appended directly.
fn both_ways(name: &str, datagrams: &[Datagram<'_>], sampling: SamplingPolicy) -> usize {
    let cfg = DecoderConfig { sampling, ..DecoderConfig::default() };
    let (mut da, mut db) = (Decoder::new(cfg), Decoder::new(cfg));
    let mut rows = Rows::default();
    let mut cols = Columns {
        b: BatchBuilder::default(),
        rooms: vec![1, 7, 3, 1000, 2],
        next: 0,
        by_flow: 0,
        appended: 0,
        offered: None,
    };
    for (n, dg) in datagrams.iter().enumerate() {
        let a = da.decode(dg, &mut rows);
        let b = db.decode(dg, &mut cols);
        match (a, b) {
            (Ok(a), Ok(b)) => assert_eq!(key(&a), key(&b), "{name} datagram {n}"),
            (Err(a), Err(b)) => assert_eq!(a, b, "{name} datagram {n}"),
            (a, b) => panic!("{name} datagram {n}: {a:?} vs {b:?}"),
        }
    }
    assert_eq!(cols.by_flow + cols.appended, cols.b.len(), "{name}");
    let (a, b) = (rows.0.finish(), cols.b.finish());
    assert_eq!(a.rows(), b.rows(), "{name}");
    for i in 0..a.rows() {
        assert_eq!(a.record(i), b.record(i), "{name} ({sampling:?}) flow {i}");
    }
    assert_eq!(a, b, "{name}");
    cols.appended
}

#[test]
fn captures_decode_the_same_both_ways() {
    let dir = Path::new(CAPTURES);
    if !dir.is_dir() {
        eprintln!("skipped: {CAPTURES} not found");
        return;
    }
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("shared/captures")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    names.sort();
    let mut direct = 0;
    for path in &names {
        let bytes = std::fs::read(path).unwrap();
        let Ok(cap) = read_capture(&bytes) else { continue };
        let dgs: Vec<Datagram<'_>> = cap
            .datagrams
            .iter()
            .map(|d| Datagram { exporter: d.src, received_ms: d.ts_ms, payload: &d.payload })
            .collect();
        let name = path.file_name().unwrap().to_string_lossy();
        for policy in [SamplingPolicy::Scale, SamplingPolicy::Raw, SamplingPolicy::Force(10)] {
            direct += both_ways(&name, &dgs, policy);
        }
    }
    assert!(direct > 0, "no capture took the column-direct path");
}

#[test]
fn generated_v9_and_ipfix_decode_the_same_both_ways() {
    const EXPORT_MS: u64 = 1_700_000_000_000;
    let flows: Vec<FlowRecord> = (0..500u32)
        .map(|i| FlowRecord {
            first: EXPORT_MS - 60_000 + u64::from(i),
            last: EXPORT_MS - 1000,
            src_addr: Some(ip_to_u128(std::net::Ipv4Addr::from(0x0a00_0000 | i).into())),
            dst_addr: Some(ip_to_u128(std::net::Ipv4Addr::from(0xc000_0201).into())),
            src_port: (i % 60_000) as u16,
            dst_port: if i % 5 == 0 { 0x0800 } else { 443 },
            proto: if i % 5 == 0 { 1 } else { 6 },
            tcp_flags: 0x1b,
            packets: 10,
            bytes: 4000 + u64::from(i),
            input_if: Some(1),
            output_if: Some(2),
            src_as: Some(64500),
            dst_as: Some(64501),
            src_mask: Some(24),
            dst_mask: Some(24),
            next_hop: Some(ip_to_u128(std::net::Ipv4Addr::from(0xc000_0202).into())),
            ..Default::default()
        })
        .collect();
    let exporter = "192.0.2.1:2055".parse().unwrap();
    // Each protocol with its usual times (variant 0), then with times in
    // seconds (150/151, end before start in the template) and reply
    // counters (23/24) (1), then also with an exporter-wide sampling rate
    // (2: rows pushed, not written in place).
    let protocols = [TemplateProtocol::V9, TemplateProtocol::Ipfix];
    for (p, variant) in protocols.into_iter().flat_map(|p| (0..3).map(move |v| (p, v))) {
        use weir_encode::netflow::Field;
        let mut enc = TemplateEncoder::new(p, 1, EXPORT_MS - 3_600_000);
        let mut t = Template::ipv4(256, p);
        t.fields.push(Field::new(if p == TemplateProtocol::V9 { 32 } else { 139 }, 2));
        if variant > 0 {
            let n = t.fields.len();
            t.fields.truncate(n - 3);
            t.fields.extend([Field::new(32, 2), Field::new(151, 4), Field::new(150, 4)]);
            t.fields.extend([Field::new(23, 8), Field::new(24, 4)]);
        }
        enc.add_template(t);
        let mut payloads = vec![enc.template_message(EXPORT_MS)];
        if variant == 2 {
            payloads.push(enc.sampler_options(EXPORT_MS, None, 4));
        }
        let flows: Vec<FlowRecord> = flows
            .iter()
            .map(|f| FlowRecord { out_bytes: Some(f.bytes / 2), out_packets: Some(3), ..f.clone() })
            .collect();
        payloads.extend(enc.data(256, &flows, EXPORT_MS, false));
        let dgs: Vec<Datagram<'_>> = payloads
            .iter()
            .map(|p| Datagram { exporter, received_ms: EXPORT_MS + 5, payload: p })
            .collect();
        for policy in [SamplingPolicy::Scale, SamplingPolicy::Raw, SamplingPolicy::Force(3)] {
            let name = format!("{p:?} {variant}");
            assert_eq!(both_ways(&name, &dgs, policy), 500, "{name}");
        }
    }
}
