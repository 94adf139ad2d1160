//! One record as a fmt line or a csv row.

use weir_record::FlowRecord;

use crate::format::{Item, MPLS_FIELDS, Token};
use crate::text::*;

/// What a row needs besides the record.
pub(crate) struct RowCtx<'a> {
    /// `-N`.
    pub plain: bool,
    /// Full IPv6 (`-6`, `…6` formats).
    pub full_v6: bool,
    /// Time formatting (zone, cache).
    pub time: &'a mut TimeFmt,
    /// Ident of the file the record came from ("" if unknown).
    pub ident: &'a str,
    /// 1-based record counter (`%cnt`).
    pub cnt: u64,
}

/// nfdump's duration of a record: `last - first` when both are set and in
/// order, else 0.
#[inline]
pub(crate) fn duration_ms(r: &FlowRecord) -> u64 {
    if r.first != 0 && r.last != 0 && r.last >= r.first { r.last - r.first } else { 0 }
}

#[inline]
fn is_icmp(r: &FlowRecord) -> bool {
    r.proto == 1 || r.proto == 58
}

/// nfdump's `ICMP_Port_decode`: `type.code` for ICMP/ICMPv6, else the port.
#[inline]
pub(crate) fn push_dst_port(buf: &mut Vec<u8>, r: &FlowRecord) {
    if is_icmp(r) {
        push_u64(buf, (r.dst_port >> 8) as u64);
        buf.push(b'.');
        push_u64(buf, (r.dst_port & 0xff) as u64);
    } else {
        push_u64(buf, r.dst_port as u64);
    }
}

fn mpls(r: &FlowRecord, i: usize) -> u32 {
    r.get(MPLS_FIELDS[i]).unwrap_or(0) as u32
}

/// nfdump's netflow version text (`%nfv`): `Nv9`, `Sv5`, `Pv…`, `FLO`.
pub(crate) fn push_version(buf: &mut Vec<u8>, v: Option<u8>) {
    let v = v.unwrap_or(0);
    if v == 0 {
        buf.extend_from_slice(b"FLO");
        return;
    }
    let t: &[u8] = if v & 0x80 != 0 {
        b"Sv"
    } else if v & 0x40 != 0 {
        b"Pv"
    } else {
        b"Nv"
    };
    buf.extend_from_slice(t);
    push_u64(buf, (v & 0x0f) as u64);
}

/// Address `addr` right-aligned, then `:` (IPv4) or `.` (IPv6) and the port.
fn push_addr_port(buf: &mut Vec<u8>, addr: Option<u128>, full: bool) {
    push_ip_col(buf, addr, full);
    buf.push(match addr {
        Some(a) if !is_v4(a) => b'.',
        _ => b':',
    });
}

fn push_net(buf: &mut Vec<u8>, addr: Option<u128>, mask: Option<u8>, full: bool, csv: bool) {
    let bits = mask.unwrap_or(0);
    let net = addr.map(|a| mask_addr(a, bits));
    if csv {
        match net {
            Some(a) => push_ip(buf, a),
            None => buf.extend_from_slice(b"0.0.0.0"),
        }
        buf.push(b'/');
        push_u64(buf, bits as u64);
    } else {
        push_ip_col(buf, net, full);
        buf.push(b'/');
        push_u64_left(buf, bits as u64, 2);
    }
}

#[inline]
fn rate(v: u64, dur_ms: u64) -> u64 {
    v.wrapping_mul(1000).checked_div(dur_ms).unwrap_or(0)
}

