//! Helpers shared by the integration tests: the record notation of
//! `tests/data/filter/cases.toml` and the proptest generators of random
//! records and filters.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;
use weir_filter::Filter;
use weir_record::{Field, FieldType, FlowRecord, ip_to_u128};

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/filter")
}

pub fn iso_ms(s: &str) -> u64 {
    // Accept through the filter's own time syntax so the notation is one.
    let f = Filter::parse(&format!("first seen {s}")).expect("time");
    match f.expr() {
        weir_filter::Expr::Predicate(weir_filter::Predicate::Compare { value, .. }) => {
            *value as u64
        }
        e => panic!("unexpected {e:?}"),
    }
}

pub fn mac(s: &str) -> u128 {
    s.split([':', '-']).fold(0u128, |v, b| v << 8 | u128::from_str_radix(b, 16).expect("mac"))
}

pub struct Rec {
    pub rec: FlowRecord,
    pub ident: String,
}

pub fn build(v: &toml::Value, named: &BTreeMap<String, Rec>, what: &str) -> Rec {
    if let Some(name) = v.as_str() {
        let r = named.get(name).unwrap_or_else(|| panic!("{what}: unknown record {name}"));
        return Rec { rec: r.rec.clone(), ident: r.ident.clone() };
    }
    let t = v.as_table().unwrap_or_else(|| panic!("{what}: record must be a table or a name"));
    let mut out = match t.get("base").and_then(|b| b.as_str()) {
        Some(b) => {
            let r = named.get(b).unwrap_or_else(|| panic!("{what}: unknown base {b}"));
            Rec { rec: r.rec.clone(), ident: r.ident.clone() }
        }
        None => Rec { rec: FlowRecord::default(), ident: "weir".to_string() },
    };
    for (k, val) in t {
        match k.as_str() {
            "base" => {}
            "ident" => out.ident = val.as_str().expect("ident string").to_string(),
            "clear" => {
                for f in val.as_array().expect("clear list") {
                    let f: Field = f.as_str().expect("field name").parse().expect("field");
                    out.rec.clear(f);
                }
            }
            name => {
                let f: Field = name.parse().unwrap_or_else(|e| panic!("{what}: {e}"));
                let value = match (val, f.info().ty) {
                    (toml::Value::Integer(i), _) => *i as u128,
                    (toml::Value::String(s), FieldType::Ip) => {
                        ip_to_u128(s.parse().unwrap_or_else(|_| panic!("{what}: bad ip {s}")))
                    }
                    (toml::Value::String(s), FieldType::Mac) => mac(s),
                    (toml::Value::String(s), FieldType::TimeMs) => u128::from(iso_ms(s)),
                    (other, _) => panic!("{what}: bad value for {name}: {other}"),
                };
                out.rec.set(f, value);
            }
        }
    }
    out
}

pub const ADDRS: [&str; 6] =
    ["10.0.0.1", "10.0.1.7", "192.168.1.5", "8.8.8.8", "2001:db8::1", "fe80::1"];

pub fn addr(i: usize) -> u128 {
    ip_to_u128(ADDRS[i % ADDRS.len()].parse().unwrap())
}

prop_compose! {
    pub fn record()(
        proto in prop::sample::select(vec![0u8, 1, 6, 17, 58]),
        ports in (0u16..5, 0u16..5),
        flags in 0u8..64,
        counts in (0u64..20, 0u64..3000),
        times in (0u64..5000, 0u64..20000),
        src in prop::option::of(0usize..6),
        dst in prop::option::of(0usize..6),
        opt in (
            prop::option::of(0u32..4),
            prop::option::of(0u32..4),
            prop::option::of(0u16..3),
            prop::option::of(0u8..30),
            prop::option::of(0u64..4),
            prop::option::of(0u32..(64 << 4)),
            prop::option::of(0u8..2),
            prop::option::of(0u8..3),
        ),
    ) -> FlowRecord {
        let port_values = [0u16, 53, 80, 443, 769];
        let (src_as, dst_as, vlan, tos, flows, mpls, dir, eng) = opt;
        FlowRecord {
            proto,
            src_port: port_values[ports.0 as usize],
            dst_port: port_values[ports.1 as usize],
            tcp_flags: flags,
            packets: counts.0,
            bytes: counts.1,
            first: 1_000_000 + times.0,
            last: 1_000_000 + times.0 + times.1,
            src_addr: src.map(addr),
            dst_addr: dst.map(addr),
            src_as,
            dst_as,
            src_vlan: vlan,
            dst_tos: tos,
            flows,
            mpls1: mpls,
            mpls2: mpls.map(|m| m | 1),
            direction: dir,
            engine_type: eng,
            ..Default::default()
        }
    }
}

pub const ATOMS: &[&str] = &[
    "any",
    "ipv4",
    "ipv6",
    "proto tcp",
    "proto udp",
    "proto icmp",
    "port 80",
    "src port 53",
    "dst port > 100",
    "port in [53 443]",
    "port < 80",
    "icmp-type 3",
    "icmp-code 1",
    "ip 10.0.0.1",
    "src ip 8.8.8.8",
    "dst ip 2001:db8::1",
    "net 10.0.0.0/16",
    "dst net 192.168.0.0/16",
    "ip in [8.8.8.8 fe80::/10]",
    "net 10.0.0.0 255.255.0.0",
    "flags S",
    "flags =SA",
    "flags > 10",
    "packets > 10",
    "bytes < 1000",
    "bytes 0",
    "duration > 10000",
    "duration 0",
    "pps > 2",
    "bps < 500",
    "bpp > 100",
    "as 0",
    "src as 2",
    "dst as > 1",
    "as in [1 3]",
    "vlan 1",
    "src vlan 0",
    "dst tos > 10",
    "flows 2",
    "flows > 1",
    "mpls label1 3",
    "mpls label2 < 10",
    "mpls exp1 2",
    "mpls eos 5",
    "mpls any 7",
    "flowdir egress",
    "engine-type 1",
    "first seen > 1970-01-01T00:00:02",
    "last seen < 1970-01-01T00:00:10",
    "ident weir",
];

pub fn filter_text() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(ATOMS).prop_map(str::to_string);
    leaf.prop_recursive(4, 16, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|a| format!("not {a}")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) or ({b})")),
        ]
    })
}
