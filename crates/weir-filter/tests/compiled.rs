//! The compiled (vectorised) evaluator agrees with the reference row
//! evaluator [`Filter::matches`] on every row.

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use support::{build, data_dir, filter_text, record};
use weir_filter::Filter;
use weir_record::{BatchBuilder, Bitmap, Field, FlowBatch, FlowRecord};

fn batch_of<'a>(rows: impl IntoIterator<Item = &'a FlowRecord>) -> FlowBatch {
    let mut b = BatchBuilder::default();
    for r in rows {
        b.push(r);
    }
    b.finish()
}

/// Row `i` of the compiled result next to the reference on the batch's own
/// records; `None` when they agree everywhere.
fn first_difference(f: &Filter, batch: &FlowBatch, ident: &str) -> Option<String> {
    let mut out = Bitmap::default();
    f.compile().eval(batch, ident, &mut out);
    assert_eq!(out.len(), batch.rows());
    // Bits past the last row stay clear.
    let ones = out.count_ones();
    assert_eq!(ones, out.iter_ones().filter(|i| *i < batch.rows()).count());
    (0..batch.rows()).find_map(|i| {
        let r = batch.record(i);
        let want = f.matches(&r, ident);
        (out.get(i) != want)
            .then(|| format!("row {i}: compiled {} != {want} for {r:?}", out.get(i)))
    })
}

#[test]
fn table_driven_cases_agree() {
    let text = std::fs::read_to_string(data_dir().join("cases.toml")).expect("cases.toml");
    let doc: toml::Table = text.parse().expect("cases.toml is TOML");
    let mut named = BTreeMap::new();
    for (name, v) in doc.get("records").and_then(|r| r.as_table()).expect("[records]") {
        let r = build(v, &named, name);
        named.insert(name.clone(), r);
    }
    let mut failures = Vec::new();
    let mut rows = 0;
    for case in doc.get("case").and_then(|c| c.as_array()).expect("[[case]]") {
        let text = case.get("filter").and_then(|f| f.as_str()).expect("filter");
        let Ok(f) = Filter::parse(text) else { continue };
        // One batch per file ident; each record also alone.
        let mut by_ident: BTreeMap<String, Vec<(FlowRecord, bool)>> = BTreeMap::new();
        for (key, want) in [("match", true), ("nomatch", false)] {
            for (i, v) in case.get(key).and_then(|l| l.as_array()).into_iter().flatten().enumerate()
            {
                let r = build(v, &named, &format!("{text:?} {key}[{i}]"));
                by_ident.entry(r.ident).or_default().push((r.rec, want));
            }
        }
        let c = f.compile();
        for (ident, recs) in &by_ident {
            let batch = batch_of(recs.iter().map(|(r, _)| r));
            let mut out = Bitmap::default();
            c.eval(&batch, ident, &mut out);
            for (i, (r, want)) in recs.iter().enumerate() {
                rows += 1;
                if out.get(i) != *want || f.matches(r, ident) != *want {
                    failures.push(format!("{text:?}: row {i} ({ident}) gave {}", out.get(i)));
                }
                let single = batch_of([r]);
                let mut one = Bitmap::default();
                c.eval(&single, ident, &mut one);
                if one.get(0) != *want {
                    failures.push(format!("{text:?}: single row {i} gave {}", one.get(0)));
                }
            }
        }
    }
    assert!(rows > 500, "too few rows: {rows}");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn absent_columns_and_word_edges() {
    let f = Filter::parse("src vlan 3 or not dst vlan 4").unwrap();
    for n in [0usize, 1, 63, 64, 65, 127, 128, 129, 300] {
        let recs: Vec<FlowRecord> = (0..n)
            .map(|i| FlowRecord {
                src_vlan: (i % 3 == 0).then_some((i % 5) as u16),
                dst_vlan: (i % 7 != 0).then_some((i % 6) as u16),
                ..Default::default()
            })
            .collect();
        let batch = batch_of(&recs);
        assert_eq!(first_difference(&f, &batch, "weir"), None, "{n} rows");
        let mut bare = batch.clone();
        bare.take_column(Field::SrcVlan);
        bare.take_column(Field::DstVlan);
        assert_eq!(first_difference(&f, &bare, "weir"), None, "{n} rows, no columns");
    }
    // Output bitmaps of the wrong size are resized.
    let mut out = Bitmap::ones(7);
    let batch = batch_of(&vec![FlowRecord::default(); 3]);
    Filter::parse("proto 0").unwrap().compile().eval(&batch, "x", &mut out);
    assert_eq!(out, Bitmap::ones(3));
}

#[test]
fn fields_are_the_filters() {
    for t in ["port 80 and pps > 3", "any", "ident x", "mpls eos 4"] {
        let f = Filter::parse(t).unwrap();
        assert_eq!(f.compile().fields(), f.fields().as_slice(), "{t}");
    }
}

fn batch_size() -> impl Strategy<Value = usize> {
    prop_oneof![Just(64usize), Just(128), Just(1), 1usize..300]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn compiled_agrees_with_matches(
        text in filter_text(),
        rows in batch_size().prop_flat_map(|n| prop::collection::vec(record(), n)),
        drop in prop::collection::vec(prop::sample::select(Field::ALL), 0..4),
        ident in prop::sample::select(vec!["weir", "other"]),
    ) {
        let f = Filter::parse(&text).unwrap();
        let mut batch = batch_of(&rows);
        // Whole columns absent (a projection without the field); required
        // fields then read as 0, as in `FlowBatch::record`.
        for field in drop {
            batch.take_column(field);
        }
        let diff = first_difference(&f, &batch, ident);
        prop_assert!(diff.is_none(), "{text}: {}", diff.unwrap_or_default());
    }
}

/// Long lists and network sets (binary search, bucket index) against the
/// reference, on addresses near and inside the listed ones.
#[test]
fn long_lists_and_net_sets() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for round in 0..40 {
        let n = [5, 9, 30, 200, 1000][round % 5];
        let mut items = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..n {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 | rnd(1 << 14) as u32);
            items.push(match rnd(6) {
                0 => format!("{a}/24"),
                1 => format!("{a}/{}", 19 + rnd(14)),
                2 => format!("2001:db8::{:x}/{}", rnd(1 << 16), 113 + rnd(16)),
                3 if round % 2 == 0 => format!("2001:db8::{:x}", rnd(1 << 16)),
                _ => a.to_string(),
            });
            ports.push(rnd(2000).to_string());
        }
        let text = format!("ip in [{}] or src port in [{}]", items.join(" "), ports.join(" "));
        let f = Filter::parse(&text).unwrap();
        let recs: Vec<FlowRecord> = (0..500)
            .map(|i| {
                let v4 = weir_record::ip_to_u128(
                    std::net::Ipv4Addr::from(0x0a00_0000 | rnd(1 << 14) as u32).into(),
                );
                let v6 = weir_record::ip_to_u128(
                    format!("2001:db8::{:x}", rnd(1 << 16))
                        .parse::<std::net::Ipv6Addr>()
                        .unwrap()
                        .into(),
                );
                FlowRecord {
                    src_addr: (i % 11 != 0).then_some(if rnd(4) == 0 { v6 } else { v4 }),
                    dst_addr: Some(if rnd(3) == 0 { v6 } else { v4 + u128::from(rnd(3)) }),
                    src_port: rnd(2000) as u16,
                    ..Default::default()
                }
            })
            .collect();
        let batch = batch_of(&recs);
        assert_eq!(first_difference(&f, &batch, "weir"), None, "{text}");
        let g = Filter::parse(&format!("dst ip in [{}]", items.join(" "))).unwrap();
        assert_eq!(first_difference(&g, &batch, "weir"), None, "{text}");
    }
}

