//! Byte-level text helpers shared by every printer: numbers with nfdump's
//! scaling, durations, TCP flags, protocol names, addresses, times.
//!
//! Everything appends to a `Vec<u8>` that the printer reuses, so printing a
//! record allocates nothing.

use std::io::Write as _;

use chrono::{FixedOffset, Local, TimeZone};

/// nfdump's protocol names (`userio.c`, `protoList`), indexed by number.
pub(crate) const PROTO_NAMES: [&str; 138] = [
    "0", "ICMP", "IGMP", "GGP", "IPIP", "ST", "TCP", "CBT", "EGP", "IGP", "BBN", "NVPII", "PUP",
    "ARGUS", "ENCOM", "XNET", "CHAOS", "UDP", "MUX", "DCN", "HMP", "PRM", "XNS", "Trnk1", "Trnk2",
    "Leaf1", "Leaf2", "RDP", "IRTP", "ISO-4", "NETBK", "MFESP", "MEINP", "DCCP", "3PC", "IDPR",
    "XTP", "DDP", "IDPR", "TP++", "IL", "IPv6", "SDRP", "Rte6", "Frag6", "IDRP", "RSVP", "GRE",
    "MHRP", "BNA", "ESP", "AH", "INLSP", "SWIPE", "NARP", "MOBIL", "TLSP", "SKIP", "ICMP6",
    "NOHE6", "OPTS6", "HOST", "CFTP", "NET", "SATNT", "KLAN", "RVD", "IPPC", "FS", "SATM", "VISA",
    "IPCV", "CPNX", "CPHB", "WSN", "PVP", "BSATM", "SUNND", "WBMON", "WBEXP", "ISOIP", "VMTP",
    "SVMTP", "VINES", "TTP", "NSIGP", "DGP", "TCF", "EIGRP", "OSPF", "S-RPC", "LARP", "MTP",
    "AX.25", "OS", "MICP", "SCCSP", "ETHIP", "ENCAP", "99", "GMTP", "IFMP", "PNNI", "PIM", "ARIS",
    "SCPS", "QNX", "A/N", "IPcmp", "SNP", "CpqPP", "IPXIP", "VRRP", "PGM", "0hop", "L2TP", "DDX",
    "IATP", "STP", "SRP", "UTI", "SMP", "SM", "PTP", "ISIS4", "FIRE", "CRTP", "CRUDP", "128",
    "IPLT", "SPS", "PIPE", "SCTP", "FC", "134", "MHEAD", "UDP-L", "MPLS",
];

/// Appends `v` in decimal.
#[inline]
pub(crate) fn push_u64(buf: &mut Vec<u8>, v: u64) {
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(v).as_bytes());
}

/// Appends `n` spaces.
#[inline]
pub(crate) fn push_spaces(buf: &mut Vec<u8>, n: usize) {
    buf.resize(buf.len() + n, b' ');
}

/// Appends `s` right-aligned in `width` (C `%{width}s`).
#[inline]
pub(crate) fn push_right(buf: &mut Vec<u8>, s: &[u8], width: usize) {
    if s.len() < width {
        push_spaces(buf, width - s.len());
    }
    buf.extend_from_slice(s);
}

/// Appends `s` left-aligned in `width` (C `%-{width}s`).
#[inline]
pub(crate) fn push_left(buf: &mut Vec<u8>, s: &[u8], width: usize) {
    buf.extend_from_slice(s);
    if s.len() < width {
        push_spaces(buf, width - s.len());
    }
}

/// Appends `v` right-aligned in `width` (C `%{width}u`).
#[inline]
pub(crate) fn push_u64_right(buf: &mut Vec<u8>, v: u64, width: usize) {
    if width <= 8 && v < 100_000_000 {
        // The usual case: one copy of `width` bytes (a constant where the
        // width is), digits written from the right.
        let mut t = [b' '; 8];
        let (mut at, mut x) = (8, v);
        loop {
            at -= 1;
            t[at] = b'0' + (x % 10) as u8;
            x /= 10;
            if x == 0 {
                break;
            }
        }
        buf.extend_from_slice(&t[at.min(8 - width)..]);
        return;
    }
    let mut b = itoa::Buffer::new();
    push_right(buf, b.format(v).as_bytes(), width);
}

