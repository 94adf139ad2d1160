//! `-o json` (pretty objects in an array) and `-o ndjson` (one compact
//! object per line) records, with nfdump 1.7.8's keys and element order.
//!
//! nfdump prints one group of keys per extension the record carries; weir
//! decides which "extensions" a record has from the fields that are set.

use weir_record::FlowRecord;

use crate::format::MPLS_FIELDS;
use crate::text::*;

/// Writes keys and values in the pretty or compact style.
struct Obj<'a> {
    buf: &'a mut Vec<u8>,
    pretty: bool,
}

impl Obj<'_> {
    fn key(&mut self, k: &str) {
        if self.pretty {
            self.buf.extend_from_slice(b"  \"");
            self.buf.extend_from_slice(k.as_bytes());
            self.buf.extend_from_slice(b"\" : ");
        } else {
            self.buf.push(b'"');
            self.buf.extend_from_slice(k.as_bytes());
            self.buf.extend_from_slice(b"\":");
        }
    }

    fn end(&mut self) {
        self.buf.push(b',');
        if self.pretty {
            self.buf.push(b'\n');
        }
    }

    fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        push_u64(self.buf, v);
        self.end();
    }

    fn str_with(&mut self, k: &str, f: impl FnOnce(&mut Vec<u8>)) {
        self.key(k);
        self.buf.push(b'"');
        f(self.buf);
        self.buf.push(b'"');
        self.end();
    }

    fn str(&mut self, k: &str, s: &str) {
        self.str_with(k, |b| push_json_escaped(b, s));
    }
}

/// Escapes `"` and `\` and control characters (nfdump does not escape;
/// idents cannot contain these characters there).
fn push_json_escaped(buf: &mut Vec<u8>, s: &str) {
    for &c in s.as_bytes() {
        match c {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            c if c < 0x20 => {
                let _ = std::io::Write::write_fmt(buf, format_args!("\\u{c:04x}"));
            }
            c => buf.push(c),
        }
    }
}

fn v4_or_v6(a: Option<u128>) -> Option<bool> {
    a.map(is_v4)
}

