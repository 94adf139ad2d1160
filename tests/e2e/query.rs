//! `weir query`: golden output of every format, mode and summary on fixed
//! generated data; identical output across thread counts; `-t` boundaries;
//! `-Z`; `-I`; `-w`; a corrupt file among good ones.
//!
//! Golden files live in tests/golden/query/<case>.txt. After an intended
//! change, regenerate them with `SNAPSHOTS=overwrite cargo test -p weir-e2e
//! query` and review the diff.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::weir;

/// The fixture: 15 minutes of generated traffic (three 5-minute slots) with
/// a slammer burst, written once per test run.
fn fixture() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (code, out) = weir(&[
            "gen",
            "-w",
            dir.path().to_str().unwrap(),
            "--seed",
            "7",
            "--start",
            "2024-03-04T09:00",
            "--duration",
            "15m",
            "--rate",
            "20/s",
            "--slammer",
            "+5m+2m",
            "--slammer-rate",
            "30/s",
            "--block-rows",
            "4096",
        ]);
        assert_eq!(code, 0, "{out}");
        dir
    })
    .path()
}

/// `weir query --utc -R <fixture> ARGS`: (exit code, stdout with the
/// volatile timing line redacted).
fn query(args: &[&str]) -> (u8, String) {
    let fx = fixture().to_str().unwrap().to_string();
    let mut argv = vec!["query", "--utc", "-R", fx.as_str()];
    argv.extend_from_slice(args);
    let (code, out) = weir(&argv);
    (code, redact(&out))
}

/// Masks what changes without a change in meaning: timings, and the bytes
/// read (the files' size follows the store's compression, which has its
/// own tests; `info_reads_footers_and_agrees_with_a_full_scan` checks the
/// number).
fn redact(out: &str) -> String {
    out.lines()
        .map(|l| {
            if l.starts_with("Sys: ") {
                "Sys: [TIMING]".to_string()
            } else if let Some(i) = l.find("Bytes read: ") {
                format!("{}Bytes read: [SIZE]", &l[..i])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if out.ends_with('\n') { "\n" } else { "" }
}

fn golden_path(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/query").join(format!("{case}.txt"))
}

/// Compares `actual` with the golden file of `case` (or rewrites it when
/// SNAPSHOTS=overwrite).
fn assert_golden(case: &str, actual: &str) {
    let path = golden_path(case);
    if std::env::var("SNAPSHOTS").is_ok_and(|v| v == "overwrite") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with SNAPSHOTS=overwrite)", path.display()));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{case}: output differs from {} at line {}\n--- expected\n{}\n--- actual\n{}",
            path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>")
        );
    }
}

/// Every golden case: name and arguments after `-R <fixture>`.
const CASES: &[(&str, &[&str])] = &[
    ("line", &["-c", "20"]),
    ("long", &["-o", "long", "-c", "10"]),
    ("extended", &["-o", "extended", "-c", "10"]),
    ("line6", &["-o", "line6", "-c", "10", "ipv6"]),
    ("line_ipv6_condensed", &["-c", "10", "ipv6"]),
    ("plain_numbers", &["-N", "-o", "extended", "-c", "10", "bytes > 1M"]),
    ("csv", &["-o", "csv", "-c", "10"]),
    ("json", &["-o", "json", "-c", "3"]),
    ("ndjson", &["-o", "ndjson", "-c", "5"]),
    ("raw", &["-o", "raw", "-c", "2"]),
    ("null", &["-o", "null"]),
    ("quiet", &["-q", "-c", "5"]),
    (
        "fmt",
        &[
            "-o",
            "fmt:%ts %te %td %pr %sa %sp %da %dp %flg %stos %pkt %byt %fl %sas %das %in %out",
            "-c",
            "10",
        ],
    ),
    ("csv_tokens", &["-o", "csv:%ts,%pr,%sa,%da,%sp,%dp,%byt", "-c", "10"]),
    ("icmp", &["-c", "10", "proto icmp"]),
    ("slammer", &["-c", "15", "proto udp and port 1434"]),
    ("no_match", &["port 1 and port 2 and proto tcp and proto udp"]),
    ("order_bytes", &["-O", "bytes", "-n", "10"]),
    ("order_tstart_filtered", &["-O", "tstart", "-n", "10", "proto icmp"]),
    ("stat_ip_bytes", &["-s", "ip/bytes", "-n", "10"]),
    ("stat_srcip_net", &["-s", "srcip/flows", "-n", "5", "net 10.0.0.0/8"]),
    ("stat_proto", &["-s", "proto"]),
    ("stat_dstport_p_two_orders", &["-s", "dstport:p/bytes/flows", "-n", "5"]),
    ("stat_several", &["-s", "srcas", "-s", "dstas/bytes", "-s", "inif", "-n", "3"]),
    ("stat_record_bytes", &["-s", "record/bytes", "-n", "5"]),
    ("stat_csv", &["-s", "srcip/bytes", "-n", "5", "-o", "csv"]),
    ("stat_json", &["-s", "dstport/bytes", "-n", "3", "-o", "json"]),
    ("aggregate_5tuple", &["-a", "-O", "bytes", "-n", "10"]),
    ("aggregate_as", &["-A", "srcas,dstas", "-O", "bytes", "-n", "10"]),
    ("aggregate_prefix", &["-A", "srcip4/24,dstport", "-O", "bytes", "-n", "8"]),
    ("aggregate_post_filter", &["-A", "dstport", "-O", "flows", "-P", "flows > 100"]),
    ("bidirectional", &["-b", "-O", "bytes", "-n", "6"]),
    (
        "as_matrix",
        &["-A", "srcas,dstas", "-s", "record/bytes", "-n", "0", "-o", "fmt:%sas %das %byt"],
    ),
];