/// Appends `v` left-aligned in `width` (C `%-{width}u`).
#[inline]
pub(crate) fn push_u64_left(buf: &mut Vec<u8>, v: u64, width: usize) {
    let mut b = itoa::Buffer::new();
    push_left(buf, b.format(v).as_bytes(), width);
}

/// Appends `v` as C's `%.{prec}f` (or `%{width}.{prec}f`).
pub(crate) fn push_f64(buf: &mut Vec<u8>, v: f64, width: usize, prec: usize) {
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "{v:width$.prec$}");
}

/// nfdump's `format_number`: plain decimal with `-N`, else `x.y M/G/T`
/// (decimal base, no `K`). `fixed` is nfdump's `FIXED_WIDTH` (`%5.1f`
/// and `%4.0f`); the caller pads the result to its column.
pub(crate) fn push_number(buf: &mut Vec<u8>, v: u64, plain: bool, fixed: bool) {
    if plain {
        push_u64(buf, v);
        return;
    }
    let f = v as f64;
    let (div, unit) = if f >= 1e12 {
        (1e12, b'T')
    } else if f >= 1e9 {
        (1e9, b'G')
    } else if f >= 1e6 {
        (1e6, b'M')
    } else {
        if fixed {
            push_u64_right(buf, v, 4);
        } else {
            push_u64(buf, v);
        }
        return;
    };
    push_tenths(buf, f / div, if fixed { 5 } else { 0 });
    buf.push(b' ');
    buf.push(unit);
}

/// C's `%{width}.1f` of a finite `q` in `[0, 2^53)`, without the float
/// formatter: the exact binary value of `q` rounded to tenths, ties to
/// even (glibc's rounding).
pub(crate) fn push_tenths(buf: &mut Vec<u8>, q: f64, width: usize) {
    let bits = q.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    if !(1..1023 + 53).contains(&exp) {
        push_f64(buf, q, width, 1);
        return;
    }
    let m = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
    // q = m * 2^e with e = exp - 1075; here e < 0.
    let s = (1075 - exp) as u32;
    let num = m as u128 * 10;
    let mut n = num >> s;
    let rem = num & ((1u128 << s) - 1);
    let half = 1u128 << (s - 1);
    if rem > half || (rem == half && n & 1 == 1) {
        n += 1;
    }
    let start = buf.len();
    push_u64(buf, (n / 10) as u64);
    buf.push(b'.');
    buf.push(b'0' + (n % 10) as u8);
    right_align_from(buf, start, width);
}

/// [`push_number`] with `FIXED_WIDTH`, right-aligned in `width` (the
/// `%8s` of nfdump's counter columns).
#[inline]
pub(crate) fn push_number_col(buf: &mut Vec<u8>, v: u64, plain: bool, width: usize) {
    if v < 1_000_000 {
        // Fast path: both modes print the plain number.
        push_u64_right(buf, v, width.max(if plain { 0 } else { 4 }));
        return;
    }
    let start = buf.len();
    push_number(buf, v, plain, true);
    right_align_from(buf, start, width);
}

/// Two decimal digits.
#[inline]
fn push_2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10 % 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

/// Three decimal digits.
#[inline]
pub(crate) fn push_3(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 100 % 10) as u8);
    push_2(buf, v % 100);
}

/// nfdump's `DurationString`: `    HH:MM:SS.mmm`, or `Nd HH:MM:SS.mmm`
/// (`%2dd`) from one day on; always at least 16 characters.
pub(crate) fn push_duration(buf: &mut Vec<u8>, ms: u64) {
    let msec = (ms % 1000) as u32;
    let secs = ms / 1000;
    let days = secs / 86400;
    let rest = secs % 86400;
    let (h, m, s) = ((rest / 3600) as u32, (rest % 3600 / 60) as u32, (rest % 60) as u32);
    if days == 0 {
        // One fixed-size copy: `    HH:MM:SS.mmm`.
        let mut t = *b"    00:00:00.000";
        let d = |v: u32| b'0' + (v % 10) as u8;
        (t[4], t[5]) = (d(h / 10), d(h));
        (t[7], t[8]) = (d(m / 10), d(m));
        (t[10], t[11]) = (d(s / 10), d(s));
        (t[13], t[14], t[15]) = (d(msec / 100), d(msec / 10), d(msec));
        buf.extend_from_slice(&t);
        return;
    } else {
        push_u64_right(buf, days, 2);
        buf.extend_from_slice(b"d ");
    }
    push_2(buf, h);
    buf.push(b':');
    push_2(buf, m);
    buf.push(b':');
    push_2(buf, s);
    buf.push(b'.');
    push_3(buf, msec);
}

