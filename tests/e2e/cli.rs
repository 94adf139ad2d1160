//! The `weir` command line, driven in-process.

use crate::weir;

#[test]
fn gen_then_inspect_reports_what_was_generated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out) = weir(&[
        "gen",
        "-w",
        d,
        "--start",
        "2024-03-04T06:00",
        "--duration",
        "10m",
        "--rate",
        "100/s",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("into 2 files"), "{out}");
    let flows: u64 = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!((57_000..63_000).contains(&flows), "{flows}");

    let (code, out) = weir(&["inspect", "--verify", d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("Flows: {flows}\n")), "{out}");
    assert!(out.contains("Ident: gen\n"), "{out}");
    assert!(out.contains("Verified") && out.contains(": 0 bad"), "{out}");
    let first = "2024/03/04/weir.202403040600";
    assert!(std::path::Path::new(d).join(first).exists());

    let (code, out) = weir(&["inspect", "--blocks", &format!("{d}/{first}")]);
    assert_eq!(code, 0);
    assert!(out.contains("  block    0  offset         32  length "), "{out}");
    assert!(out.contains("\nFile       : "), "{out}");
    assert!(
        out.contains("Slot       : 2024-03-04 06:00:00 - 2024-03-04 06:05:00 UTC (300 s)"),
        "{out}"
    );
}

#[test]
fn gen_is_deterministic_and_refuses_to_overwrite() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [&a, &b] {
        let (code, _) = weir(&[
            "gen",
            "-w",
            d.path().to_str().unwrap(),
            "--seed",
            "9",
            "--duration",
            "5m",
            "--rate",
            "50/s",
        ]);
        assert_eq!(code, 0);
    }
    // Same content: everything but the path and the creation time agrees.
    let stable = |d: &tempfile::TempDir| {
        let (_, out) = weir(&["inspect", d.path().to_str().unwrap()]);
        out.lines()
            .filter(|l| !l.starts_with("File ") && !l.starts_with("Created "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(stable(&a), stable(&b));
    let mut out = Vec::new();
    let err = weir_cli::run(
        [
            "weir",
            "gen",
            "-w",
            a.path().to_str().unwrap(),
            "--seed",
            "9",
            "--duration",
            "5m",
            "--rate",
            "50/s",
        ],
        &mut out,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("refusing to overwrite"), "{err:#}");
}

#[test]
fn bad_arguments_name_the_problem() {
    let mut out = Vec::new();
    let err =
        weir_cli::run(["weir", "gen", "-w", "/nonexistent-weir", "--duration", "6x"], &mut out)
            .unwrap_err();
    assert!(format!("{err:#}").contains("unknown unit 'x'"), "{err:#}");
    let (code, _) = weir(&["gen"]);
    assert_eq!(code, weir_cli::EXIT_USAGE);
}

/// The README's main command, shortened: a collector on loopback stores
/// every flow two synthetic exporters send it.
#[test]
fn demo_stores_everything_it_sends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let (code, out) = weir(&[
        "demo",
        "--dir",
        d.to_str().unwrap(),
        "--rate",
        "2k/s",
        "--duration",
        "2s",
        "--slot",
        "1",
    ]);
    assert_eq!(code, 0, "{out}");
    let line = out.lines().find(|l| l.starts_with("sent ")).unwrap();
    let n = |i: usize| line.split_whitespace().nth(i).unwrap().parse::<u64>().unwrap();
    let (v9, sflow) = (n(1), n(8));
    assert!(v9 > 3000 && sflow > 300, "{line}");
    assert!(line.contains(&format!("stored {} flows", v9 + sflow)), "{line}");
    assert!(line.contains("(queue drops 0)"), "{line}");
    assert!(out.contains(&format!("Flows: {}\n", v9 + sflow)), "{out}");
    assert!(out.contains(": 0 bad"), "{out}");
    // Then queried: the statistics count every stored flow.
    assert!(out.contains("Top 10 Protocol ordered by flows:"), "{out}");
    assert!(out.contains("Top 5 IP Addr ordered by bytes:"), "{out}");
    let totals = format!("Summary: total flows: {}, ", v9 + sflow);
    assert_eq!(out.matches(&totals).count(), 2, "{out}");
    assert!(out.contains("Summary: total flows: 5, "), "{out}");
}