/// One record as a JSON object: pretty (`json`, without the separator
/// before it) or compact (`ndjson`, with its newline).
pub(crate) fn render_json(
    buf: &mut Vec<u8>,
    r: &FlowRecord,
    cnt: u64,
    ident: &str,
    time: &mut TimeFmt,
    pretty: bool,
) {
    if pretty {
        buf.extend_from_slice(b" {\n");
    } else {
        buf.push(b'{');
    }
    let mut o = Obj { buf, pretty };
    o.num("cnt", cnt as u32 as u64);
    o.str("type", "FLOW");
    if !ident.is_empty() {
        o.str("ident", ident);
    }
    o.num("export_sysid", r.exporter_id.unwrap_or(0) as u64);
    // genericFlow
    o.str_with("first", |b| time.push_ms_sep(b, r.first, b'T'));
    o.str_with("last", |b| time.push_ms_sep(b, r.last, b'T'));
    o.str_with("received", |b| time.push_ms_sep(b, r.received, b'T'));
    o.num("in_packets", r.packets);
    o.num("in_bytes", r.bytes);
    o.num("proto", r.proto as u64);
    if r.proto == 1 || r.proto == 58 {
        o.num("icmp_type", (r.dst_port >> 8) as u64);
        o.num("icmp_code", (r.dst_port & 0xff) as u64);
    } else {
        o.str_with("tcp_flags", |b| push_flags(b, r.tcp_flags));
        o.num("src_port", r.src_port as u64);
        o.num("dst_port", r.dst_port as u64);
        o.num("fwd_status", r.fwd_status.unwrap_or(0) as u64);
    }
    o.num("src_tos", r.src_tos as u64);
    // ipv4Flow / ipv6Flow
    let fam = v4_or_v6(r.src_addr).or(v4_or_v6(r.dst_addr));
    if let Some(v4) = fam {
        let (sa, da, sg, dg) = if v4 {
            ("src4_addr", "dst4_addr", "src4_geo", "dst4_geo")
        } else {
            ("src6_addr", "dst6_addr", "src6_geo", "dst6_geo")
        };
        let zero: u128 = if v4 { 0xffff_0000_0000 } else { 0 };
        o.str_with(sa, |b| push_ip(b, r.src_addr.unwrap_or(zero)));
        o.str_with(da, |b| push_ip(b, r.dst_addr.unwrap_or(zero)));
        o.str(sg, "");
        o.str(dg, "");
    }
    // flowMisc
    if r.input_if.is_some()
        || r.output_if.is_some()
        || r.src_mask.is_some()
        || r.dst_mask.is_some()
        || r.direction.is_some()
        || r.dst_tos.is_some()
        || r.end_reason.is_some()
    {
        let (sm, dm) = (r.src_mask.unwrap_or(0), r.dst_mask.unwrap_or(0));
        o.num("input_snmp", r.input_if.unwrap_or(0) as u64);
        o.num("output_snmp", r.output_if.unwrap_or(0) as u64);
        o.num("src_mask", sm as u64);
        o.num("dst_mask", dm as u64);
        let net = |b: &mut Vec<u8>, a: Option<u128>, m: u8| {
            if (sm != 0 || dm != 0)
                && let Some(a) = a
            {
                push_ip(b, mask_addr(a, m));
            }
        };
        o.str_with("src_net", |b| net(b, r.src_addr, sm));
        o.str_with("dst_net", |b| net(b, r.dst_addr, dm));
        o.num("direction", r.direction.unwrap_or(0) as u64);
        o.num("dst_tos", r.dst_tos.unwrap_or(0) as u64);
    }
    // cntFlow
    if r.flows.is_some() || r.out_packets.is_some() || r.out_bytes.is_some() {
        o.num("out_packets", r.out_packets.unwrap_or(0));
        o.num("out_bytes", r.out_bytes.unwrap_or(0));
        o.num("aggr_flows", r.flows.unwrap_or(1));
    }
    if r.src_vlan.is_some() || r.dst_vlan.is_some() {
        o.num("src_vlan", r.src_vlan.unwrap_or(0) as u64);
        o.num("dst_vlan", r.dst_vlan.unwrap_or(0) as u64);
    }
    if r.src_as.is_some() || r.dst_as.is_some() {
        o.num("src_as", r.src_as.unwrap_or(0) as u64);
        o.num("dst_as", r.dst_as.unwrap_or(0) as u64);
    }
    if let Some(a) = r.bgp_next_hop {
        o.str_with(if is_v4(a) { "bgp4_next_hop" } else { "bgp6_next_hop" }, |b| push_ip(b, a));
    }
    if let Some(a) = r.next_hop {
        o.str_with(if is_v4(a) { "ip4_next_hop" } else { "ip6_next_hop" }, |b| push_ip(b, a));
    }
    if let Some(a) = r.exporter_addr {
        o.str_with(if is_v4(a) { "ip4_router" } else { "ip6_router" }, |b| push_ip(b, a));
    }
    if MPLS_FIELDS.iter().any(|f| r.get(*f).is_some()) {
        const KEYS: [&str; 10] = [
            "mpls_1", "mpls_2", "mpls_3", "mpls_4", "mpls_5", "mpls_6", "mpls_7", "mpls_8",
            "mpls_9", "mpls_10",
        ];
        for (i, f) in MPLS_FIELDS.iter().enumerate() {
            let v = r.get(*f).unwrap_or(0) as u32;
            o.str_with(KEYS[i], |b| {
                push_u64(b, (v >> 4) as u64);
                b.push(b'-');
                push_u64(b, ((v & 0xf) >> 1) as u64);
                b.push(b'-');
                push_u64(b, (v & 1) as u64);
            });
        }
    }
    if r.in_src_mac.is_some()
        || r.out_dst_mac.is_some()
        || r.in_dst_mac.is_some()
        || r.out_src_mac.is_some()
    {
        o.str_with("in_src_mac", |b| push_mac(b, r.in_src_mac.unwrap_or(0)));
        o.str_with("out_dst_mac", |b| push_mac(b, r.out_dst_mac.unwrap_or(0)));
        o.str_with("in_dst_mac", |b| push_mac(b, r.in_dst_mac.unwrap_or(0)));
        o.str_with("out_src_mac", |b| push_mac(b, r.out_src_mac.unwrap_or(0)));
    }
    if r.next_as.is_some() || r.prev_as.is_some() {
        o.num("next_as", r.next_as.unwrap_or(0) as u64);
        o.num("prev_as", r.prev_as.unwrap_or(0) as u64);
    }
    // nfdump keeps the observation domain only for IPFIX records.
    if let Some(d) = r.obs_domain.filter(|_| r.flow_version == Some(10)) {
        o.num("observationDomainID", d as u64);
        o.num("observationPointID", 0);
    }
    let sampled = r.sampling_rate.is_some_and(|s| s > 1);
    o.num("sampled", sampled as u64);
    // Close: drop the last separator.
    if pretty {
        buf.truncate(buf.len() - 2);
        buf.extend_from_slice(b"\n }");
    } else {
        buf.truncate(buf.len() - 1);
        buf.extend_from_slice(b"}\n");
    }
}