/// Duration in seconds with milliseconds (`%.3f` of `ms / 1000.0`),
/// right-aligned in `width` (0 = no padding).
pub(crate) fn push_secs(buf: &mut Vec<u8>, ms: u64, width: usize) {
    let mut tmp = [0u8; 32];
    let mut n = 0;
    let mut b = itoa::Buffer::new();
    for &c in b.format(ms / 1000).as_bytes() {
        tmp[n] = c;
        n += 1;
    }
    tmp[n] = b'.';
    let f = (ms % 1000) as u32;
    tmp[n + 1] = b'0' + (f / 100) as u8;
    tmp[n + 2] = b'0' + (f / 10 % 10) as u8;
    tmp[n + 3] = b'0' + (f % 10) as u8;
    push_right(buf, &tmp[..n + 4], width);
}

/// TCP flags as nfdump's 8-character `CEUAPRSF` string.
#[inline]
pub(crate) fn push_flags(buf: &mut Vec<u8>, flags: u8) {
    const L: &[u8; 8] = b"CEUAPRSF";
    for (i, &c) in L.iter().enumerate() {
        buf.push(if flags & (0x80 >> i) != 0 { c } else { b'.' });
    }
}

/// nfdump's `ProtoString`: the name, or the number as `%-5i` with `-N`
/// or when the table has no name.
pub(crate) fn push_proto(buf: &mut Vec<u8>, proto: u8, plain: bool) {
    match PROTO_NAMES.get(proto as usize) {
        Some(name) if !plain => buf.extend_from_slice(name.as_bytes()),
        _ => push_u64_left(buf, proto as u64, 5),
    }
}

/// `%-5s` of [`push_proto`] (the `%pr` column).
pub(crate) fn push_proto_col(buf: &mut Vec<u8>, proto: u8, plain: bool) {
    match PROTO_NAMES.get(proto as usize) {
        Some(name) if !plain => push_left(buf, name.as_bytes(), 5),
        _ => push_u64_left(buf, proto as u64, 5),
    }
}

/// `aa:bb:cc:dd:ee:ff` (lower-case hex).
pub(crate) fn push_mac(buf: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..6).rev() {
        let b = (v >> (i * 8)) as u8;
        buf.push(HEX[(b >> 4) as usize]);
        buf.push(HEX[(b & 15) as usize]);
        if i != 0 {
            buf.push(b':');
        }
    }
}

/// Lower-case hex without leading zeros (C `%x`).
pub(crate) fn push_hex(buf: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = ((64 - v.leading_zeros()).div_ceil(4)).max(1);
    for i in (0..digits).rev() {
        buf.push(HEX[((v >> (i * 4)) & 15) as usize]);
    }
}

/// An MPLS stack entry as `%8u-%1u-%1u` (label, exp, bottom of stack).
pub(crate) fn push_mpls(buf: &mut Vec<u8>, v: u32) {
    push_u64_right(buf, (v >> 4) as u64, 8);
    buf.push(b'-');
    push_u64(buf, ((v & 0xf) >> 1) as u64);
    buf.push(b'-');
    push_u64(buf, (v & 1) as u64);
}

/// Whether a stored address is IPv4 (mapped).
#[inline]
pub(crate) fn is_v4(v: u128) -> bool {
    weir_record::is_ipv4_mapped(v)
}

/// Digits of 0..=255 (three bytes, left-aligned) and their count.
const OCTETS: [([u8; 3], u8); 256] = octet_table(false);

/// Digits of 0..=255 right-aligned in three bytes after spaces, and
/// their count.
const OCTETS_RIGHT: [([u8; 3], u8); 256] = octet_table(true);

