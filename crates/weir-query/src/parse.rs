//! nfdump's `-A`, `-s` and `-O` arguments.

use weir_record::Field;
use weir_record::Field as F;

use crate::error::QueryError;
use crate::model::{AggKey, Direction, Order, OrderKey, StatElement, StatSpec};

const fn el(name: &'static str, header: &'static str, fields: &'static [Field]) -> StatElement {
    StatElement { name, header, fields }
}

/// The `-s` elements weir can compute, with nfdump 1.7.1's header texts
/// (`record` is not an element: it is handled by [`parse_stat_spec`]).
/// Quirks kept from nfdump: `srctos` and `tos` both print `Tos`; `inmac`
/// prints `In Src Mac` and counts only the incoming source MAC; `outmac`
/// prints `Out Src Mac`.
pub static STAT_ELEMENTS: &[StatElement] = &[
    el("srcip", "Src IP Addr", &[F::SrcAddr]),
    el("dstip", "Dst IP Addr", &[F::DstAddr]),
    el("ip", "IP Addr", &[F::SrcAddr, F::DstAddr]),
    el("nhip", "Nexthop IP", &[F::NextHop]),
    el("nhbip", "Nexthop BGP IP", &[F::BgpNextHop]),
    el("router", "Router IP", &[F::ExporterAddr]),
    el("srcport", "Src Port", &[F::SrcPort]),
    el("dstport", "Dst Port", &[F::DstPort]),
    el("port", "Port", &[F::SrcPort, F::DstPort]),
    el("proto", "Protocol", &[F::Proto]),
    el("flags", "Flags", &[F::TcpFlags]),
    el("tos", "Tos", &[F::SrcTos]),
    el("srctos", "Tos", &[F::SrcTos]),
    el("dsttos", "Dst Tos", &[F::DstTos]),
    el("dir", "Dir", &[F::Direction]),
    el("srcas", "Src AS", &[F::SrcAs]),
    el("dstas", "Dst AS", &[F::DstAs]),
    el("as", "AS", &[F::SrcAs, F::DstAs]),
    el("prevas", "Prev AS", &[F::PrevAs]),
    el("nextas", "Next AS", &[F::NextAs]),
    el("inif", "Input If", &[F::InputIf]),
    el("outif", "Output If", &[F::OutputIf]),
    el("if", "In/Out If", &[F::InputIf, F::OutputIf]),
    el("srcmask", "Src Mask", &[F::SrcMask]),
    el("dstmask", "Dst Mask", &[F::DstMask]),
    el("mask", "Mask", &[F::SrcMask, F::DstMask]),
    el("srcvlan", "Src Vlan", &[F::SrcVlan]),
    el("dstvlan", "Dst Vlan", &[F::DstVlan]),
    el("vlan", "Vlan", &[F::SrcVlan, F::DstVlan]),
    el("insrcmac", "In Src Mac", &[F::InSrcMac]),
    el("outdstmac", "Out Dst Mac", &[F::OutDstMac]),
    el("indstmac", "In Dst Mac", &[F::InDstMac]),
    el("outsrcmac", "Out Src Mac", &[F::OutSrcMac]),
    el("srcmac", "Src Mac", &[F::InSrcMac, F::OutSrcMac]),
    el("dstmac", "Dst Mac", &[F::OutDstMac, F::InDstMac]),
    el("inmac", "In Src Mac", &[F::InSrcMac]),
    el("outmac", "Out Src Mac", &[F::OutSrcMac, F::OutDstMac]),
    el("mac", "Mac Addr", &[F::InSrcMac, F::OutDstMac, F::InDstMac, F::OutSrcMac]),
    el("mpls1", " MPLS lab 1", &[F::Mpls1]),
    el("mpls2", " MPLS lab 2", &[F::Mpls2]),
    el("mpls3", " MPLS lab 3", &[F::Mpls3]),
    el("mpls4", " MPLS lab 4", &[F::Mpls4]),
    el("mpls5", " MPLS lab 5", &[F::Mpls5]),
    el("mpls6", " MPLS lab 6", &[F::Mpls6]),
    el("mpls7", " MPLS lab 7", &[F::Mpls7]),
    el("mpls8", " MPLS lab 8", &[F::Mpls8]),
    el("mpls9", " MPLS lab 9", &[F::Mpls9]),
    el("mpls10", "MPLS lab 10", &[F::Mpls10]),
    el("odid", "obs domainID", &[F::ObsDomain]),
];

