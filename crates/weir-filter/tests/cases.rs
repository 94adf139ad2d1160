//! Runs the table-driven cases in `tests/data/filter/cases.toml`.
//!
//! Records are written as TOML tables keyed by registry field names
//! (`src_addr = "10.0.0.1"`, `dst_port = 80`, ...). Addresses and MACs are
//! strings, times may be ISO strings (UTC) or milliseconds. `base = "name"`
//! starts from a named record of `[records]`, `clear = ["field", ...]`
//! removes fields, `ident = "..."` sets the file ident (default `weir`).
//! A record may also be given by name alone.

mod support;

use std::collections::BTreeMap;

use support::{build, data_dir};

use weir_filter::Filter;
use weir_record::{BatchBuilder, BlockStats, FlowRecord};

fn stats_of(r: &FlowRecord) -> BlockStats {
    let mut b = BatchBuilder::default();
    b.push(r);
    BlockStats::of(&b.finish())
}

#[test]
fn table_driven_cases() {
    let text = std::fs::read_to_string(data_dir().join("cases.toml")).expect("cases.toml");
    let doc: toml::Table = text.parse().expect("cases.toml is TOML");
    let mut named = BTreeMap::new();
    for (name, v) in doc.get("records").and_then(|r| r.as_table()).expect("[records]") {
        let r = build(v, &named, name);
        named.insert(name.clone(), r);
    }
    let mut failures = Vec::new();
    let cases = doc.get("case").and_then(|c| c.as_array()).expect("[[case]]");
    let (mut matched, mut rejected) = (0, 0);
    for case in cases {
        let filter = case.get("filter").and_then(|f| f.as_str()).expect("filter");
        let f = match Filter::parse(filter) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{filter:?}: does not parse: {e}"));
                continue;
            }
        };
        for (key, want) in [("match", true), ("nomatch", false)] {
            let Some(list) = case.get(key).and_then(|l| l.as_array()) else { continue };
            for (i, v) in list.iter().enumerate() {
                let r = build(v, &named, &format!("{filter:?} {key}[{i}]"));
                let got = f.matches(&r.rec, &r.ident);
                if got != want {
                    failures.push(format!("{filter:?}: {key}[{i}] = {v} gave {got}"));
                }
                if got && !f.prune(&stats_of(&r.rec)) {
                    failures.push(format!("{filter:?}: prune says no for matching {v}"));
                }
                if want { matched += 1 } else { rejected += 1 }
            }
        }
        if case.get("match").is_none() && case.get("nomatch").is_none() {
            failures.push(format!("{filter:?}: case without records"));
        }
    }
    let errors = doc.get("error").and_then(|c| c.as_array()).expect("[[error]]");
    for case in errors {
        let filter = case.get("filter").and_then(|f| f.as_str()).expect("filter");
        let fragment = case.get("message").and_then(|f| f.as_str()).expect("message");
        match Filter::parse(filter) {
            Ok(f) => {
                failures.push(format!("{filter:?}: parsed as {:?}, expected an error", f.expr()))
            }
            Err(e) => {
                if !e.message.contains(fragment) {
                    failures
                        .push(format!("{filter:?}: message {:?} lacks {fragment:?}", e.message));
                }
                if let Some(c) = case.get("column").and_then(|c| c.as_integer())
                    && e.column as i64 != c
                {
                    failures
                        .push(format!("{filter:?}: column {} != {c} ({})", e.column, e.message));
                }
                if let Some(l) = case.get("line").and_then(|c| c.as_integer())
                    && e.line as i64 != l
                {
                    failures.push(format!("{filter:?}: line {} != {l}", e.line));
                }
                if !e.pretty.contains('^') {
                    failures.push(format!("{filter:?}: pretty has no caret"));
                }
            }
        }
    }
    println!(
        "{} expressions ({matched} must-match and {rejected} must-not-match records), {} error cases",
        cases.len(),
        errors.len()
    );
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(cases.len() + errors.len() >= 400, "too few cases");
}
