//! Golden-file tests: fixed records, stat tables and summaries through
//! every format. Run with `SNAPSHOTS=overwrite` to rewrite the files under
//! `tests/golden/` after an intended change (then review the diff).

use std::path::PathBuf;

use weir_print::{Format, PrintOptions, Printer, TimeZoneSetting};
use weir_query::{
    Counters, Direction, Order, OrderKey, Section, Sink, StatElement, StatRow, StatTable, Summary,
};
use weir_record::{Field, FlowRecord, ip_to_u128};

fn ip(s: &str) -> u128 {
    ip_to_u128(s.parse().unwrap())
}

const T0: u64 = 1_720_689_300_000; // 2024-07-11 09:15:00 UTC

/// The records every format prints.
fn records() -> Vec<FlowRecord> {
    vec![
        // nfdump's sample TCP flow.
        FlowRecord {
            first: T0,
            last: T0 + 1500,
            received: T0 + 2000,
            proto: 6,
            tcp_flags: 0x1b,
            src_port: 40000,
            dst_port: 80,
            packets: 4,
            bytes: 187,
            src_addr: Some(ip("10.0.0.1")),
            dst_addr: Some(ip("192.168.1.10")),
            exporter_addr: Some(ip("127.0.0.1")),
            flow_version: Some(9),
            ..Default::default()
        },
        // ICMP echo request: type 8 code 0 in the dst port.
        FlowRecord {
            first: T0 + 5000,
            last: T0 + 5000,
            received: T0 + 6000,
            proto: 1,
            tcp_flags: 0x02,
            src_port: 0,
            dst_port: 8 << 8,
            packets: 1,
            bytes: 28,
            src_addr: Some(ip("10.0.0.9")),
            dst_addr: Some(ip("1.1.1.1")),
            ..Default::default()
        },
        // Short IPv6 addresses (not condensed), UDP.
        FlowRecord {
            first: T0 + 35_000,
            last: T0 + 35_500,
            received: T0 + 36_000,
            proto: 17,
            src_port: 51002,
            dst_port: 443,
            packets: 2,
            bytes: 620,
            src_addr: Some(ip("2001:db8::3")),
            dst_addr: Some(ip("2001:db8:1::80")),
            ..Default::default()
        },
        // Long IPv6 addresses, big counters, more than a day long.
        FlowRecord {
            first: T0 - 2 * 86_400_000 - 3_723_456,
            last: T0 + 60_000,
            received: T0 + 61_000,
            proto: 6,
            tcp_flags: 0xff,
            src_port: 443,
            dst_port: 61000,
            src_tos: 184,
            packets: 5_500_000,
            bytes: 7_234_567_890,
            src_addr: Some(ip("2001:620:1000:cafe:20e:35ff:fec0:fed5")),
            dst_addr: Some(ip("2a00:1450:4001:82b::200e")),
            ..Default::default()
        },
        // An aggregated bidirectional record.
        FlowRecord {
            first: T0 + 10_000,
            last: T0 + 20_000,
            received: T0 + 21_000,
            proto: 17,
            src_port: 53,
            dst_port: 33333,
            packets: 3,
            bytes: 300,
            out_packets: Some(3),
            out_bytes: Some(1_200_000),
            flows: Some(3),
            src_addr: Some(ip("192.0.2.53")),
            dst_addr: Some(ip("198.51.100.7")),
            ..Default::default()
        },
        rich_record(),
    ]
}

