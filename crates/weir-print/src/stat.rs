//! Element statistics (`-s srcip`, …) and the closing summary.

use weir_query::{OrderKey, StatRow, StatTable, Summary};
use weir_record::{Field, FieldType};

use crate::text::*;

/// How an element's values print (nfdump's `IS_*` stat types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Number,
    Hex,
    Ip,
    Mac,
    Mpls,
    Flags,
    Proto,
}

fn value_kind(table: &StatTable) -> ValueKind {
    let Some(field) = table.element.fields.first() else {
        return ValueKind::Number;
    };
    if *field == Field::ObsDomain {
        return ValueKind::Hex;
    }
    match field.info().ty {
        FieldType::Ip => ValueKind::Ip,
        FieldType::Mac => ValueKind::Mac,
        FieldType::Mpls => ValueKind::Mpls,
        FieldType::TcpFlags => ValueKind::Flags,
        FieldType::Proto => ValueKind::Proto,
        _ => ValueKind::Number,
    }
}

/// Where a stat table's text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatMode {
    Fmt,
    Csv,
    Json,
}

/// Options for printing one stat table.
pub(crate) struct StatOpts {
    pub mode: StatMode,
    pub plain: bool,
    pub quiet: bool,
    pub full_v6: bool,
    pub top_n: usize,
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { part.wrapping_mul(100) as f64 / total as f64 }
}

struct Rates {
    dur_s: f64,
    pps: u64,
    bps: u64,
    bpp: u64,
}

fn rates(row: &StatRow) -> Rates {
    let c = &row.counters;
    let dur_s = if row.first_ms != 0 && row.last_ms != 0 {
        row.last_ms.wrapping_sub(row.first_ms) as f64 / 1000.0
    } else {
        0.0
    };
    let (pps, bps) = if dur_s != 0.0 {
        ((c.packets as f64 / dur_s) as u64, (c.bytes.wrapping_mul(8) as f64 / dur_s) as u64)
    } else {
        (0, 0)
    };
    let bpp = c.bytes.checked_div(c.packets).map_or(0, |v| v as u32 as u64);
    Rates { dur_s, pps, bps, bpp }
}

/// The value text of a row. `fmt` selects the column (condensed IPv6,
/// padded flags) form.
fn push_value(buf: &mut Vec<u8>, kind: ValueKind, row: &StatRow, o: &StatOpts, fmt: bool) {
    let v = row.value;
    match kind {
        ValueKind::Number | ValueKind::Proto => push_u64(buf, v as u64),
        ValueKind::Hex => {
            buf.extend_from_slice(b"0x");
            push_hex(buf, v as u64);
        }
        ValueKind::Ip => {
            if fmt {
                push_ip_text(buf, v, o.full_v6)
            } else {
                push_ip(buf, v)
            }
        }
        ValueKind::Mac => push_mac(buf, v as u64),
        ValueKind::Mpls => push_mpls(buf, v as u32),
        ValueKind::Flags => {
            if o.plain && fmt {
                buf.extend_from_slice(b"0x");
                push_hex(buf, v as u64);
            } else {
                push_flags(buf, v as u8)
            }
        }
    }
}

/// The protocol column: the row's protocol with `:p` (or for `-s proto`),
/// else `any`.
fn row_proto(table: &StatTable, kind: ValueKind, row: &StatRow) -> Option<u8> {
    if kind == ValueKind::Proto {
        return Some(row.proto.unwrap_or(row.value as u8));
    }
    if table.per_proto { Some(row.proto.unwrap_or(0)) } else { None }
}

