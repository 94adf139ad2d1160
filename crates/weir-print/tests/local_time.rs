//! Times print in the local zone as `TZ` says, across DST changes: the
//! test re-runs itself with several `TZ` values and compares every printed
//! time with chrono's own local time.

use std::path::Path;
use std::process::Command;

use chrono::{Datelike, Local, TimeZone, Timelike};
use weir_print::{Format, PrintOptions, Printer};
use weir_query::{Section, Sink, Summary};
use weir_record::FlowRecord;

const CHILD: &str = "WEIR_PRINT_TZ_CHILD";

fn child() {
    // Around the 2024 DST changes of the northern and southern hemisphere.
    let starts = [1_711_843_200i64, 1_729_990_800, 1_712_440_800, 1_728_136_800, 1_710_054_000];
    let mut secs: Vec<i64> = Vec::new();
    for s in starts {
        let mut t = s - 4 * 3600;
        while t < s + 4 * 3600 {
            secs.push(t);
            t += 433;
        }
    }
    let recs: Vec<FlowRecord> = secs
        .iter()
        .map(|&s| FlowRecord {
            first: s as u64 * 1000 + 123,
            last: s as u64 * 1000 + 123,
            ..Default::default()
        })
        .collect();
    let opts = PrintOptions {
        format: Format::parse("fmt:%ts").unwrap(),
        quiet: true,
        ..Default::default()
    };
    let mut p = Printer::new(Vec::new(), opts);
    p.begin_section(Section::Records).unwrap();
    p.records("", &recs).unwrap();
    p.summary(&Summary { records_passed: 1, ..Default::default() }).unwrap();
    let out = String::from_utf8(p.into_inner()).unwrap();
    for (line, s) in out.lines().zip(&secs) {
        let d = Local.timestamp_opt(*s, 0).unwrap();
        let want = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.123",
            d.year(),
            d.month(),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        );
        assert_eq!(line, want, "TZ={:?} secs {s}", std::env::var("TZ"));
    }
    assert_eq!(out.lines().count(), secs.len());
}

#[test]
fn local_time_follows_tz() {
    if std::env::var(CHILD).is_ok() {
        child();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for tz in ["Europe/Zurich", "Australia/Lord_Howe", "America/St_Johns", "Asia/Kolkata", "UTC"] {
        if !Path::new("/usr/share/zoneinfo").join(tz).exists() {
            println!("note: no zoneinfo for {tz}; skipped");
            continue;
        }
        let out = Command::new(&exe)
            .args(["--exact", "local_time_follows_tz", "--nocapture", "--test-threads", "1"])
            .env("TZ", tz)
            .env(CHILD, "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "TZ={tz}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