/// The digits of every octet value in three bytes, left-aligned (padded
/// with zero bytes) or right-aligned (after spaces), and their count.
const fn octet_table(right: bool) -> [([u8; 3], u8); 256] {
    let pad = if right { b' ' } else { 0 };
    let mut t = [([pad; 3], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let (h, te, o) =
            (b'0' + (i / 100) as u8, b'0' + (i / 10 % 10) as u8, b'0' + (i % 10) as u8);
        t[i] = match (i >= 100, i >= 10, right) {
            (true, _, _) => ([h, te, o], 3),
            (false, true, false) => ([te, o, pad], 2),
            (false, true, true) => ([pad, te, o], 2),
            (false, false, false) => ([o, pad, pad], 1),
            (false, false, true) => ([pad, pad, o], 1),
        };
        i += 1;
    }
    t
}

/// Length of the dotted-quad text of `v`.
#[inline]
fn v4_len(v: u32) -> usize {
    v.to_be_bytes().iter().map(|b| OCTETS[*b as usize].1 as usize).sum::<usize>() + 3
}

#[inline]
fn push_v4(buf: &mut Vec<u8>, v: u32) {
    let o = v.to_be_bytes();
    for (i, b) in o.iter().enumerate() {
        if i != 0 {
            buf.push(b'.');
        }
        let (d, n) = &OCTETS[*b as usize];
        buf.extend_from_slice(&d[..*n as usize]);
    }
}

/// glibc's `inet_ntop(AF_INET6)`: the longest run (of at least two) of
/// zero groups becomes `::`; `::a.b.c.d` / `::ffff:a.b.c.d` for the
/// IPv4-compatible and IPv4-mapped forms.
fn push_v6(buf: &mut Vec<u8>, v: u128) {
    let words: [u16; 8] = std::array::from_fn(|i| (v >> (112 - 16 * i)) as u16);
    let (mut best_base, mut best_len) = (usize::MAX, 0);
    let (mut cur_base, mut cur_len) = (usize::MAX, 0);
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            if cur_base == usize::MAX {
                cur_base = i;
                cur_len = 1;
            } else {
                cur_len += 1;
            }
        } else if cur_base != usize::MAX {
            if best_base == usize::MAX || cur_len > best_len {
                best_base = cur_base;
                best_len = cur_len;
            }
            cur_base = usize::MAX;
        }
    }
    if cur_base != usize::MAX && (best_base == usize::MAX || cur_len > best_len) {
        best_base = cur_base;
        best_len = cur_len;
    }
    if best_base != usize::MAX && best_len < 2 {
        best_base = usize::MAX;
    }
    let in_best = |i: usize| best_base != usize::MAX && i >= best_base && i < best_base + best_len;
    for i in 0..8 {
        if in_best(i) {
            if i == best_base {
                buf.push(b':');
            }
            continue;
        }
        if i != 0 {
            buf.push(b':');
        }
        if i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff)) {
            push_v4(buf, v as u32);
            return;
        }
        push_hex(buf, words[i] as u64);
    }
    if best_base != usize::MAX && best_base + best_len == 8 {
        buf.push(b':');
    }
}

/// An address as `inet_ntop` prints it (IPv4 for mapped values).
pub(crate) fn push_ip(buf: &mut Vec<u8>, v: u128) {
    if is_v4(v) { push_v4(buf, v as u32) } else { push_v6(buf, v) }
}

/// nfdump's `CondenseV6`: an IPv6 text longer than 16 characters keeps its
/// first 7 and last 7 characters around `..`.
pub(crate) fn condense_v6(s: &mut Vec<u8>, start: usize) {
    let len = s.len() - start;
    if len <= 16 {
        return;
    }
    let tail_start = s.len() - 7;
    s.copy_within(tail_start.., start + 9);
    s[start + 7] = b'.';
    s[start + 8] = b'.';
    s.truncate(start + 16);
}

/// An address as the fmt columns print it: condensed IPv6 unless `full`.
pub(crate) fn push_ip_text(buf: &mut Vec<u8>, v: u128, full: bool) {
    let start = buf.len();
    push_ip(buf, v);
    if !full && !is_v4(v) {
        condense_v6(buf, start);
    }
}