/// nfdump `-s` elements for data weir does not store.
const STAT_UNSUPPORTED: &[&str] = &[
    "srcgeo",
    "dstgeo",
    "geo",
    "srcasn",
    "dstasn",
    "asn",
    "tunproto",
    "ethertype",
    "cl",
    "sl",
    "al",
    "nbar",
    "ja3",
    "ja4",
    "ja4s",
    "opid",
    "event",
    "xevent",
    "nevent",
    "nat",
    "natsrcip",
    "natdstip",
    "natip",
    "natsrcport",
    "natdstport",
    "natport",
    "xsrcip",
    "xdstip",
    "xsrcport",
    "xdstport",
    "nsrcip",
    "ndstip",
    "nsrcport",
    "ndstport",
    "iacl",
    "eacl",
    "iace",
    "ixace",
    "eace",
    "exace",
    "ivrf",
    "evrf",
    "vrf",
    "ivrfnam",
    "evrfnam",
    "inam",
    "onam",
    "sysid",
    "minttl",
    "maxttl",
];

/// The `-s` element called `name` (case-insensitive).
pub fn stat_element(name: &str) -> Option<StatElement> {
    STAT_ELEMENTS.iter().find(|e| e.name.eq_ignore_ascii_case(name)).copied()
}

fn element_names() -> String {
    let mut v: Vec<&str> = vec!["record"];
    v.extend(STAT_ELEMENTS.iter().map(|e| e.name));
    v.join(" ")
}

/// The `-A` names of stored columns, in nfdump's order. A column with two
/// names is printed back with the first (`srctos`, not `tos`).
const AGG_FIELDS: &[(&str, Field)] = &[
    ("proto", F::Proto),
    ("srcport", F::SrcPort),
    ("dstport", F::DstPort),
    ("srctos", F::SrcTos),
    ("tos", F::SrcTos),
    ("dsttos", F::DstTos),
    ("flags", F::TcpFlags),
    ("srcip", F::SrcAddr),
    ("dstip", F::DstAddr),
    ("next", F::NextHop),
    ("bgpnext", F::BgpNextHop),
    ("router", F::ExporterAddr),
    ("srcas", F::SrcAs),
    ("dstas", F::DstAs),
    ("nextas", F::NextAs),
    ("prevas", F::PrevAs),
    ("inif", F::InputIf),
    ("outif", F::OutputIf),
    ("srcmask", F::SrcMask),
    ("dstmask", F::DstMask),
    ("srcvlan", F::SrcVlan),
    ("dstvlan", F::DstVlan),
    ("insrcmac", F::InSrcMac),
    ("outdstmac", F::OutDstMac),
    ("indstmac", F::InDstMac),
    ("outsrcmac", F::OutSrcMac),
    ("mpls1", F::Mpls1),
    ("mpls2", F::Mpls2),
    ("mpls3", F::Mpls3),
    ("mpls4", F::Mpls4),
    ("mpls5", F::Mpls5),
    ("mpls6", F::Mpls6),
    ("mpls7", F::Mpls7),
    ("mpls8", F::Mpls8),
    ("mpls9", F::Mpls9),
    ("mpls10", F::Mpls10),
    ("odid", F::ObsDomain),
    ("exp", F::ExporterId),
    ("dir", F::Direction),
    ("engine", F::EngineId),
];

/// The `-A` keys weir understands, for messages and help: the column
/// names plus the prefix and network keys (prefix keys take `/N`).
pub fn agg_key_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = AGG_FIELDS.iter().map(|(n, _)| *n).collect();
    v.extend(["srcip4/N", "dstip4/N", "srcip6/N", "dstip6/N", "srcnet", "dstnet"]);
    v
}

/// nfdump `-A` keys for data weir does not store.
const AGG_UNSUPPORTED: &[&str] = &[
    "xsrcip",
    "xdstip",
    "xsrcport",
    "xdstport",
    "srcasn",
    "dstasn",
    "opid",
    "srcgeo",
    "dstgeo",
    "ethertype",
    "minttl",
    "maxttl",
];

fn agg_field(name: &str) -> Option<Field> {
    AGG_FIELDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Parses an `-A` list such as `srcip4/24,dstport`. An empty list or
/// duplicate keys are errors.
pub fn parse_agg_keys(text: &str) -> Result<Vec<AggKey>, QueryError> {
    let mut keys = Vec::new();
    for raw in text.split(',') {
        let name = raw.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(QueryError::Unknown(format!("-A {text}: empty aggregation key")));
        }
        let key = parse_agg_key(&name)?;
        if keys.contains(&key) {
            return Err(QueryError::Unknown(format!("-A {text}: key '{name}' given twice")));
        }
        keys.push(key);
    }
    Ok(keys)
}