/// A record with every optional field set.
fn rich_record() -> FlowRecord {
    FlowRecord {
        first: T0 + 100_123,
        last: T0 + 130_456,
        received: T0 + 131_000,
        proto: 6,
        tcp_flags: 0x12,
        src_port: 1234,
        dst_port: 22,
        src_tos: 16,
        dst_tos: Some(32),
        packets: 1_234_567,
        bytes: 987_654_321,
        src_addr: Some(ip("172.16.5.77")),
        dst_addr: Some(ip("203.0.113.200")),
        input_if: Some(3),
        output_if: Some(70_000),
        src_as: Some(64512),
        dst_as: Some(4_200_000_000),
        next_as: Some(65001),
        prev_as: Some(65002),
        next_hop: Some(ip("172.16.0.1")),
        bgp_next_hop: Some(ip("2001:db8:ffff::1")),
        src_mask: Some(12),
        dst_mask: Some(24),
        src_vlan: Some(100),
        dst_vlan: Some(4094),
        in_src_mac: Some(0x0a50_56c0_0001),
        out_dst_mac: Some(0x0011_2233_4455),
        in_dst_mac: Some(0x00ff_eedd_ccbb),
        out_src_mac: Some(0x0200_0000_0001),
        mpls1: Some((16 << 4) | 1),
        mpls2: Some((1_048_575 << 4) | (7 << 1)),
        direction: Some(1),
        fwd_status: Some(64),
        engine_type: Some(17),
        engine_id: Some(1),
        exporter_addr: Some(ip("192.0.2.254")),
        exporter_id: Some(3),
        sampling_rate: Some(100),
        flow_version: Some(10),
        obs_domain: Some(0x1234),
        end_reason: Some(2),
        ..Default::default()
    }
}

fn summary(passed: u64) -> Summary {
    Summary {
        passed: Counters { flows: 8, packets: 6_734_579, bytes: 8_222_456_329 },
        first_ms: T0 - 2 * 86_400_000 - 3_723_456,
        last_ms: T0 + 130_456,
        window: Some((T0 - 3 * 86_400_000, T0 + 140_210)),
        records_processed: 78,
        records_passed: passed,
        blocks_skipped: 2,
        bytes_read: 38_448,
        files: 3,
        wall_s: 0.25,
    }
}

fn opts(format: &str) -> PrintOptions {
    PrintOptions {
        format: Format::parse(format).unwrap(),
        timezone: TimeZoneSetting::utc(),
        ..Default::default()
    }
}