/// An address right-aligned in 16 (39 with full IPv6) columns, `0.0.0.0`
/// when absent.
pub(crate) fn push_ip_col(buf: &mut Vec<u8>, v: Option<u128>, full: bool) {
    let width = if full { 39 } else { 16 };
    if let Some(a) = v
        && is_v4(a)
        && !full
    {
        // One fixed-size copy: the dotted quad right-aligned in 16.
        // Each octet's three bytes (digits right-aligned after spaces) are
        // written whole; the next octet to the left overwrites the spaces.
        let mut t = [b' '; 16];
        let mut at = 16;
        for (k, b) in (a as u32).to_le_bytes().iter().enumerate() {
            if k != 0 {
                at -= 1;
                t[at] = b'.';
            }
            let (d, n) = &OCTETS_RIGHT[*b as usize];
            t[at - 3..at].copy_from_slice(d);
            at -= *n as usize;
        }
        buf.extend_from_slice(&t);
        return;
    }
    if let Some(a) = v
        && is_v4(a)
    {
        let len = v4_len(a as u32);
        if len < width {
            push_spaces(buf, width - len);
        }
        push_v4(buf, a as u32);
        return;
    }
    let start = buf.len();
    match v {
        Some(v) => push_ip_text(buf, v, full),
        None => buf.extend_from_slice(b"0.0.0.0"),
    }
    right_align_from(buf, start, if full { 39 } else { 16 });
}

/// Right-aligns the text appended since `start` in `width` columns.
#[inline]
pub(crate) fn right_align_from(buf: &mut Vec<u8>, start: usize, width: usize) {
    let len = buf.len() - start;
    if len < width {
        let pad = width - len;
        buf.resize(start + width, b' ');
        buf.copy_within(start..start + len, start + pad);
        buf[start..start + pad].fill(b' ');
    }
}

/// The address masked to `bits` as nfdump's `ApplyV4NetMaskBits` /
/// `ApplyV6NetMaskBits` compute it on x86 (shift counts wrap).
pub(crate) fn mask_addr(v: u128, bits: u8) -> u128 {
    if is_v4(v) {
        let ip = v as u32;
        let shift = 32u32.wrapping_sub(bits as u32) & 31;
        let mask = 0xffff_ffffu32 << shift;
        (v & !0xffff_ffffu128) | (ip & mask) as u128
    } else {
        let hi = (v >> 64) as u64;
        let lo = v as u64;
        let (hi, lo) = if bits > 64 {
            let shift = 128u32.wrapping_sub(bits as u32) & 63;
            (hi, lo & (u64::MAX << shift))
        } else {
            let shift = 64u32.wrapping_sub(bits as u32) & 63;
            (hi & (u64::MAX << shift), 0)
        };
        ((hi as u128) << 64) | lo as u128
    }
}

/// The time zone times are printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeZoneSetting {
    /// The process's local time zone (`TZ`), as nfdump's `localtime_r`.
    #[default]
    Local,
    /// A fixed offset from UTC (tests, `TZ=UTC`).
    Fixed(FixedOffset),
}

impl TimeZoneSetting {
    /// UTC.
    pub fn utc() -> TimeZoneSetting {
        TimeZoneSetting::Fixed(FixedOffset::east_opt(0).expect("zero offset"))
    }
}

/// Two decimal digits of `v` at `t[at..at + 2]`.
#[inline]
fn put2(t: &mut [u8], at: usize, v: u32) {
    t[at] = b'0' + (v / 10 % 10) as u8;
    t[at + 1] = b'0' + (v % 10) as u8;
}

/// Broken-down civil time of one second.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
}

/// Civil time of `secs` seconds since the epoch in UTC+0 (proleptic
/// Gregorian; Howard Hinnant's `civil_from_days`).
fn civil_utc(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil { year, month, day, hour: sod / 3600, min: sod % 3600 / 60, sec: sod % 60 }
}

/// Formats epoch seconds as civil time. The UTC offset of the local zone
/// is looked up once per 15-minute interval (zone offsets and their
/// transitions fall on quarter hours); the rest is arithmetic.
#[derive(Clone)]
pub(crate) struct TimeFmt {
    tz: TimeZoneSetting,
    /// (secs / 900, offset seconds) of the last lookup.
    offset_cache: (i64, i64),
    /// (day, utc) and the `YYYY-MM-DD` text of the last day
    /// [`TimeFmt::push_ms`] printed (records in a row share their day).
    date_cache: Option<((i64, bool), [u8; 10])>,
}