/// Prints one stat table into `buf`.
pub(crate) fn print_table(buf: &mut Vec<u8>, table: &StatTable, o: &StatOpts, time: &mut TimeFmt) {
    let kind = value_kind(table);
    let wide = o.full_v6 && kind == ValueKind::Ip;
    match o.mode {
        StatMode::Fmt => {
            if !o.quiet {
                buf.extend_from_slice(b"Top ");
                if o.top_n != 0 {
                    push_u64(buf, o.top_n as u64);
                    buf.push(b' ');
                }
                buf.extend_from_slice(table.element.header.as_bytes());
                buf.extend_from_slice(b" ordered by ");
                buf.extend_from_slice(table.order.key.name().as_bytes());
                buf.extend_from_slice(b":\n");
                buf.extend_from_slice(b"Date first seen             Duration     Proto ");
                push_right(buf, table.element.header.as_bytes(), if wide { 43 } else { 17 });
                buf.extend_from_slice(
                    b"    Flows(%)     Packets(%)       Bytes(%)         pps      bps   bpp\n",
                );
            }
        }
        StatMode::Csv => {
            if table.order.key == OrderKey::Flows {
                buf.extend_from_slice(
                    b"ts,te,td,pr,val,fl,flP,ipkt,ipktP,ibyt,ibytP,ipps,ibps,ibpp\n",
                );
            } else {
                buf.extend_from_slice(b"ts,te,td,pr,val,fl,flP,pkt,pktP,byt,bytP,pps,bps,bpp\n");
            }
        }
        StatMode::Json => {}
    }
    let mut val = Vec::with_capacity(64);
    for row in &table.rows {
        let c = &row.counters;
        let r = rates(row);
        val.clear();
        push_value(&mut val, kind, row, o, o.mode == StatMode::Fmt);
        match o.mode {
            StatMode::Fmt => {
                time.push_ms_sep(buf, row.first_ms, b' ');
                buf.push(b' ');
                if o.plain {
                    push_f64(buf, r.dur_s, 16, 3);
                } else {
                    push_duration(buf, row.last_ms.saturating_sub(row.first_ms));
                }
                buf.push(b' ');
                let start = buf.len();
                match row_proto(table, kind, row) {
                    Some(p) => push_proto(buf, p, o.plain),
                    None => buf.extend_from_slice(b"any"),
                }
                let len = buf.len() - start;
                if len < 5 {
                    push_spaces(buf, 5 - len);
                }
                buf.push(b' ');
                push_right(buf, &val, if wide { 43 } else { 17 });
                for (part, total) in [
                    (c.flows, table.total.flows),
                    (c.packets, table.total.packets),
                    (c.bytes, table.total.bytes),
                ] {
                    buf.push(b' ');
                    push_number_col(buf, part, o.plain, 8);
                    buf.push(b'(');
                    push_f64(buf, percent(part, total), 4, 1);
                    buf.push(b')');
                }
                buf.push(b' ');
                push_number_col(buf, r.pps, o.plain, 8);
                buf.push(b' ');
                push_number_col(buf, r.bps, o.plain, 8);
                buf.push(b' ');
                push_u64_right(buf, r.bpp, 5);
                buf.push(b'\n');
            }
            StatMode::Csv => {
                time.push_secs(buf, (row.first_ms / 1000) as i64, b' ', false);
                buf.push(b',');
                time.push_secs(buf, (row.last_ms / 1000) as i64, b' ', false);
                buf.push(b',');
                push_f64(buf, r.dur_s, 0, 3);
                buf.push(b',');
                match row_proto(table, kind, row) {
                    Some(p) => push_proto(buf, p, o.plain),
                    None => buf.extend_from_slice(b"any"),
                }
                buf.push(b',');
                buf.extend_from_slice(&val);
                for (part, total) in [
                    (c.flows, table.total.flows),
                    (c.packets, table.total.packets),
                    (c.bytes, table.total.bytes),
                ] {
                    buf.push(b',');
                    push_u64(buf, part);
                    buf.push(b',');
                    push_f64(buf, percent(part, total), 0, 1);
                }
                for v in [r.pps, r.bps, r.bpp] {
                    buf.push(b',');
                    push_u64(buf, v);
                }
                buf.push(b'\n');
            }
            StatMode::Json => {
                buf.extend_from_slice(b"{ \"first\" : \"");
                time.push_ms_sep(buf, row.first_ms, b'T');
                buf.extend_from_slice(b"\", \"last\" : \"");
                time.push_ms_sep(buf, row.last_ms, b'T');
                buf.extend_from_slice(b"\", \"proto\" : ");
                push_u64(buf, row.proto.unwrap_or(0) as u64);
                buf.extend_from_slice(b", \"");
                buf.extend_from_slice(table.element.name.as_bytes());
                buf.extend_from_slice(b"\" : \"");
                buf.extend_from_slice(&val);
                buf.extend_from_slice(b"\", \"flows\" : ");
                push_u64(buf, c.flows);
                buf.extend_from_slice(b", \"packets\" : ");
                push_u64(buf, c.packets);
                buf.extend_from_slice(b", \"bytes\" : ");
                push_u64(buf, c.bytes);
                buf.extend_from_slice(b", \"pps\" : ");
                push_u64(buf, r.pps);
                buf.extend_from_slice(b", \"bps\" : ");
                push_u64(buf, r.bps);
                buf.extend_from_slice(b", \"bpp\" : ");
                push_u64(buf, r.bpp);
                buf.extend_from_slice(b"}\n");
            }
        }
    }
}

