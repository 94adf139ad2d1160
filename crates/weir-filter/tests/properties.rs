//! Properties of the filter: block pruning never answers "no" for a block
//! holding a row that the reference evaluator matches; `fields()` lists every
//! column the evaluator reads; the parser never panics.

mod support;

use proptest::prelude::*;
use support::{ATOMS, filter_text, record};
use weir_filter::Filter;
use weir_record::{BatchBuilder, BlockStats, Field, FlowRecord};

const TOKENS: &[&str] = &[
    "and",
    "or",
    "not",
    "!",
    "(",
    ")",
    "[",
    "]",
    ",",
    "src",
    "dst",
    "in",
    "out",
    "next",
    "bgp",
    "prev",
    "router",
    "exporter",
    "ip",
    "host",
    "net",
    "port",
    "proto",
    "as",
    "if",
    "mask",
    "vlan",
    "mac",
    "mpls",
    "label1",
    "label11",
    "exp2",
    "eos",
    "any",
    "flags",
    "tos",
    "packets",
    "bytes",
    "flows",
    "duration",
    "pps",
    "bps",
    "bpp",
    "icmp",
    "type",
    "code",
    "icmp-type",
    "engine-id",
    "engine",
    "id",
    "sysid",
    "flowdir",
    "egress",
    "fwdstat",
    "Drop",
    "first",
    "last",
    "seen",
    "ident",
    "ipv4",
    "ipv6",
    "observation",
    "domain",
    "point",
    "nat",
    "payload",
    "ttl",
    "80",
    "0x1f",
    "1k",
    "99999999999999999999999",
    "=",
    "==",
    ">",
    "<=",
    "eq",
    "gt",
    "SA",
    "=SA",
    "10.0.0.1",
    "10.0.0/24",
    "::1",
    "2001:db8::/129",
    "255.255.0.0",
    "0a:50:56:c0:00:01",
    "2024-07-11T09",
    "'quoted'",
    "\"dq\"",
    "#",
    "\n",
    "@include",
    "tcp",
    "foo",
    "ä",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn prune_never_drops_a_matching_block(
        text in filter_text(),
        rows in prop::collection::vec(record(), 1..12),
    ) {
        let f = Filter::parse(&text).unwrap();
        let mut b = BatchBuilder::default();
        for r in &rows {
            b.push(r);
        }
        let stats = BlockStats::of(&b.finish());
        if rows.iter().any(|r| f.matches(r, "weir")) {
            prop_assert!(f.prune(&stats), "{text} pruned a block with a match");
        }
    }

    /// The column compiler loads only `fields()`: changing any other column
    /// must not change the result.
    #[test]
    fn fields_cover_everything_the_evaluator_reads(
        text in filter_text(),
        r in record(),
        other in record(),
    ) {
        let f = Filter::parse(&text).unwrap();
        let read = f.fields();
        let mut mixed = other.clone();
        for field in Field::ALL {
            if read.contains(field) {
                match r.get(*field) {
                    Some(v) => mixed.set(*field, v),
                    None => mixed.clear(*field),
                }
            }
        }
        prop_assert_eq!(f.matches(&r, "weir"), f.matches(&mixed, "weir"), "{}", text);
    }

    #[test]
    fn not_is_complement(text in filter_text(), r in record()) {
        let f = Filter::parse(&text).unwrap();
        let n = Filter::parse(&format!("not ({text})")).unwrap();
        prop_assert_ne!(f.matches(&r, "weir"), n.matches(&r, "weir"));
    }

    /// Token soup: whatever the input, parse returns (never panics), and an
    /// error's position lies inside the text.
    #[test]
    fn parser_never_panics(words in prop::collection::vec(prop::sample::select(TOKENS), 0..8)) {
        let text = words.join(" ");
        if let Err(e) = Filter::parse(&text) {
            prop_assert!(e.line >= 1 && e.column >= 1);
            prop_assert!(e.column <= text.chars().count() + 1, "{text:?}: {e}");
        }
    }

    #[test]
    fn every_atom_parses_and_reads_what_it_says(text in prop::sample::select(ATOMS)) {
        let f = Filter::parse(text).unwrap();
        // An unreadable column can only make rows look absent; matching a
        // record with every read field cleared must not panic.
        let _ = f.matches(&FlowRecord::default(), "");
        prop_assert!(f.fields().windows(2).all(|w| w[0] < w[1]));
    }
}

#[test]
fn prune_says_no_when_it_can() {
    let mut b = BatchBuilder::default();
    for port in [80u16, 81, 443] {
        b.push(&FlowRecord { proto: 6, dst_port: port, src_port: 1024, ..Default::default() });
    }
    let stats = BlockStats::of(&b.finish());
    let no = [
        "proto udp",
        "dst port 22",
        "dst port > 443",
        "src vlan 5",
        "ip 10.0.0.1",
        "not proto tcp",
    ];
    for t in no {
        assert!(!Filter::parse(t).unwrap().prune(&stats), "{t}");
    }
    let maybe =
        ["proto tcp", "port 80", "dst port > 442", "not dst port 80", "not src vlan 5", "as 0"];
    for t in maybe {
        assert!(Filter::parse(t).unwrap().prune(&stats), "{t}");
    }
}

#[test]
fn stats_without_zone_maps_never_prune_required_columns() {
    let stats = BlockStats::new(10);
    for t in ["proto tcp", "port 80", "bytes > 5", "icmp-type 3", "duration > 1", "flags S"] {
        assert!(Filter::parse(t).unwrap().prune(&stats), "{t}");
    }
    // Optional columns without a zone map hold no value: nothing can match.
    for t in ["vlan 1", "src ip 10.0.0.1", "flows 2"] {
        assert!(!Filter::parse(t).unwrap().prune(&stats), "{t}");
    }
    assert!(Filter::parse("as 0").unwrap().prune(&stats));
}