prop_compose! {
    /// Records with extreme counters, times in either order and deep MPLS
    /// stacks, for the derived operands.
    fn extreme()(
        counts in (prop::sample::select(vec![0u64, 1, 7, 1 << 40, u64::MAX - 1, u64::MAX]),
                   prop::sample::select(vec![0u64, 1, 999, 1 << 50, u64::MAX])),
        times in (prop::sample::select(vec![0u64, 1, 1000, u64::MAX]),
                  prop::sample::select(vec![0u64, 2, 1001, u64::MAX])),
        dst_port in prop::sample::select(vec![0u16, 0x0301, 0x8700, 0xffff]),
        proto in prop::sample::select(vec![1u8, 6, 58]),
        mpls in prop::collection::vec(prop::option::of(0u32..(1 << 24)), 10),
    ) -> FlowRecord {
        let mut r = FlowRecord {
            packets: counts.0,
            bytes: counts.1,
            first: times.0,
            last: times.1,
            dst_port,
            proto,
            ..Default::default()
        };
        for (f, v) in weir_filter::MPLS_FIELDS.iter().zip(mpls) {
            if let Some(v) = v {
                r.set(*f, u128::from(v));
            }
        }
        r
    }
}

const DERIVED: &[&str] = &[
    "pps > 1000",
    "pps 0",
    "bps > 18446744073709551615",
    "bps < 8000",
    "bpp > 1",
    "bpp 0",
    "duration > 1000",
    "duration 0",
    "icmp-type 3",
    "icmp-code 1",
    "icmp-type 135 or icmp-code 255",
    "mpls eos > 1000",
    "mpls eos 0",
    "not mpls eos < 100000",
    "mpls label3 > 5000",
    "mpls exp7 3",
    "mpls any 7",
    "packets > 18446744073709551614",
    "bytes < 1",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn derived_operands_agree_at_the_extremes(
        texts in prop::collection::vec(prop::sample::select(DERIVED), 1..4),
        or in any::<bool>(),
        rows in (1usize..200).prop_flat_map(|n| prop::collection::vec(extreme(), n)),
    ) {
        let text = texts.join(if or { " or " } else { " and " });
        let f = Filter::parse(&text).unwrap();
        let batch = batch_of(&rows);
        let diff = first_difference(&f, &batch, "weir");
        prop_assert!(diff.is_none(), "{text}: {}", diff.unwrap_or_default());
    }
}