#[test]
fn golden_outputs() {
    let mut failures = Vec::new();
    for (case, args) in CASES {
        let (code, out) = query(args);
        assert_eq!(code, 0, "{case}: exit {code}\n{out}");
        if let Err(e) = std::panic::catch_unwind(|| assert_golden(case, &out)) {
            failures.push(
                e.downcast_ref::<String>().cloned().unwrap_or_else(|| format!("{case}: failed")),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Every scan strategy and thread count gives the same bytes: 1 and 4
/// threads, and statistics/aggregation spilling to temporary files under a
/// tiny memory budget instead of staying in memory.
#[test]
fn thread_count_and_scan_strategy_do_not_change_the_output() {
    for (case, args) in CASES {
        let runs: [&[&str]; 3] = [&["-W", "1"], &["-W", "4"], &["-W", "3", "--memory", "16K"]];
        let outputs: Vec<(u8, String)> = runs
            .iter()
            .map(|pre| {
                let mut a = pre.to_vec();
                a.extend_from_slice(args);
                query(&a)
            })
            .collect();
        for (pre, o) in runs.iter().zip(&outputs).skip(1) {
            assert_eq!(o, &outputs[0], "{case}: {pre:?} differs from -W 1");
        }
    }
}

fn summary_flows(out: &str) -> u64 {
    let line = out.lines().find(|l| l.starts_with("Summary: total flows: ")).unwrap_or_else(|| {
        panic!("no summary in\n{out}");
    });
    line["Summary: total flows: ".len()..].split(',').next().unwrap().parse().unwrap()
}

#[test]
fn the_slammer_burst_is_found_and_counted() {
    let (_, all) = query(&["-o", "null", "proto udp and dst port 1434"]);
    let burst = summary_flows(&all);
    // 2 minutes at 30 flows/s, Poisson: about 3600.
    assert!((3000..4200).contains(&burst), "{burst}");
    // Nearly all of them lie inside the burst window (background traffic
    // to port 1434 is rare but not impossible).
    let (_, inside) = query(&[
        "-o",
        "null",
        "-t",
        "2024-03-04T09:05:00Z/2024-03-04T09:08:00Z",
        "proto udp and dst port 1434",
    ]);
    let inside = summary_flows(&inside);
    assert!(inside <= burst && inside * 100 >= burst * 98, "{inside} of {burst}");
    let (_, top) = query(&["-s", "dstport/flows", "-n", "1", "proto udp"]);
    assert!(top.contains(" 1434 "), "{top}");
}

#[test]
fn time_window_boundaries_are_inclusive_and_match_the_filter() {
    // -t keeps flows with first >= start and last <= end; the same as the
    // filter terms `first seen >= start and last seen <= end`.
    for (t, f) in [
        (
            "2024/03/04.09:02:00-2024/03/04.09:04:00",
            "first seen >= 2024-03-04T09:02:00Z and last seen <= 2024-03-04T09:04:00Z",
        ),
        (
            "2024-03-04T09:10:00Z/2024-03-04T09:10:01Z",
            "first seen >= 2024-03-04T09:10:00Z and last seen <= 2024-03-04T09:10:01Z",
        ),
    ] {
        let (code, by_t) = query(&["-o", "null", "-t", t]);
        assert_eq!(code, 0, "{by_t}");
        let (_, by_filter) = query(&["-o", "null", f]);
        assert_eq!(summary_flows(&by_t), summary_flows(&by_filter), "{t}");
        assert!(summary_flows(&by_t) > 0, "{t}");
    }
    let fx = fixture().to_str().unwrap();
    let args = ["weir", "query", "-R", fx, "-o", "null", "-t", "2024/03/04.10:00-2024/03/04.09:00"];
    let err = weir_cli::run(args, &mut Vec::new()).expect_err("an end before the start");
    assert!(format!("{err:#}").contains("-t 2024/03/04.10:00-2024/03/04.09:00"), "{err:#}");
}

#[test]
fn check_only_exits_254_on_a_bad_filter() {
    let (code, _) = weir(&["query", "-Z", "proto tcp and port 80"]);
    assert_eq!(code, 0);
    let (code, _) = weir(&["query", "-Z", "proto tcp and port"]);
    assert_eq!(code, 254);
    let (code, _) = weir(&["query", "-Z", "-P", "flows >", "any"]);
    assert_eq!(code, 254);
    let (code, _) = query(&["-o", "null", "port 70000"]);
    assert_eq!(code, 254);
}

#[test]
fn filter_from_file_and_include() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("udp.inc"), "proto udp\n").unwrap();
    let f = dir.path().join("slammer.filter");
    std::fs::write(&f, "# the slammer worm\n@include udp.inc\nand dst port 1434\n").unwrap();
    let (code, from_file) = query(&["-o", "null", "-f", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{from_file}");
    let (_, inline) = query(&["-o", "null", "proto udp and dst port 1434"]);
    assert_eq!(summary_flows(&from_file), summary_flows(&inline));
}

#[test]
fn info_reads_footers_and_agrees_with_a_full_scan() {
    let (code, info) = query(&["-I"]);
    assert_eq!(code, 0, "{info}");
    let flows: u64 =
        info.lines().find_map(|l| l.strip_prefix("Flows: ")).expect("Flows line").parse().unwrap();
    let (_, scan) = query(&["-o", "null"]);
    assert_eq!(flows, summary_flows(&scan));
    // "Bytes read" is the size of the files read.
    let fx = fixture().to_str().unwrap().to_string();
    let (_, raw) = weir(&["query", "-R", &fx, "-o", "null"]);
    let size: u64 = walk_size(fixture());
    assert!(raw.contains(&format!("Bytes read: {size}\n")), "{size}\n{raw}");
}

/// `-g`: a line per 5-minute file at its slot time, and the lines add up
/// to what a full scan counts.
#[test]
fn gnuplot_lines_per_file_add_up_to_a_full_scan() {
    let (code, g) = query(&["-g"]);
    assert_eq!(code, 0, "{g}");
    let mut lines = g.lines();
    assert_eq!(lines.next(), Some("# yyyy-mm-dd HH:MM:SS,flows,packets,bytes"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let times: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(times, ["2024-03-04 09:00:00", "2024-03-04 09:05:00", "2024-03-04 09:10:00"]);
    let flows: u64 = rows.iter().map(|r| r[1].parse::<u64>().unwrap()).sum();
    let (_, scan) = query(&["-o", "null"]);
    assert_eq!(flows, summary_flows(&scan));
    // Footer totals cannot honour a filter: refused, not ignored.
    let fx = fixture().to_str().unwrap().to_string();
    let mut out = Vec::new();
    let err =
        weir_cli::run(["weir", "query", "-R", &fx, "-g", "proto", "udp"], &mut out).unwrap_err();
    assert!(format!("{err:#}").contains("takes no filter"), "{err:#}");
}

#[test]
fn write_then_read_back_gives_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("weir.202403040900");
    let (code, text) = query(&["-w", out.to_str().unwrap(), "proto udp and dst port 1434"]);
    assert_eq!(code, 0, "{text}");
    let (_, direct) = query(&["-q", "-o", "csv", "proto udp and dst port 1434"]);
    let (code, back) = weir(&["query", "--utc", "-r", out.to_str().unwrap(), "-q", "-o", "csv"]);
    assert_eq!(code, 0, "{back}");
    assert_eq!(direct, back);
}

#[test]
fn a_corrupt_file_is_reported_and_the_others_are_still_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = weir(&[
        "gen",
        "-w",
        dir.path().to_str().unwrap(),
        "--start",
        "2024-03-04T09:00",
        "--duration",
        "10m",
        "--rate",
        "10/s",
    ]);
    assert_eq!(code, 0, "{out}");
    let bad = dir.path().join("2024/03/04/weir.202403040900");
    let mut bytes = std::fs::read(&bad).unwrap();
    // Damage the first block's data, well inside the file.
    bytes[200] ^= 0xff;
    std::fs::write(&bad, &bytes).unwrap();
    let (code, out) =
        weir(&["query", "--utc", "-R", dir.path().to_str().unwrap(), "-o", "null", "proto tcp"]);
    assert_ne!(code, 0, "a damaged file must not go unnoticed\n{out}");
    let (_, good) = weir(&[
        "query",
        "--utc",
        "-r",
        dir.path().join("2024/03/04/weir.202403040905").to_str().unwrap(),
        "-o",
        "null",
        "proto tcp",
    ]);
    assert_eq!(summary_flows(&out), summary_flows(&good), "the good file is still answered");
}

fn walk_size(d: &Path) -> u64 {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { walk_size(&p) } else { p.metadata().unwrap().len() }
        })
        .sum()
}
