//! `-o raw`: nfdump's multi-line `Flow Record:` blocks.
//!
//! nfdump prints one group of lines per extension of the stored record;
//! weir derives the extension set (and the nfdump record size) from the
//! fields that are set.

use std::io::Write as _;

use weir_record::FlowRecord;

use crate::format::MPLS_FIELDS;
use crate::text::*;

/// nfdump extension ids and sizes (element header included) a record
/// would carry.
fn extensions(r: &FlowRecord) -> (Vec<u8>, u64) {
    let mut ids = vec![1u8];
    let mut size = 12 + 52;
    let v4 = r.src_addr.or(r.dst_addr).map(is_v4);
    match v4 {
        Some(true) => {
            ids.push(2);
            size += 12;
        }
        Some(false) => {
            ids.push(3);
            size += 36;
        }
        None => {}
    }
    let mut add = |present: bool, id: u8, sz: u64| {
        if present {
            ids.push(id);
            size += sz;
        }
    };
    add(
        r.input_if.is_some()
            || r.output_if.is_some()
            || r.src_mask.is_some()
            || r.dst_mask.is_some()
            || r.direction.is_some()
            || r.dst_tos.is_some()
            || r.end_reason.is_some(),
        4,
        20,
    );
    add(r.flows.is_some() || r.out_packets.is_some() || r.out_bytes.is_some(), 5, 28);
    add(r.src_vlan.is_some() || r.dst_vlan.is_some(), 6, 12);
    add(r.src_as.is_some() || r.dst_as.is_some(), 7, 12);
    add(r.bgp_next_hop.is_some_and(is_v4), 8, 8);
    add(r.bgp_next_hop.is_some_and(|a| !is_v4(a)), 9, 20);
    add(r.next_hop.is_some_and(is_v4), 10, 8);
    add(r.next_hop.is_some_and(|a| !is_v4(a)), 11, 20);
    add(r.exporter_addr.is_some_and(is_v4), 12, 8);
    add(r.exporter_addr.is_some_and(|a| !is_v4(a)), 13, 20);
    add(MPLS_FIELDS.iter().any(|f| r.get(*f).is_some()), 14, 44);
    add(
        r.in_src_mac.is_some()
            || r.out_dst_mac.is_some()
            || r.in_dst_mac.is_some()
            || r.out_src_mac.is_some(),
        15,
        36,
    );
    add(r.next_as.is_some() || r.prev_as.is_some(), 16, 12);
    // nfdump keeps the observation domain only for IPFIX records.
    add(r.obs_domain.is_some() && r.flow_version == Some(10), 33, 20);
    (ids, size)
}

/// `  key          =` then the value right-aligned so that the value ends
/// in column `19 + 3 + 2 + key` as nfdump's `%Nu` fields do.
fn line_num(buf: &mut Vec<u8>, key: &str, v: u64, width: usize) {
    buf.extend_from_slice(key.as_bytes());
    push_u64_right(buf, v, width);
}

fn push_time(buf: &mut Vec<u8>, time: &mut TimeFmt, ms: u64, zero: &[u8]) {
    push_u64_right(buf, ms, 13);
    buf.extend_from_slice(b" [");
    if ms / 1000 == 0 {
        buf.extend_from_slice(zero);
    } else {
        time.push_secs(buf, (ms / 1000) as i64, b' ', false);
    }
    buf.push(b'.');
    push_3(buf, (ms % 1000) as u32);
    buf.extend_from_slice(b"]\n");
}

fn addr_line(buf: &mut Vec<u8>, key: &str, a: u128) {
    buf.extend_from_slice(key.as_bytes());
    let start = buf.len();
    push_ip(buf, a);
    right_align_from(buf, start, 16);
    buf.push(b'\n');
}