/// One fmt line (without the newline).
pub(crate) fn render_fmt(buf: &mut Vec<u8>, items: &[Item], r: &FlowRecord, c: &mut RowCtx<'_>) {
    let dur = duration_ms(r);
    buf.reserve(256);
    for item in items {
        let t = match item {
            Item::Lit(s) => {
                match s.as_bytes() {
                    [b] => buf.push(*b),
                    s => buf.extend_from_slice(s),
                }
                continue;
            }
            Item::Tok(t) => *t,
        };
        match t {
            Token::Nfv => push_version(buf, r.flow_version),
            Token::Cnt => push_u64_right(buf, c.cnt, 5),
            Token::Idt => {
                let id = if c.ident.is_empty() { "<no ident>" } else { c.ident };
                push_left(buf, id.as_bytes(), 12)
            }
            Token::Eng => {
                push_u64_right(buf, r.engine_type.unwrap_or(0) as u64, 3);
                buf.push(b'/');
                push_u64_left(buf, r.engine_id.unwrap_or(0) as u64, 3);
            }
            Token::Exp => push_u64_right(buf, r.exporter_id.unwrap_or(0) as u64, 6),
            Token::Ts => c.time.push_ms(buf, r.first, false),
            Token::Te => c.time.push_ms(buf, r.last, false),
            Token::Tr => c.time.push_ms(buf, r.received, false),
            Token::Tsg => c.time.push_ms(buf, r.first, true),
            Token::Teg => c.time.push_ms(buf, r.last, true),
            Token::Trg => c.time.push_ms(buf, r.received, true),
            Token::Tsr => push_raw_time(buf, r.first, 10),
            Token::Ter => push_raw_time(buf, r.last, 10),
            Token::Trr => push_raw_time(buf, r.received, 10),
            Token::Td => {
                if c.plain {
                    push_secs(buf, dur, 16)
                } else {
                    push_duration(buf, dur)
                }
            }
            Token::Tds => push_secs(buf, dur, 16),
            Token::Pkt | Token::Ipkt => push_number_col(buf, r.packets, c.plain, 8),
            Token::Byt | Token::Ibyt => push_number_col(buf, r.bytes, c.plain, 8),
            Token::Opkt => push_number_col(buf, r.out_packets.unwrap_or(0), c.plain, 8),
            Token::Obyt => push_number_col(buf, r.out_bytes.unwrap_or(0), c.plain, 8),
            Token::Sp => push_u64_right(buf, r.src_port as u64, 6),
            Token::Dp => {
                let start = buf.len();
                push_dst_port(buf, r);
                right_align_from(buf, start, 6);
            }
            Token::It => push_u64_right(buf, (r.dst_port >> 8) as u64, 6),
            Token::Ic => push_u64_right(buf, (r.dst_port & 0xff) as u64, 6),
            Token::Pr => push_proto_col(buf, r.proto, c.plain),
            Token::Flg => {
                let f = if r.proto == 6 { r.tcp_flags } else { 0 };
                if c.plain { push_u64_right(buf, f as u64, 8) } else { push_flags(buf, f) }
            }
            Token::Fwd => push_u64_right(buf, r.fwd_status.unwrap_or(0) as u64, 3),
            Token::Tos | Token::Stos => push_u64_right(buf, r.src_tos as u64, 4),
            Token::Dtos => push_u64_right(buf, r.dst_tos.unwrap_or(0) as u64, 4),
            Token::Bps => push_number_col(buf, rate(r.bytes.wrapping_mul(8), dur), c.plain, 8),
            Token::Pps => push_number_col(buf, rate(r.packets, dur), c.plain, 8),
            Token::Bpp => push_u64_right(buf, bpp(r), 6),
            Token::Sa => push_ip_col(buf, r.src_addr, c.full_v6),
            Token::Da => push_ip_col(buf, r.dst_addr, c.full_v6),
            Token::Sap => {
                push_addr_port(buf, r.src_addr, c.full_v6);
                push_u64_left(buf, r.src_port as u64, 5);
            }
            Token::Dap => {
                push_addr_port(buf, r.dst_addr, c.full_v6);
                let start = buf.len();
                push_dst_port(buf, r);
                left_align_from(buf, start, 5);
            }
            Token::In => push_u64_right(buf, r.input_if.unwrap_or(0) as u64, 6),
            Token::Out => push_u64_right(buf, r.output_if.unwrap_or(0) as u64, 6),
            Token::Smk => push_u64_right(buf, r.src_mask.unwrap_or(0) as u64, 5),
            Token::Dmk => push_u64_right(buf, r.dst_mask.unwrap_or(0) as u64, 5),
            Token::Dir => {
                push_spaces(buf, 2);
                buf.push(if r.direction.unwrap_or(0) != 0 { b'E' } else { b'I' });
            }
            Token::End => push_u64_right(buf, r.end_reason.unwrap_or(0) as u64, 3),
            Token::Sn => push_net(buf, r.src_addr, r.src_mask, c.full_v6, false),
            Token::Dn => push_net(buf, r.dst_addr, r.dst_mask, c.full_v6, false),
            Token::Fl => push_u64_right(buf, r.flows.unwrap_or(1), 5),
            Token::Svln => push_u64_right(buf, r.src_vlan.unwrap_or(0) as u64, 5),
            Token::Dvln => push_u64_right(buf, r.dst_vlan.unwrap_or(0) as u64, 5),
            Token::Sas => push_u64_right(buf, r.src_as.unwrap_or(0) as u64, 6),
            Token::Das => push_u64_right(buf, r.dst_as.unwrap_or(0) as u64, 6),
            Token::Nas => {
                buf.push(b' ');
                push_u64_right(buf, r.next_as.unwrap_or(0) as u64, 6)
            }
            Token::Pas => {
                buf.push(b' ');
                push_u64_right(buf, r.prev_as.unwrap_or(0) as u64, 6)
            }
            Token::Nhb => push_ip_col(buf, r.bgp_next_hop, c.full_v6),
            Token::Nh => push_ip_col(buf, r.next_hop, c.full_v6),
            Token::Ra => push_ip_col(buf, r.exporter_addr, c.full_v6),
            Token::Mpls(i) => push_mpls(buf, mpls(r, i as usize)),
            Token::MplsAll => {
                for i in 0..10 {
                    push_mpls(buf, mpls(r, i));
                    buf.push(b' ');
                }
            }
            Token::Ismc => push_mac(buf, r.in_src_mac.unwrap_or(0)),
            Token::Odmc => push_mac(buf, r.out_dst_mac.unwrap_or(0)),
            Token::Idmc => push_mac(buf, r.in_dst_mac.unwrap_or(0)),
            Token::Osmc => push_mac(buf, r.out_src_mac.unwrap_or(0)),
            Token::Odid => match r.obs_domain {
                Some(d) => {
                    buf.extend_from_slice(b"0x");
                    let start = buf.len();
                    push_hex(buf, d as u64);
                    zero_pad_from(buf, start, 9);
                }
                None => buf.extend_from_slice(b"0x00"),
            },
            Token::Newline => buf.push(b'\n'),
        }
    }
}