impl TimeFmt {
    pub(crate) fn new(tz: TimeZoneSetting) -> TimeFmt {
        TimeFmt { tz, offset_cache: (i64::MIN, 0), date_cache: None }
    }

    /// `YYYY-MM-DD HH:MM:SS` of `secs`, or `None` for a year outside
    /// 0..10000 (not four digits).
    fn secs_text(&mut self, secs: i64, utc: bool) -> Option<[u8; 19]> {
        let local = secs + if utc { 0 } else { self.offset(secs) };
        let day = local.div_euclid(86_400);
        let date = match self.date_cache {
            Some((key, d)) if key == (day, utc) => d,
            _ => {
                let c = civil_utc(local);
                if !(0..10000).contains(&c.year) {
                    return None;
                }
                let mut d = *b"0000-00-00";
                put2(&mut d, 0, (c.year / 100) as u32);
                put2(&mut d, 2, (c.year % 100) as u32);
                put2(&mut d, 5, c.month);
                put2(&mut d, 8, c.day);
                self.date_cache = Some(((day, utc), d));
                d
            }
        };
        let sod = local.rem_euclid(86_400) as u32;
        let mut t = *b"0000-00-00 00:00:00";
        t[..10].copy_from_slice(&date);
        put2(&mut t, 11, sod / 3600);
        put2(&mut t, 14, sod % 3600 / 60);
        put2(&mut t, 17, sod % 60);
        Some(t)
    }

    fn offset(&mut self, secs: i64) -> i64 {
        match self.tz {
            TimeZoneSetting::Fixed(off) => off.local_minus_utc() as i64,
            TimeZoneSetting::Local => {
                let bucket = secs.div_euclid(900);
                if self.offset_cache.0 != bucket {
                    let off = Local
                        .timestamp_opt(secs, 0)
                        .single()
                        .map_or(0, |d| d.offset().local_minus_utc() as i64);
                    self.offset_cache = (bucket, off);
                }
                self.offset_cache.1
            }
        }
    }

    fn lookup(&mut self, secs: i64, utc: bool) -> Civil {
        let off = if utc { 0 } else { self.offset(secs) };
        civil_utc(secs + off)
    }

    /// `YYYY-MM-DD{sep}HH:MM:SS` of `secs`, in the configured zone or UTC.
    pub(crate) fn push_secs(&mut self, buf: &mut Vec<u8>, secs: i64, sep: u8, utc: bool) {
        let c = self.lookup(secs, utc);
        if (0..10000).contains(&c.year) {
            push_2(buf, (c.year / 100) as u32);
            push_2(buf, (c.year % 100) as u32);
        } else {
            let _ = write!(buf, "{}", c.year);
        }
        buf.push(b'-');
        push_2(buf, c.month);
        buf.push(b'-');
        push_2(buf, c.day);
        buf.push(sep);
        push_2(buf, c.hour);
        buf.push(b':');
        push_2(buf, c.min);
        buf.push(b':');
        push_2(buf, c.sec);
    }

    /// `YYYY-MM-DD HH:MM:SS.mmm`, or nfdump's `0000-00-00 00:00:00.000`
    /// for 0.
    pub(crate) fn push_ms(&mut self, buf: &mut Vec<u8>, ms: u64, utc: bool) {
        if ms == 0 {
            buf.extend_from_slice(b"0000-00-00 00:00:00.000");
            return;
        }
        if let Some(t) = self.secs_text((ms / 1000) as i64, utc) {
            let mut out = [b'.'; 23];
            out[..19].copy_from_slice(&t);
            let f = (ms % 1000) as u32;
            out[20] = b'0' + (f / 100) as u8;
            out[21] = b'0' + (f / 10 % 10) as u8;
            out[22] = b'0' + (f % 10) as u8;
            buf.extend_from_slice(&out);
            return;
        }
        self.push_secs(buf, (ms / 1000) as i64, b' ', utc);
        buf.push(b'.');
        push_3(buf, (ms % 1000) as u32);
    }