/// One `Flow Record:` block.
pub(crate) fn render_raw(
    buf: &mut Vec<u8>,
    r: &FlowRecord,
    cnt: u64,
    ident: &str,
    time: &mut TimeFmt,
) {
    let (ids, size) = extensions(r);
    let sampled = r.sampling_rate.is_some_and(|s| s > 1);
    buf.extend_from_slice(b"\nFlow Record: \n");
    line_num(buf, "  RecordCount  =              ", cnt, 5);
    buf.push(b'\n');
    if !ident.is_empty() {
        buf.extend_from_slice(b"  Ident        =       ");
        push_right(buf, ident.as_bytes(), 12);
        buf.push(b'\n');
    }
    buf.extend_from_slice(b"  Flags        =               0x");
    let flags: u8 = if sampled { 2 } else { 0 };
    buf.push(b'0');
    buf.push(b'0' + flags);
    buf.push(b' ');
    let v = r.flow_version.unwrap_or(0);
    if v == 0 {
        buf.extend_from_slice(b"FLOW");
    } else {
        buf.extend_from_slice(if v & 0x80 != 0 {
            b"SFLOW"
        } else if v & 0x40 != 0 {
            b"PCAP"
        } else {
            b"NETFLOW"
        });
        buf.extend_from_slice(b" v");
        push_u64(buf, (v & 0x0f) as u64);
    }
    buf.extend_from_slice(if sampled { b", Sampled\n" } else { b", Unsampled\n" });
    line_num(buf, "  Elements     =              ", ids.len() as u64, 5);
    buf.extend_from_slice(b": ");
    for id in &ids {
        push_u64(buf, *id as u64);
        buf.push(b' ');
    }
    buf.push(b'\n');
    line_num(buf, "  size         =              ", size, 5);
    buf.push(b'\n');
    line_num(buf, "  engine type  =              ", r.engine_type.unwrap_or(0) as u64, 5);
    buf.push(b'\n');
    line_num(buf, "  engine ID    =              ", r.engine_id.unwrap_or(0) as u64, 5);
    buf.push(b'\n');
    line_num(buf, "  export sysid =              ", r.exporter_id.unwrap_or(0) as u64, 5);
    buf.push(b'\n');

    // genericFlow
    buf.extend_from_slice(b"  first        =      ");
    push_time(buf, time, r.first, b"0000-00-00 00:00:00");
    buf.extend_from_slice(b"  last         =      ");
    push_time(buf, time, r.last, b"0000-00-00 00:00:00");
    buf.extend_from_slice(b"  received at  =      ");
    if r.received == 0 {
        push_u64_right(buf, 0, 13);
        buf.extend_from_slice(b" [0.000]\n");
    } else {
        push_time(buf, time, r.received, b"0");
    }
    line_num(buf, "  proto        =                ", r.proto as u64, 3);
    buf.push(b' ');
    push_proto(buf, r.proto, false);
    buf.push(b'\n');
    let fl = if r.proto == 6 { r.tcp_flags } else { 0 };
    buf.extend_from_slice(b"  tcp flags    =               0x");
    let _ = write!(buf, "{fl:02x} ");
    push_flags(buf, fl);
    buf.push(b'\n');
    if r.proto == 1 || r.proto == 58 {
        buf.extend_from_slice(b"  ICMP         =               ");
        push_u64_right(buf, (r.dst_port >> 8) as u64, 2);
        buf.push(b'.');
        push_u64_left(buf, (r.dst_port & 0xff) as u64, 2);
        buf.extend_from_slice(b" type.code\n");
    } else {
        line_num(buf, "  src port     =              ", r.src_port as u64, 5);
        buf.push(b'\n');
        line_num(buf, "  dst port     =              ", r.dst_port as u64, 5);
        buf.push(b'\n');
        line_num(buf, "  src tos      =                ", r.src_tos as u64, 3);
        buf.push(b'\n');
        line_num(buf, "  fwd status   =                ", r.fwd_status.unwrap_or(0) as u64, 3);
        buf.push(b'\n');
    }
    line_num(buf, "  in packets   =         ", r.packets, 10);
    buf.push(b'\n');
    line_num(buf, "  in bytes     =         ", r.bytes, 10);
    buf.push(b'\n');

    for id in &ids[1..] {
        match id {
            2 | 3 => {
                let zero: u128 = if *id == 2 { 0xffff_0000_0000 } else { 0 };
                addr_line(buf, "  src addr     =   ", r.src_addr.unwrap_or(zero));
                addr_line(buf, "  dst addr     =   ", r.dst_addr.unwrap_or(zero));
            }
            4 => {
                line_num(buf, "  input        =       ", r.input_if.unwrap_or(0) as u64, 12);
                buf.push(b'\n');
                line_num(buf, "  output       =       ", r.output_if.unwrap_or(0) as u64, 12);
                buf.push(b'\n');
                for (key, a, m) in [
                    ("  src mask     =              ", r.src_addr, r.src_mask.unwrap_or(0)),
                    ("  dst mask     =              ", r.dst_addr, r.dst_mask.unwrap_or(0)),
                ] {
                    line_num(buf, key, m as u64, 5);
                    buf.push(b' ');
                    if m != 0
                        && let Some(a) = a
                    {
                        push_ip(buf, mask_addr(a, m));
                    }
                    buf.push(b'/');
                    push_u64(buf, m as u64);
                    buf.push(b'\n');
                }
                line_num(buf, "  dst tos      =                ", r.dst_tos.unwrap_or(0) as u64, 3);
                buf.push(b'\n');
                line_num(
                    buf,
                    "  direction    =                ",
                    r.direction.unwrap_or(0) as u64,
                    3,
                );
                buf.push(b'\n');
                buf.extend_from_slice(b"  biFlow Dir   =               0x00 \n");
                let er = r.end_reason.unwrap_or(0);
                buf.extend_from_slice(b"  end reason   =               0x");
                let _ = write!(buf, "{er:02x} ");
                buf.extend_from_slice(match er {
                    0 => b"" as &[u8],
                    1 => b"idle timeout",
                    2 => b"active timeout",
                    3 => b"end of Flow detected",
                    4 => b"forced end",
                    5 => b"lack of resources",
                    _ => b"undef",
                });
                buf.push(b'\n');
            }
            5 => {
                line_num(buf, "  out packets  =         ", r.out_packets.unwrap_or(0), 10);
                buf.push(b'\n');
                line_num(buf, "  out bytes    =         ", r.out_bytes.unwrap_or(0), 10);
                buf.push(b'\n');
                line_num(buf, "  aggr flows   =         ", r.flows.unwrap_or(1), 10);
                buf.push(b'\n');
            }
            6 => {
                line_num(buf, "  src vlan     =         ", r.src_vlan.unwrap_or(0) as u64, 10);
                buf.push(b'\n');
                line_num(buf, "  dst vlan     =         ", r.dst_vlan.unwrap_or(0) as u64, 10);
                buf.push(b'\n');
            }
            7 => {
                line_num(buf, "  src as       =             ", r.src_as.unwrap_or(0) as u64, 6);
                buf.push(b'\n');
                line_num(buf, "  dst as       =             ", r.dst_as.unwrap_or(0) as u64, 6);
                buf.push(b'\n');
            }
            8 | 9 => addr_line(buf, "  bgp next hop =   ", r.bgp_next_hop.unwrap_or(0)),
            10 | 11 => addr_line(buf, "  ip next hop  =   ", r.next_hop.unwrap_or(0)),
            12 | 13 => addr_line(buf, "  ip exporter  =   ", r.exporter_addr.unwrap_or(0)),
            14 => {
                for (i, f) in MPLS_FIELDS.iter().enumerate() {
                    let v = r.get(*f).unwrap_or(0) as u32;
                    if v != 0 {
                        buf.extend_from_slice(b"  MPLS Lbl ");
                        push_u64_right(buf, i as u64 + 1, 2);
                        buf.extend_from_slice(b"  =       ");
                        push_mpls(buf, v);
                        buf.push(b'\n');
                    }
                }
            }
            15 => {
                for (key, m) in [
                    ("  in src mac   =  ", r.in_src_mac),
                    ("  out dst mac  =  ", r.out_dst_mac),
                    ("  in dst mac   =  ", r.in_dst_mac),
                    ("  out src mac  =  ", r.out_src_mac),
                ] {
                    buf.extend_from_slice(key.as_bytes());
                    push_mac(buf, m.unwrap_or(0));
                    buf.push(b'\n');
                }
            }
            16 => {
                line_num(buf, "  bgp next as  =              ", r.next_as.unwrap_or(0) as u64, 5);
                buf.push(b'\n');
                line_num(buf, "  bgp prev as  =              ", r.prev_as.unwrap_or(0) as u64, 5);
                buf.push(b'\n');
            }
            33 => {
                let d = r.obs_domain.unwrap_or(0);
                let _ = write!(
                    buf,
                    "  obs domainID =            0x{d:05x}\n  obs pointID  =       0x{:010x}\n",
                    0
                );
            }
            _ => {}
        }
    }
}