/// Bytes per packet as nfdump's `uint32_t Bpp`.
#[inline]
pub(crate) fn bpp(r: &FlowRecord) -> u64 {
    r.bytes.checked_div(r.packets).map_or(0, |v| v as u32 as u64)
}

/// `%10llu.%03llu` (width 10) or `%llu.%03llu` (width 0).
fn push_raw_time(buf: &mut Vec<u8>, ms: u64, width: usize) {
    push_u64_right(buf, ms / 1000, width);
    buf.push(b'.');
    push_3(buf, (ms % 1000) as u32);
}

fn left_align_from(buf: &mut Vec<u8>, start: usize, width: usize) {
    let len = buf.len() - start;
    if len < width {
        push_spaces(buf, width - len);
    }
}

fn zero_pad_from(buf: &mut Vec<u8>, start: usize, width: usize) {
    let len = buf.len() - start;
    if len < width {
        buf.splice(start..start, std::iter::repeat_n(b'0', width - len));
    }
}

/// Appends `s` with `,` replaced by `;` (nfdump's csv `AddString`).
fn push_csv_str(buf: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        buf.push(if b == b',' { b';' } else { b });
    }
}

fn push_ip_or_zero(buf: &mut Vec<u8>, v: Option<u128>) {
    match v {
        Some(v) => push_ip(buf, v),
        None => buf.extend_from_slice(b"0.0.0.0"),
    }
}