/// The `Sys:` line depends on the machine; keep its shape, mask numbers.
fn mask_timing(s: &str) -> String {
    s.lines()
        .map(|l| {
            if l.starts_with("Sys: ") {
                let words: Vec<&str> = l.split(' ').collect();
                assert_eq!(words.len(), 10, "{l}");
                assert!(l.contains("flows/second: 312.0 "), "{l}");
                "Sys: #.####s User: #.####s Wall: 0.2500s flows/second: 312.0 Runtime: #.####s"
                    .to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if s.ends_with('\n') { "\n" } else { "" }
}

fn check(name: &str, got: &str) {
    let got = mask_timing(got);
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.txt"));
    if std::env::var("SNAPSHOTS").as_deref() == Ok("overwrite") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("missing {}; run with SNAPSHOTS=overwrite to create it", path.display())
    });
    if want != got {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  want: {a:?}\n  got:  {b:?}", i + 1))
            .collect();
        panic!(
            "{name} differs from {} ({} vs {} lines)\n{}\n(SNAPSHOTS=overwrite to bless)",
            path.display(),
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

fn listing(o: PrintOptions, recs: &[FlowRecord], passed: u64) -> String {
    let mut p = Printer::new(Vec::new(), o);
    p.begin_section(Section::Records).unwrap();
    let (a, b) = recs.split_at(recs.len() / 2);
    p.records("testsrc", a).unwrap();
    p.records("", b).unwrap();
    p.summary(&summary(passed)).unwrap();
    String::from_utf8(p.into_inner()).unwrap()
}

#[test]
fn record_formats() {
    let recs = records();
    for f in ["line", "long", "extended", "biline", "bilong", "line6", "long6", "extended6"] {
        check(f, &listing(opts(f), &recs, 6));
    }
    for f in ["csv", "json", "ndjson", "raw", "null"] {
        check(f, &listing(opts(f), &recs, 6));
    }
}

#[test]
fn options_change_the_output() {
    let recs = records();
    check("line_plain", &listing(PrintOptions { plain_numbers: true, ..opts("line") }, &recs, 6));
    check(
        "extended_plain",
        &listing(PrintOptions { plain_numbers: true, ..opts("extended") }, &recs, 6),
    );
    check("long_quiet", &listing(PrintOptions { quiet: true, ..opts("long") }, &recs, 6));
    check("csv_quiet", &listing(PrintOptions { quiet: true, ..opts("csv") }, &recs, 6));
    check("line_dash6", &listing(PrintOptions { full_ipv6: true, ..opts("line") }, &recs, 6));
    let cest = TimeZoneSetting::Fixed(chrono::FixedOffset::east_opt(2 * 3600).unwrap());
    check("line_cest", &listing(PrintOptions { timezone: cest, ..opts("line") }, &recs, 6));
}

#[test]
fn custom_formats() {
    let recs = records();
    check("fmt_custom", &listing(opts("fmt:%ts %te %pr %sa %da %sp %dp %flg %fl|%long"), &recs, 6));
    check(
        "csv_custom",
        &listing(
            opts("csv:%ts,%te,%td,%pr,%sa,%sp,%da,%dp,%flg,%pkt,%byt,%bps,%pps,%bpp,%fl"),
            &recs,
            6,
        ),
    );
}

/// Every token, one per line with its header, for each record.
#[test]
fn every_token() {
    const TOKENS: &[&str] = &[
        "%nfv", "%cnt", "%idt", "%eng", "%exp", "%tfs", "%ts", "%tsr", "%tsg", "%te", "%ter",
        "%teg", "%tr", "%trr", "%trg", "%td", "%tds", "%pkt", "%ipkt", "%byt", "%ibyt", "%sp",
        "%dp", "%it", "%ic", "%pr", "%flg", "%fwd", "%tos", "%stos", "%bps", "%pps", "%bpp", "%sa",
        "%da", "%sap", "%dap", "%in", "%out", "%smk", "%dmk", "%dir", "%dtos", "%end", "%sn",
        "%dn", "%opkt", "%obyt", "%fl", "%svln", "%dvln", "%sas", "%das", "%nhb", "%nh", "%ra",
        "%mpls1", "%mpls2", "%mpls3", "%mpls4", "%mpls5", "%mpls6", "%mpls7", "%mpls8", "%mpls9",
        "%mpls10", "%mpls", "%ismc", "%odmc", "%idmc", "%osmc", "%nas", "%pas", "%odid",
    ];
    let recs = records();
    let mut out = String::new();
    for (fmt, csv) in [("fmt:", false), ("csv:", true)] {
        for plain in [false, true] {
            if csv && plain {
                continue;
            }
            for t in TOKENS {
                if csv && (*t == "%sap" || *t == "%dap") {
                    continue;
                }
                let spec = if csv { format!("{fmt}{t}") } else { format!("{fmt}[{t}]") };
                let o = PrintOptions { plain_numbers: plain, ..opts(&spec) };
                let mut p = Printer::new(Vec::new(), o);
                p.begin_section(Section::Records).unwrap();
                p.records("rtr1", &recs).unwrap();
                p.summary(&Summary { records_passed: 1, ..Default::default() }).unwrap();
                let text = String::from_utf8(p.into_inner()).unwrap();
                let text: Vec<&str> = text
                    .lines()
                    .filter(|l| {
                        !l.starts_with("Summary")
                            && !l.starts_with("Time")
                            && !l.starts_with("Total")
                            && !l.starts_with("Sys")
                    })
                    .collect();
                out.push_str(&format!("== {spec}{}\n", if plain { " -N" } else { "" }));
                for l in text {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
    }
    // %n splits a line.
    let mut p = Printer::new(Vec::new(), PrintOptions { quiet: true, ..opts("fmt:%sa%n%da") });
    p.records("", &recs[..1]).unwrap();
    p.summary(&Summary { records_passed: 1, ..Default::default() }).unwrap();
    out.push_str("== fmt:%sa%n%da -q\n");
    out.push_str(&String::from_utf8(p.into_inner()).unwrap());
    check("tokens", &out);
}

#[test]
fn no_matching_flows() {
    check("no_match_line", &listing(opts("line"), &[], 0));
    check("no_match_json", &listing(opts("json"), &[], 0));
    check("no_match_quiet", &listing(PrintOptions { quiet: true, ..opts("line") }, &[], 0));
    let mut s = summary(0);
    s.window = None;
    s.passed = Counters::default();
    s.first_ms = 0;
    s.last_ms = 0;
    let mut p = Printer::new(Vec::new(), opts("null"));
    p.summary(&s).unwrap();
    check("no_match_no_files", &String::from_utf8(p.into_inner()).unwrap());
}

const SRCIP: StatElement =
    StatElement { name: "srcip", header: "Src IP Addr", fields: &[Field::SrcAddr] };
const DSTPORT: StatElement =
    StatElement { name: "dstport", header: "Dst Port", fields: &[Field::DstPort] };
const PROTO: StatElement =
    StatElement { name: "proto", header: "Protocol", fields: &[Field::Proto] };
const FLAGS: StatElement =
    StatElement { name: "flags", header: "TCPflags", fields: &[Field::TcpFlags] };
const INSRCMAC: StatElement =
    StatElement { name: "insrcmac", header: "In Src Mac", fields: &[Field::InSrcMac] };
const MPLS1: StatElement =
    StatElement { name: "mpls1", header: "MPLS label 1", fields: &[Field::Mpls1] };

fn row(value: u128, proto: Option<u8>, first: u64, dur: u64, c: (u64, u64, u64)) -> StatRow {
    StatRow {
        value,
        proto,
        first_ms: first,
        last_ms: first + dur,
        counters: Counters { flows: c.0, packets: c.1, bytes: c.2 },
    }
}

fn tables() -> Vec<StatTable> {
    let total = Counters { flows: 78, packets: 2_600_242, bytes: 3_100_075_200 };
    let desc = |key| Order { key, direction: Direction::Descending };
    vec![
        StatTable {
            element: SRCIP,
            per_proto: false,
            order: desc(OrderKey::Flows),
            rows: vec![
                row(ip("8.8.8.8"), None, T0 + 3019, 99_000, (10, 10, 900)),
                row(ip("2001:620:1000:cafe:20e:35ff:fec0:fed5"), None, T0, 0, (9, 100, 64_000)),
                row(
                    ip("10.0.0.1"),
                    None,
                    T0 - 90_061_001,
                    90_061_001,
                    (1, 2_500_000, 3_000_000_000),
                ),
            ],
            total,
            distinct: 40,
        },
        StatTable {
            element: DSTPORT,
            per_proto: true,
            order: desc(OrderKey::Bytes),
            rows: vec![
                row(443, Some(6), T0, 140_000, (20, 120, 60_000)),
                row(53, Some(17), T0 + 10, 1_000, (20, 20, 1_500)),
                row(8 << 8, Some(1), T0 + 5000, 0, (10, 10, 280)),
            ],
            total,
            distinct: 3,
        },
        StatTable {
            element: PROTO,
            per_proto: false,
            order: desc(OrderKey::Packets),
            rows: vec![
                row(6, Some(6), T0, 140_210, (48, 212, 73_420)),
                row(1, Some(1), T0, 50, (10, 10, 280)),
            ],
            total,
            distinct: 2,
        },
        StatTable {
            element: FLAGS,
            per_proto: false,
            order: desc(OrderKey::Flows),
            rows: vec![row(0x1b, None, T0, 1500, (30, 100, 5000))],
            total,
            distinct: 1,
        },
        StatTable {
            element: INSRCMAC,
            per_proto: false,
            order: desc(OrderKey::Bps),
            rows: vec![row(0x0a50_56c0_0001, None, T0, 1500, (30, 100, 5000))],
            total,
            distinct: 1,
        },
        StatTable {
            element: MPLS1,
            per_proto: false,
            order: desc(OrderKey::Bpp),
            rows: vec![row((16 << 4) | 1, None, T0, 1500, (30, 100, 5000))],
            total,
            distinct: 1,
        },
    ]
}

fn stats(o: PrintOptions, passed: u64) -> String {
    let mut p = Printer::new(Vec::new(), o);
    let ts = tables();
    for t in &ts {
        let mut t = t.clone();
        if passed == 0 {
            t.rows.clear();
        }
        p.stat(&t).unwrap();
    }
    p.summary(&summary(passed)).unwrap();
    String::from_utf8(p.into_inner()).unwrap()
}

#[test]
fn stat_tables() {
    check("stat_line", &stats(opts("line"), 78));
    check("stat_plain", &stats(PrintOptions { plain_numbers: true, ..opts("line") }, 78));
    check("stat_v6", &stats(opts("line6"), 78));
    check("stat_n0", &stats(PrintOptions { top_n: 0, ..opts("line") }, 78));
    check("stat_quiet", &stats(PrintOptions { quiet: true, ..opts("line") }, 78));
    check("stat_csv", &stats(opts("csv"), 78));
    check("stat_json", &stats(opts("json"), 78));
    check("stat_raw", &stats(opts("raw"), 78));
    check("stat_no_match", &stats(opts("line"), 0));
}

#[test]
fn top_records() {
    let recs = records();
    for (name, f, passed) in [
        ("top_line", "line", 6),
        ("top_csv", "csv", 6),
        ("top_json", "json", 6),
        ("top_no_match", "line", 0),
    ] {
        let mut p = Printer::new(Vec::new(), opts(f));
        let order = Order { key: OrderKey::Bytes, direction: Direction::Descending };
        p.begin_section(Section::TopRecords { n: 3, order }).unwrap();
        if passed > 0 {
            p.records("", &recs[..3]).unwrap();
        }
        p.summary(&summary(passed)).unwrap();
        check(name, &String::from_utf8(p.into_inner()).unwrap());
    }
}

#[test]
fn columns_follow_the_format() {
    let p = Printer::new(Vec::new(), opts("line"));
    let cols = p.columns().unwrap();
    for f in [
        Field::First,
        Field::Last,
        Field::Proto,
        Field::SrcAddr,
        Field::DstAddr,
        Field::SrcPort,
        Field::DstPort,
        Field::Packets,
        Field::Bytes,
        Field::Flows,
    ] {
        assert!(cols.contains(&f), "{f}");
    }
    assert!(!cols.contains(&Field::TcpFlags));
    assert!(Printer::new(Vec::new(), opts("null")).columns().is_none());
    assert_eq!(Printer::new(Vec::new(), opts("json")).columns().unwrap().len(), Field::COUNT);
}

/// A writer that fails like a closed pipe.
struct Broken;

impl std::io::Write for Broken {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn broken_pipe_is_an_error() {
    let mut p = Printer::new(Broken, opts("line"));
    p.begin_section(Section::Records).unwrap();
    let recs: Vec<FlowRecord> = records().into_iter().cycle().take(2000).collect();
    let e = p.records("", &recs).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
}

/// nfdump 1.7.8's sample output for `-A srcip4/24,dstport` (reference §1.3).
#[test]
fn aggregation_auto_format_matches_the_reference() {
    use weir_query::AggKey;
    let keys = [
        AggKey::Prefix { field: Field::SrcAddr, ipv6: false, bits: 24 },
        AggKey::Field(Field::DstPort),
    ];
    let o = PrintOptions {
        format: Format::aggregation(&keys, false),
        timezone: TimeZoneSetting::utc(),
        ..Default::default()
    };
    let r = FlowRecord {
        first: 1_720_689_438_710,
        last: 1_720_689_440_210,
        dst_port: 40019,
        packets: 6,
        bytes: 5040,
        flows: Some(1),
        src_addr: Some(ip("192.168.1.0")),
        ..Default::default()
    };
    let mut p = Printer::new(Vec::new(), o);
    p.begin_section(Section::Records).unwrap();
    p.records("", &[r]).unwrap();
    p.summary(&summary(1)).unwrap();
    let out = String::from_utf8(p.into_inner()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "Date first seen         Duration               Src IP Addr Dst Pt   Packets    Bytes      bps    Bpp Flows"
    );
    assert_eq!(
        lines[1],
        "2024-07-11 09:17:18.710     00:00:01.500       192.168.1.0  40019         6     5040    26880    840     1"
    );
}

/// nfdump 1.7.8's sample stat line for `-s srcip` (reference §2.3).
#[test]
fn stat_line_matches_the_reference() {
    let t = StatTable {
        element: SRCIP,
        per_proto: false,
        order: Order { key: OrderKey::Flows, direction: Direction::Descending },
        rows: vec![row(ip("8.8.8.8"), None, 1_720_689_303_019, 99_000, (10, 10, 900))],
        total: Counters { flows: 78, packets: 242, bytes: 75_200 },
        distinct: 1,
    };
    let mut p = Printer::new(Vec::new(), PrintOptions { top_n: 3, ..opts("line") });
    p.stat(&t).unwrap();
    p.summary(&Summary { records_passed: 78, ..Default::default() }).unwrap();
    let out = String::from_utf8(p.into_inner()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Top 3 Src IP Addr ordered by flows:");
    assert_eq!(
        lines[1],
        "Date first seen             Duration     Proto       Src IP Addr    Flows(%)     Packets(%)       Bytes(%)         pps      bps   bpp"
    );
    assert_eq!(
        lines[2],
        "2024-07-11 09:15:03.019     00:01:39.000 any             8.8.8.8       10(12.8)       10( 4.1)      900( 1.2)        0       72    90"
    );

    let mut p = Printer::new(Vec::new(), opts("json"));
    p.stat(&t).unwrap();
    p.summary(&Summary { records_passed: 78, ..Default::default() }).unwrap();
    assert_eq!(
        String::from_utf8(p.into_inner()).unwrap(),
        "{ \"first\" : \"2024-07-11T09:15:03.019\", \"last\" : \"2024-07-11T09:16:42.019\", \"proto\" : 0, \"srcip\" : \"8.8.8.8\", \"flows\" : 10, \"packets\" : 10, \"bytes\" : 900, \"pps\" : 0, \"bps\" : 72, \"bpp\" : 90}\n"
    );
}

/// nfdump 1.7.8's sample summary (reference §2.3).
#[test]
fn summary_matches_the_reference() {
    let s = Summary {
        passed: Counters { flows: 78, packets: 242, bytes: 75_200 },
        first_ms: 1_720_689_300_000,
        last_ms: 1_720_689_440_210,
        window: Some((1_720_689_300_000, 1_720_689_440_210)),
        records_processed: 78,
        records_passed: 78,
        blocks_skipped: 0,
        bytes_read: 38_448,
        files: 3,
        wall_s: 0.001,
    };
    let mut p = Printer::new(Vec::new(), opts("null"));
    p.summary(&s).unwrap();
    let out = String::from_utf8(p.into_inner()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "Summary: total flows: 78, total bytes: 75200, total packets: 242, avg bps: 4290, avg pps: 1, avg bpp: 310",
            "Time window: 2024-07-11 09:15:00.000 - 2024-07-11 09:17:20.210, Duration:    00:02:20.210",
            "Total records processed: 78, passed: 78, Blocks skipped: 0, Bytes read: 38448",
        ]
    );
    assert!(
        lines[3].starts_with("Sys: ")
            && lines[3].contains(" Wall: 0.0010s flows/second: 78000.0 Runtime: "),
        "{}",
        lines[3]
    );
}

/// The text a format's renderer makes on the engine's workers is what
/// `records` prints, for every format that has one (and only `%cnt`,
/// json, ndjson and raw have none).
#[test]
fn rendered_text_is_what_records_print() {
    let recs = records();
    let cest = TimeZoneSetting::Fixed(chrono::FixedOffset::east_opt(2 * 3600).unwrap());
    let mut with = 0;
    for f in [
        "line",
        "long",
        "extended",
        "biline",
        "bilong",
        "line6",
        "long6",
        "extended6",
        "csv",
        "json",
        "ndjson",
        "raw",
        "null",
        "fmt:%ts %te %tr %td %sap %dap %sn %dn %idt",
        "fmt:%cnt %sa",
        "csv:%ts,%sa,%byt",
    ] {
        for o in [
            opts(f),
            PrintOptions { plain_numbers: true, ..opts(f) },
            PrintOptions { full_ipv6: true, timezone: cest, ..opts(f) },
        ] {
            let want = listing(o.clone(), &recs, 6);
            let mut p = Printer::new(Vec::new(), o);
            let Some(r) = p.renderer() else { continue };
            with += 1;
            p.begin_section(Section::Records).unwrap();
            let (a, b) = recs.split_at(recs.len() / 2);
            let mut text = Vec::new();
            r.render("testsrc", a, &mut text);
            p.rendered(&text, a.len() as u64).unwrap();
            text.clear();
            r.render("", b, &mut text);
            p.rendered(&text, b.len() as u64).unwrap();
            p.summary(&summary(6)).unwrap();
            let got = String::from_utf8(p.into_inner()).unwrap();
            assert_eq!(mask_timing(&got), mask_timing(&want), "{f}");
        }
    }
    assert_eq!(with, 11 * 3, "formats with a renderer");
}