fn parse_agg_key(name: &str) -> Result<AggKey, QueryError> {
    if let Some(f) = agg_field(name) {
        return Ok(AggKey::Field(f));
    }
    match name {
        "srcnet" => return Ok(AggKey::SrcNet),
        "dstnet" => return Ok(AggKey::DstNet),
        _ => {}
    }
    for (prefix, field, ipv6) in [
        ("srcip4", F::SrcAddr, false),
        ("dstip4", F::DstAddr, false),
        ("srcip6", F::SrcAddr, true),
        ("dstip6", F::DstAddr, true),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let max = if ipv6 { 128 } else { 32 };
            let bits = match rest.strip_prefix('/') {
                None if rest.is_empty() => max,
                Some(n) => n.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| {
                    QueryError::Unknown(format!(
                        "aggregation key '{name}': prefix length must be 0..{max}"
                    ))
                })?,
                None => break,
            };
            return Ok(AggKey::Prefix { field, ipv6, bits });
        }
    }
    if AGG_UNSUPPORTED.contains(&name) {
        return Err(QueryError::NotSupported(format!("aggregation key '{name}'")));
    }
    Err(QueryError::Unknown(format!(
        "unknown aggregation key '{name}'; valid keys: {}",
        agg_key_names().join(" ")
    )))
}

/// The `-A` name of a key (`srcip4/24`, `dstport`).
pub fn agg_key_name(key: &AggKey) -> String {
    match key {
        AggKey::Field(f) => AGG_FIELDS
            .iter()
            .find(|(_, g)| g == f)
            .map_or_else(|| f.name().to_string(), |(n, _)| n.to_string()),
        AggKey::Prefix { field, ipv6, bits } => format!(
            "{}ip{}/{bits}",
            if *field == F::SrcAddr { "src" } else { "dst" },
            if *ipv6 { 6 } else { 4 }
        ),
        AggKey::SrcNet => "srcnet".into(),
        AggKey::DstNet => "dstnet".into(),
    }
}

const ORDER_NAMES: &str = "flows packets bytes pps bps bpp tstart tend duration";
const ORDER_UNSUPPORTED: &[&str] = &[
    "ipkg", "opkg", "ibyte", "obyte", "ipps", "opps", "ibps", "obps", "ibpp", "obpp", "ipackets",
    "opackets", "ibytes", "obytes",
];

fn order_key(name: &str, for_stats: bool) -> Result<OrderKey, QueryError> {
    let k = match name {
        "flows" => OrderKey::Flows,
        "packets" => OrderKey::Packets,
        "bytes" => OrderKey::Bytes,
        "pps" => OrderKey::Pps,
        "bps" => OrderKey::Bps,
        "bpp" => OrderKey::Bpp,
        "tstart" if !for_stats => OrderKey::Tstart,
        "tend" if !for_stats => OrderKey::Tend,
        "duration" if !for_stats => OrderKey::Duration,
        _ => {
            if ORDER_UNSUPPORTED.contains(&name) {
                return Err(QueryError::NotSupported(format!(
                    "order '{name}' (weir orders by in+out sums)"
                )));
            }
            let valid = if for_stats { "flows packets bytes pps bps bpp" } else { ORDER_NAMES };
            return Err(QueryError::Unknown(format!(
                "unknown order '{name}'; valid orders: {valid}"
            )));
        }
    };
    Ok(k)
}

fn parse_order_inner(text: &str, for_stats: bool) -> Result<Order, QueryError> {
    let t = text.trim().to_ascii_lowercase();
    let (name, dir) = match t.split_once(':') {
        Some((n, "a")) => (n, Some(Direction::Ascending)),
        Some((n, "d")) => (n, Some(Direction::Descending)),
        Some((_, d)) => {
            return Err(QueryError::Unknown(format!(
                "order '{text}': unknown direction '{d}' (a = ascending, d = descending)"
            )));
        }
        None => (t.as_str(), None),
    };
    let key = order_key(name, for_stats)?;
    Ok(Order { key, direction: dir.unwrap_or_else(|| key.default_direction()) })
}