    /// `YYYY-MM-DD{sep}HH:MM:SS.mmm` (no special case for 0).
    pub(crate) fn push_ms_sep(&mut self, buf: &mut Vec<u8>, ms: u64, sep: u8) {
        self.push_secs(buf, (ms / 1000) as i64, sep, false);
        buf.push(b'.');
        push_3(buf, (ms % 1000) as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut b = Vec::new();
        f(&mut b);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn number_scaling() {
        assert_eq!(s(|b| push_number(b, 999_999, false, false)), "999999");
        assert_eq!(s(|b| push_number(b, 1_000_000, false, false)), "1.0 M");
        assert_eq!(s(|b| push_number(b, 4_500_000, false, true)), "  4.5 M");
        assert_eq!(s(|b| push_number(b, 1_250_000, false, false)), "1.2 M");
        assert_eq!(s(|b| push_number(b, 1_350_000, false, false)), "1.4 M");
        assert_eq!(s(|b| push_number(b, 2_000_000_000, false, false)), "2.0 G");
        assert_eq!(s(|b| push_number(b, 3_210_000_000_000, false, false)), "3.2 T");
        assert_eq!(s(|b| push_number(b, 3_210_000_000_000_000, false, true)), "3210.0 T");
        assert_eq!(s(|b| push_number(b, 12, false, true)), "  12");
        assert_eq!(s(|b| push_number(b, 12_345_678, true, true)), "12345678");
        assert_eq!(s(|b| push_number_col(b, 187, false, 8)), "     187");
        assert_eq!(s(|b| push_number_col(b, 1, true, 8)), "       1");
        assert_eq!(s(|b| push_number_col(b, 123_456_789, false, 8)), " 123.5 M");
        assert_eq!(s(|b| push_number_col(b, 999_999_999_999, false, 8)), "1000.0 G");
        assert_eq!(s(|b| push_number_col(b, 123_456_789_012, true, 8)), "123456789012");
    }

    #[test]
    fn tenths_match_the_float_formatter() {
        let mut x: u64 = 0xdead_beef_1234_5678;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = match i % 4 {
                0 => x % 10_000_000,
                1 => x % 100_000_000_000,
                2 => (x % 100_000) * 50_000,
                _ => x,
            };
            for div in [1e6, 1e9, 1e12] {
                let q = v as f64 / div;
                if q >= 9e15 {
                    continue;
                }
                for w in [0, 5] {
                    let mut a = Vec::new();
                    push_tenths(&mut a, q, w);
                    let b = format!("{q:w$.1}");
                    assert_eq!(String::from_utf8(a).unwrap(), b, "{v} / {div}");
                }
            }
        }
        for (v, want) in
            [(1_250_000u64, "1.2"), (1_350_000, "1.4"), (1_050_000, "1.1"), (999_950_000, "1000.0")]
        {
            let mut a = Vec::new();
            push_tenths(&mut a, v as f64 / 1e6, 0);
            assert_eq!(String::from_utf8(a).unwrap(), want);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(s(|b| push_duration(b, 0)), "    00:00:00.000");
        assert_eq!(s(|b| push_duration(b, 1500)), "    00:00:01.500");
        assert_eq!(s(|b| push_duration(b, 140_210)), "    00:02:20.210");
        assert_eq!(s(|b| push_duration(b, 86_400_000 + 3_723_004)), " 1d 01:02:03.004");
        assert_eq!(s(|b| push_duration(b, 12 * 86_400_000)), "12d 00:00:00.000");
        assert_eq!(s(|b| push_secs(b, 1500, 16)), "           1.500");
        assert_eq!(s(|b| push_secs(b, 5, 0)), "0.005");
    }

    #[test]
    fn flags_and_protos() {
        assert_eq!(s(|b| push_flags(b, 0x1b)), "...AP.SF");
        assert_eq!(s(|b| push_flags(b, 0xff)), "CEUAPRSF");
        assert_eq!(s(|b| push_flags(b, 0)), "........");
        assert_eq!(s(|b| push_proto_col(b, 6, false)), "TCP  ");
        assert_eq!(s(|b| push_proto_col(b, 6, true)), "6    ");
        assert_eq!(s(|b| push_proto_col(b, 200, false)), "200  ");
        assert_eq!(s(|b| push_proto_col(b, 58, false)), "ICMP6");
        assert_eq!(s(|b| push_proto(b, 47, false)), "GRE");
    }

    fn ip(t: &str) -> u128 {
        weir_record::ip_to_u128(t.parse().unwrap())
    }

    #[test]
    fn ipv6_text_like_glibc() {
        for (a, want) in [
            ("2001:db8::1", "2001:db8::1"),
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("::2:3", "::0.2.0.3"),
            ("fe80::ffff:1:2", "fe80::ffff:1:2"),
        ] {
            assert_eq!(s(|b| push_ip(b, ip(a))), want, "{a}");
        }
        assert_eq!(s(|b| push_ip(b, ip("10.0.0.1"))), "10.0.0.1");
    }

    #[test]
    fn ipv6_condensed() {
        let v = ip("2001:620:1000:cafe:20e:35ff:fec0:fed5");
        assert_eq!(s(|b| push_ip_text(b, v, false)), "2001:62..c0:fed5");
        assert_eq!(s(|b| push_ip_text(b, v, true)), "2001:620:1000:cafe:20e:35ff:fec0:fed5");
        assert_eq!(s(|b| push_ip_text(b, ip("2001:db8::3"), false)), "2001:db8::3");
        assert_eq!(s(|b| push_ip_col(b, None, false)), "         0.0.0.0");
    }

    #[test]
    fn masks() {
        assert_eq!(mask_addr(ip("10.1.2.3"), 24), ip("10.1.2.0"));
        assert_eq!(mask_addr(ip("10.1.2.3"), 32), ip("10.1.2.3"));
        assert_eq!(mask_addr(ip("10.1.2.3"), 0), ip("10.1.2.3"));
        assert_eq!(mask_addr(ip("2001:db8:1:2:3:4:5:6"), 48), ip("2001:db8:1::"));
        assert_eq!(mask_addr(ip("2001:db8:1:2:3:4:5:6"), 80), ip("2001:db8:1:2:3::"));
    }

    #[test]
    fn hex() {
        for v in [0u64, 1, 15, 16, 0xabc, 0xffff, u64::MAX] {
            assert_eq!(s(|b| push_hex(b, v)), format!("{v:x}"));
        }
    }

    #[test]
    fn macs_and_mpls() {
        assert_eq!(s(|b| push_mac(b, 0x0a50_56c0_0001)), "0a:50:56:c0:00:01");
        assert_eq!(s(|b| push_mpls(b, (1234 << 4) | (5 << 1) | 1)), "    1234-5-1");
    }

    #[test]
    fn civil_matches_chrono() {
        use chrono::{Datelike, Timelike};
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for i in 0..100_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let secs = if i < 10 {
                [
                    0,
                    -1,
                    86_399,
                    86_400,
                    951_782_400,
                    4_107_542_400,
                    -2_208_988_800,
                    253_402_300_799,
                    68_256_000,
                    1_720_689_300,
                ][i as usize]
            } else {
                (x % 8_000_000_000) as i64 - 2_000_000_000
            };
            let d = chrono::Utc.timestamp_opt(secs, 0).unwrap();
            let want = Civil {
                year: d.year() as i64,
                month: d.month(),
                day: d.day(),
                hour: d.hour(),
                min: d.minute(),
                sec: d.second(),
            };
            assert_eq!(civil_utc(secs), want, "{secs}");
        }
    }

    #[test]
    fn times() {
        let mut t = TimeFmt::new(TimeZoneSetting::utc());
        assert_eq!(s(|b| t.push_ms(b, 1_720_689_300_000, false)), "2024-07-11 09:15:00.000");
        assert_eq!(s(|b| t.push_ms(b, 0, false)), "0000-00-00 00:00:00.000");
        let mut t = TimeFmt::new(TimeZoneSetting::Fixed(FixedOffset::east_opt(7200).unwrap()));
        assert_eq!(s(|b| t.push_ms(b, 1_720_689_300_123, false)), "2024-07-11 11:15:00.123");
        assert_eq!(s(|b| t.push_ms(b, 1_720_689_300_123, true)), "2024-07-11 09:15:00.123");
        assert_eq!(s(|b| t.push_ms_sep(b, 1_720_689_300_123, b'T')), "2024-07-11T11:15:00.123");
    }
}