/// Process CPU times (user, system) in seconds from `/proc/self/stat`
/// (clock ticks of 1/100 s); zeros where that file does not exist.
pub(crate) fn cpu_times() -> (f64, f64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else {
        return (0.0, 0.0);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: field 3 (state) is index 0; utime is field 14,
    // stime field 15.
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) as f64 / 100.0;
    (tick(11), tick(12))
}

/// Timing numbers for the last summary line.
pub(crate) struct Timing {
    pub user_s: f64,
    pub sys_s: f64,
    pub runtime_s: f64,
}

/// nfdump 1.7.8's four summary lines.
pub(crate) fn print_summary(
    buf: &mut Vec<u8>,
    s: &Summary,
    plain: bool,
    time: &mut TimeFmt,
    timing: &Timing,
) {
    let p = &s.passed;
    let duration =
        if s.last_ms != 0 { s.last_ms.wrapping_sub(s.first_ms) as f64 / 1000.0 } else { 0.0 };
    let (mut bps, mut pps, mut bpp) = (0u64, 0u64, 0u64);
    if duration > 0.0 && s.last_ms > 0 {
        bps = ((p.bytes << 3) as f64 / duration) as u64;
        pps = (p.packets as f64 / duration) as u64;
        bpp = p.bytes.checked_div(p.packets).unwrap_or(0);
    }
    buf.extend_from_slice(b"Summary: total flows: ");
    push_u64(buf, p.flows);
    buf.extend_from_slice(b", total bytes: ");
    push_number(buf, p.bytes, plain, false);
    buf.extend_from_slice(b", total packets: ");
    push_number(buf, p.packets, plain, false);
    buf.extend_from_slice(b", avg bps: ");
    push_number(buf, bps, plain, false);
    buf.extend_from_slice(b", avg pps: ");
    push_number(buf, pps, plain, false);
    buf.extend_from_slice(b", avg bpp: ");
    push_number(buf, bpp, plain, false);
    buf.push(b'\n');

    match s.window {
        Some((start, end)) if end != 0 => {
            buf.extend_from_slice(b"Time window: ");
            if start != 0 {
                time.push_ms_sep(buf, start, b' ');
                buf.extend_from_slice(b" - ");
                time.push_ms_sep(buf, end, b' ');
            } else {
                buf.extend_from_slice(b"Time Window unknown");
            }
            buf.extend_from_slice(b", Duration:");
            push_duration(buf, end.saturating_sub(start));
            buf.push(b'\n');
        }
        _ => buf.extend_from_slice(b"Time window: <unknown>\n"),
    }

    buf.extend_from_slice(b"Total records processed: ");
    push_u64(buf, s.records_processed);
    buf.extend_from_slice(b", passed: ");
    push_u64(buf, s.records_passed);
    buf.extend_from_slice(b", Blocks skipped: ");
    push_u64(buf, s.blocks_skipped);
    buf.extend_from_slice(b", Bytes read: ");
    push_u64(buf, s.bytes_read);
    buf.push(b'\n');

    let fps = if s.wall_s > 0.0 { s.records_processed as f64 / s.wall_s } else { 0.0 };
    buf.extend_from_slice(b"Sys: ");
    push_f64(buf, timing.sys_s, 0, 4);
    buf.extend_from_slice(b"s User: ");
    push_f64(buf, timing.user_s, 0, 4);
    buf.extend_from_slice(b"s Wall: ");
    push_f64(buf, s.wall_s, 0, 4);
    buf.extend_from_slice(b"s flows/second: ");
    push_f64(buf, fps, 0, 1);
    buf.extend_from_slice(b" Runtime: ");
    push_f64(buf, timing.runtime_s.max(s.wall_s), 0, 4);
    buf.extend_from_slice(b"s\n");
}