/// Parses an `-O` order such as `bytes`, `tstart` or `bytes:a`.
pub fn parse_order(text: &str) -> Result<Order, QueryError> {
    parse_order_inner(text, false)
}

/// Parses an `-s` request: `ELEMENT[:p][/ORDER[:a|:d]]…`, e.g.
/// `srcip:p/bytes/flows:a`, or `record/bytes`. Without an order the table is
/// ordered by flows. `proto` implies `:p`.
pub fn parse_stat_spec(text: &str) -> Result<StatSpec, QueryError> {
    let t = text.trim().to_ascii_lowercase();
    let mut parts = t.split('/');
    let head = parts.next().unwrap_or("");
    let (name, per_proto) = match head.split_once(':') {
        Some((n, "p")) => (n, true),
        Some((_, x)) => {
            return Err(QueryError::Unknown(format!(
                "-s {text}: unknown option ':{x}' (only ':p' splits by protocol)"
            )));
        }
        None => (head, false),
    };
    let element = if name == "record" {
        None
    } else if let Some(e) = stat_element(name) {
        Some(e)
    } else if STAT_UNSUPPORTED.contains(&name) {
        return Err(QueryError::NotSupported(format!("statistic '{name}'")));
    } else {
        return Err(QueryError::Unknown(format!(
            "unknown statistic '{name}'; valid: {}",
            element_names()
        )));
    };
    let per_proto = per_proto || name == "proto";
    let mut orders = Vec::new();
    for o in parts {
        let order = parse_order_inner(o, element.is_some())?;
        if !orders.contains(&order) {
            orders.push(order);
        }
    }
    if orders.is_empty() {
        orders.push(Order { key: OrderKey::Flows, direction: Direction::Descending });
    }
    Ok(StatSpec { element, per_proto, orders })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agg_keys() {
        let k = parse_agg_keys("srcip4/24,dstport").unwrap();
        assert_eq!(
            k,
            vec![
                AggKey::Prefix { field: F::SrcAddr, ipv6: false, bits: 24 },
                AggKey::Field(F::DstPort)
            ]
        );
        assert_eq!(
            parse_agg_keys("srcnet,dstip6/64").unwrap()[1],
            AggKey::Prefix { field: F::DstAddr, ipv6: true, bits: 64 }
        );
        let e = parse_agg_keys("srcip,bogus").unwrap_err().to_string();
        assert!(e.contains("bogus") && e.contains("srcip4/N"), "{e}");
        assert!(matches!(parse_agg_keys("xsrcip"), Err(QueryError::NotSupported(_))));
        assert!(parse_agg_keys("srcip4/33").is_err());
        assert!(parse_agg_keys("proto,proto").is_err());
        for k in parse_agg_keys("proto,srcip4/24,mpls3,odid,srcnet").unwrap() {
            assert_eq!(parse_agg_keys(&agg_key_name(&k)).unwrap(), vec![k]);
        }
    }

    #[test]
    fn stat_specs() {
        let s = parse_stat_spec("srcip:p/bytes/flows:a").unwrap();
        assert_eq!(s.element.unwrap().header, "Src IP Addr");
        assert!(s.per_proto);
        assert_eq!(
            s.orders,
            vec![
                Order { key: OrderKey::Bytes, direction: Direction::Descending },
                Order { key: OrderKey::Flows, direction: Direction::Ascending },
            ]
        );
        let p = parse_stat_spec("proto").unwrap();
        assert!(p.per_proto);
        assert_eq!(p.orders[0].key, OrderKey::Flows);
        let r = parse_stat_spec("record/bytes").unwrap();
        assert!(r.element.is_none());
        assert!(matches!(parse_stat_spec("ja3"), Err(QueryError::NotSupported(_))));
        let e = parse_stat_spec("nonsense").unwrap_err().to_string();
        assert!(e.contains("srcip") && e.contains("mpls10"), "{e}");
        assert!(parse_stat_spec("srcip/tstart").is_err());
        assert_eq!(parse_stat_spec("ip").unwrap().element.unwrap().fields.len(), 2);
    }

    #[test]
    fn orders() {
        assert_eq!(parse_order("tstart").unwrap().direction, Direction::Ascending);
        assert_eq!(
            parse_order("bytes:a").unwrap(),
            Order { key: OrderKey::Bytes, direction: Direction::Ascending }
        );
        assert!(parse_order("bytes:x").is_err());
        assert!(parse_order("foo").unwrap_err().to_string().contains("duration"));
    }
}