/// One csv row (without the newline).
pub(crate) fn render_csv(buf: &mut Vec<u8>, toks: &[Token], r: &FlowRecord, c: &mut RowCtx<'_>) {
    let dur = duration_ms(r);
    let dur_s = dur as f64 / 1000.0;
    for (i, t) in toks.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        match *t {
            Token::Nfv => push_version(buf, r.flow_version),
            Token::Cnt => push_u64(buf, c.cnt as u32 as u64),
            Token::Idt => {
                push_csv_str(buf, if c.ident.is_empty() { "<no ident>" } else { c.ident })
            }
            Token::Eng => {
                push_u64(buf, r.engine_type.unwrap_or(0) as u64);
                buf.push(b'/');
                push_u64(buf, r.engine_id.unwrap_or(0) as u64);
            }
            Token::Exp => push_u64(buf, r.exporter_id.unwrap_or(0) as u64),
            Token::Ts => c.time.push_ms(buf, r.first, false),
            Token::Te => c.time.push_ms(buf, r.last, false),
            Token::Tr => c.time.push_ms(buf, r.received, false),
            Token::Tsg => c.time.push_ms(buf, r.first, true),
            Token::Teg => c.time.push_ms(buf, r.last, true),
            Token::Trg => c.time.push_ms(buf, r.received, true),
            Token::Tsr => push_raw_time(buf, r.first, 0),
            Token::Ter => push_raw_time(buf, r.last, 0),
            Token::Trr => push_raw_time(buf, r.received, 0),
            Token::Td | Token::Tds => push_secs(buf, dur, 0),
            Token::Pkt | Token::Ipkt => push_u64(buf, r.packets),
            Token::Byt | Token::Ibyt => push_u64(buf, r.bytes),
            Token::Opkt => push_u64(buf, r.out_packets.unwrap_or(0)),
            Token::Obyt => push_u64(buf, r.out_bytes.unwrap_or(0)),
            Token::Sp => push_u64(buf, r.src_port as u64),
            Token::Dp => push_dst_port(buf, r),
            Token::It => push_u64(buf, (r.dst_port >> 8) as u64),
            Token::Ic => push_u64(buf, (r.dst_port & 0xff) as u64),
            Token::Pr => push_u64(buf, r.proto as u64),
            Token::Flg => push_flags(buf, if r.proto == 6 { r.tcp_flags } else { 0 }),
            Token::Fwd => push_u64(buf, r.fwd_status.unwrap_or(0) as u64),
            Token::Tos | Token::Stos => push_u64(buf, r.src_tos as u64),
            Token::Dtos => push_u64(buf, r.dst_tos.unwrap_or(0) as u64),
            Token::Bps => {
                let v = if dur == 0 { 0 } else { ((r.bytes << 3) as f64 / dur_s) as u64 };
                push_u64(buf, v)
            }
            Token::Pps => {
                let v = if dur == 0 { 0 } else { (r.packets as f64 / dur_s) as u64 };
                push_u64(buf, v)
            }
            Token::Bpp => push_u64(buf, bpp(r)),
            Token::Sa => push_ip_or_zero(buf, r.src_addr),
            Token::Da => push_ip_or_zero(buf, r.dst_addr),
            Token::In => push_u64(buf, r.input_if.unwrap_or(0) as u64),
            Token::Out => push_u64(buf, r.output_if.unwrap_or(0) as u64),
            Token::Smk => push_u64(buf, r.src_mask.unwrap_or(0) as u64),
            Token::Dmk => push_u64(buf, r.dst_mask.unwrap_or(0) as u64),
            Token::Dir => buf.push(if r.direction.unwrap_or(0) != 0 { b'E' } else { b'I' }),
            Token::End => push_u64(buf, r.end_reason.unwrap_or(0) as u64),
            Token::Sn => push_net(buf, r.src_addr, r.src_mask, true, true),
            Token::Dn => push_net(buf, r.dst_addr, r.dst_mask, true, true),
            Token::Fl => push_u64(buf, r.flows.unwrap_or(1)),
            Token::Svln => push_u64(buf, r.src_vlan.unwrap_or(0) as u64),
            Token::Dvln => push_u64(buf, r.dst_vlan.unwrap_or(0) as u64),
            Token::Sas => push_u64(buf, r.src_as.unwrap_or(0) as u64),
            Token::Das => push_u64(buf, r.dst_as.unwrap_or(0) as u64),
            Token::Nas => push_u64(buf, r.next_as.unwrap_or(0) as u64),
            Token::Pas => push_u64(buf, r.prev_as.unwrap_or(0) as u64),
            Token::Nhb => push_ip_or_zero(buf, r.bgp_next_hop),
            Token::Nh => push_ip_or_zero(buf, r.next_hop),
            Token::Ra => push_ip_or_zero(buf, r.exporter_addr),
            Token::Mpls(i) => push_mpls(buf, mpls(r, i as usize)),
            Token::MplsAll => {
                for i in 0..10 {
                    push_mpls(buf, mpls(r, i));
                    buf.push(b' ');
                }
            }
            Token::Ismc => push_mac(buf, r.in_src_mac.unwrap_or(0)),
            Token::Odmc => push_mac(buf, r.out_dst_mac.unwrap_or(0)),
            Token::Idmc => push_mac(buf, r.in_dst_mac.unwrap_or(0)),
            Token::Osmc => push_mac(buf, r.out_src_mac.unwrap_or(0)),
            Token::Odid => match r.obs_domain {
                Some(d) => {
                    buf.extend_from_slice(b"0x");
                    push_hex(buf, d as u64);
                }
                None => buf.extend_from_slice(b"0x00"),
            },
            // Not allowed in csv: formats (rejected when parsing).
            Token::Sap | Token::Dap | Token::Newline => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dp(proto: u8, port: u16) -> String {
        let r = FlowRecord { proto, dst_port: port, ..Default::default() };
        let mut b = Vec::new();
        push_dst_port(&mut b, &r);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn icmp_type_code_in_the_port_column() {
        assert_eq!(dp(1, 8 << 8), "8.0");
        assert_eq!(dp(1, (3 << 8) | 13), "3.13");
        assert_eq!(dp(58, 128 << 8), "128.0");
        assert_eq!(dp(6, 2048), "2048");
        assert_eq!(dp(17, 53), "53");
    }

    #[test]
    fn versions_and_durations() {
        let v = |x| {
            let mut b = Vec::new();
            push_version(&mut b, x);
            String::from_utf8(b).unwrap()
        };
        assert_eq!(v(None), "FLO");
        assert_eq!(v(Some(5)), "Nv5");
        assert_eq!(v(Some(10)), "Nv10");
        assert_eq!(v(Some(0x85)), "Sv5");
        let r = FlowRecord { first: 0, last: 5, ..Default::default() };
        assert_eq!(duration_ms(&r), 0);
        let r = FlowRecord { first: 10, last: 5, ..Default::default() };
        assert_eq!(duration_ms(&r), 0);
        let r = FlowRecord { first: 10, last: 1510, ..Default::default() };
        assert_eq!(duration_ms(&r), 1500);
        let r = FlowRecord { packets: 3, bytes: 1000, ..Default::default() };
        assert_eq!(bpp(&r), 333);
        assert_eq!(bpp(&FlowRecord::default()), 0);
    }
}
