//! Column-direct decoding of simple data templates.
//!
//! Most exporters send fixed-length templates in which every element maps
//! to one column and no two elements compete for a column (no delta and
//! total counters side by side, no IPv4 and IPv6 source in one record, no
//! per-record sampling fields). For those, [`Plan::compile`] turns the
//! template into a list of (offset, length, column) steps once, and
//! [`Plan::decode`] appends each record straight to the sink's column
//! builder: no [`FlowRecord`](weir_record::FlowRecord) row, no per-record
//! `match` over elements that resolve alternatives. Any other template
//! (variable-length elements, competing or sampling elements) is decoded
//! by the general path; both give exactly the same flows (a test decodes
//! every capture both ways).

use weir_record::{BatchBuilder, DenseFields, Field};

use super::be_uint;
use super::ie::{Act, Clock, Times, num, uptime_to_abs};
use super::template::VARLEN;

/// What one step of a plan does with the bytes at `off..off + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// An integer column: the number, cut to the column's width (`mask`).
    Column(Field, u64),
    /// An IPv4 address column (stored IPv4-mapped).
    Ip4(Field),
    /// An IPv6 address column.
    Ip6(Field),
    /// One of the values every row needs (`Req` index), cut by `mask`.
    Required(usize, u64),
    /// `icmpTypeCode` (v9 32 / IPFIX 139).
    Icmp,
    /// A start or end time element.
    Time(Act),
}

/// Indices of [`Step::Required`] values.
const PROTO: usize = 0;
const SRC_PORT: usize = 1;
const DST_PORT: usize = 2;
const TCP_FLAGS: usize = 3;
const SRC_TOS: usize = 4;
const PACKETS: usize = 5;
const BYTES: usize = 6;
const OUT_PACKETS: usize = 7;
const OUT_BYTES: usize = 8;
const REQUIRED: usize = 9;
/// Data sets of at least this many records are decoded column by column
/// (one loop per element), smaller ones row by row (one pass over the
/// steps per record): a column loop's setup costs about what a few rows
/// of per-step dispatch do.
const COLUMNS_FROM: usize = 2;

/// The column of each [`Step::Required`] value.
const REQ_FIELDS: [Field; REQUIRED] = [
    Field::Proto,
    Field::SrcPort,
    Field::DstPort,
    Field::TcpFlags,
    Field::SrcTos,
    Field::Packets,
    Field::Bytes,
    Field::OutPackets,
    Field::OutBytes,
];

const U8: u64 = 0xff;
const U16: u64 = 0xffff;
const U32: u64 = 0xffff_ffff;
const ALL: u64 = u64::MAX;

/// One step at its place in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Op {
    /// Offset in the record.
    off: u16,
    /// Length of the element.
    len: u8,
    /// How far an 8-byte big-endian load at `off` is shifted right to
    /// leave the element's bytes (`64 - 8 * len` for lengths 1 to 8).
    shift: u8,
    step: Step,
}

/// A compiled fixed-length data template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// The steps, in template order.
    steps: Vec<Op>,
    /// Record length.
    len: usize,
    has_out_packets: bool,
    has_out_bytes: bool,
    /// The fields every record sets (the sampling rate aside, which
    /// depends on the data set).
    dense: DenseFields,
    /// The time steps, in template order.
    times: Vec<Op>,
    /// The times when they are one start and one end element of the same
    /// unit, 1 to 8 bytes long: (unit, start, end).
    time_pair: Option<(TimeUnit, Op, Op)>,
    /// The last `icmpTypeCode` step, and the protocol's step.
    icmp: Option<Op>,
    proto: Option<Op>,
}

/// What is the same for every record of a data set.
#[derive(Debug, Clone, Copy)]
pub(super) struct SetContext {
    pub clock: Clock,
    pub received_ms: u64,
    pub flow_version: u64,
    pub domain: u32,
    pub exporter_addr: u128,
    pub sysid: u16,
    /// Stored `sampling_rate` of every flow, if any.
    pub stored_rate: Option<u32>,
    /// Factor applied to packet and byte counters.
    pub scale: u32,
}

/// Totals of the flows a call appended.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Appended {
    pub records: usize,
    pub packets: u64,
    pub bytes: u64,
}

impl Plan {
    /// The plan of a data template given as its compiled `ops` (wire
    /// length or [`VARLEN`], action); `None` if the template is not simple.
    pub(super) fn compile(ops: &[(u16, Act)]) -> Option<Plan> {
        use Act::*;
        let mut steps = Vec::with_capacity(ops.len());
        let mut off = 0usize;
        let mut taken = [false; Field::COUNT];
        let mut req_taken = [false; REQUIRED];
        for &(len, act) in ops {
            if len == VARLEN {
                return None;
            }
            let l = usize::from(len);
            // Lengths that the general path ignores (wrong size for the
            // element) add no step: the value stays absent there too.
            let is_num = (1..=8).contains(&l);
            let step = match act {
                Skip => None,
                Bytes => is_num.then_some(Step::Required(BYTES, ALL)),
                Packets => is_num.then_some(Step::Required(PACKETS, ALL)),
                OutBytes => is_num.then_some(Step::Required(OUT_BYTES, ALL)),
                OutPackets => is_num.then_some(Step::Required(OUT_PACKETS, ALL)),
                Proto => is_num.then_some(Step::Required(PROTO, U8)),
                TcpFlags => is_num.then_some(Step::Required(TCP_FLAGS, U8)),
                SrcTos => is_num.then_some(Step::Required(SRC_TOS, U8)),
                SrcPort => is_num.then_some(Step::Required(SRC_PORT, U16)),
                DstPort => is_num.then_some(Step::Required(DST_PORT, U16)),
                Flows => is_num.then_some(Step::Column(Field::Flows, ALL)),
                DstTos => is_num.then_some(Step::Column(Field::DstTos, U8)),
                SrcMask => is_num.then_some(Step::Column(Field::SrcMask, U8)),
                DstMask => is_num.then_some(Step::Column(Field::DstMask, U8)),
                InIf => is_num.then_some(Step::Column(Field::InputIf, U32)),
                OutIf => is_num.then_some(Step::Column(Field::OutputIf, U32)),
                SrcAs => is_num.then_some(Step::Column(Field::SrcAs, U32)),
                DstAs => is_num.then_some(Step::Column(Field::DstAs, U32)),
                NextAs => is_num.then_some(Step::Column(Field::NextAs, U32)),
                PrevAs => is_num.then_some(Step::Column(Field::PrevAs, U32)),
                SrcVlan => is_num.then_some(Step::Column(Field::SrcVlan, U16)),
                DstVlan => is_num.then_some(Step::Column(Field::DstVlan, U16)),
                Direction => is_num.then_some(Step::Column(Field::Direction, U8)),
                FwdStatus => is_num.then_some(Step::Column(Field::FwdStatus, U8)),
                EngineType => is_num.then_some(Step::Column(Field::EngineType, U8)),
                EngineId => is_num.then_some(Step::Column(Field::EngineId, U8)),
                EndReason => is_num.then_some(Step::Column(Field::EndReason, U8)),
                InSrcMac => (l == 6).then_some(Step::Column(Field::InSrcMac, ALL)),
                InDstMac => (l == 6).then_some(Step::Column(Field::InDstMac, ALL)),
                OutSrcMac => (l == 6).then_some(Step::Column(Field::OutSrcMac, ALL)),
                OutDstMac => (l == 6).then_some(Step::Column(Field::OutDstMac, ALL)),
                Mpls(i) => {
                    let f = Field::from_id(Field::Mpls1.id() + u16::from(i.min(9)))?;
                    (l == 3).then_some(Step::Column(f, ALL))
                }
                Src4 => (l == 4).then_some(Step::Ip4(Field::SrcAddr)),
                Dst4 => (l == 4).then_some(Step::Ip4(Field::DstAddr)),
                NextHop4 => (l == 4).then_some(Step::Ip4(Field::NextHop)),
                BgpNextHop4 => (l == 4).then_some(Step::Ip4(Field::BgpNextHop)),
                Src6 => (l == 16).then_some(Step::Ip6(Field::SrcAddr)),
                Dst6 => (l == 16).then_some(Step::Ip6(Field::DstAddr)),
                NextHop6 => (l == 16).then_some(Step::Ip6(Field::NextHop)),
                BgpNextHop6 => (l == 16).then_some(Step::Ip6(Field::BgpNextHop)),
                IcmpTypeCode => is_num.then_some(Step::Icmp),
                FirstUptime | LastUptime | FirstSeconds | LastSeconds | FirstMillis
                | LastMillis | FirstNtp | LastNtp | FirstDeltaMicros | LastDeltaMicros => {
                    Some(Step::Time(act))
                }
                // Alternatives resolved by precedence, and per-record
                // sampling or boot time: the general path.
                _ => return None,
            };
            if let Some(step) = step {
                // Two elements for one column (IPv4 and IPv6 source, next
                // hop given twice): the general path resolves them.
                match step {
                    Step::Column(f, _) | Step::Ip4(f) | Step::Ip6(f) => {
                        if std::mem::replace(&mut taken[f.index()], true) {
                            return None;
                        }
                    }
                    Step::Required(i, _) => {
                        if std::mem::replace(&mut req_taken[i], true) {
                            return None;
                        }
                    }
                    Step::Icmp | Step::Time(_) => {}
                }
                let len = len.min(255) as u8;
                let shift = 64 - 8 * len.clamp(1, 8);
                steps.push(Op { off: u16::try_from(off).ok()?, len, shift, step });
            }
            off += l;
        }
        if off == 0 || off > usize::from(u16::MAX) {
            return None;
        }
        let mut dense: Vec<Field> = steps
            .iter()
            .filter_map(|op| match op.step {
                Step::Column(f, _) | Step::Ip4(f) | Step::Ip6(f) => Some(f),
                _ => None,
            })
            .collect();
        dense.extend([
            Field::First,
            Field::Last,
            Field::Received,
            Field::SrcPort,
            Field::DstPort,
            Field::Proto,
            Field::TcpFlags,
            Field::SrcTos,
            Field::Packets,
            Field::Bytes,
            Field::ExporterId,
            Field::FlowVersion,
            Field::ObsDomain,
            Field::ExporterAddr,
        ]);
        if req_taken[OUT_PACKETS] {
            dense.push(Field::OutPackets);
        }
        if req_taken[OUT_BYTES] {
            dense.push(Field::OutBytes);
        }
        let times: Vec<Op> =
            steps.iter().filter(|op| matches!(op.step, Step::Time(_))).copied().collect();
        let icmp = steps.iter().rev().find(|op| op.step == Step::Icmp).copied();
        let proto = steps.iter().find(|op| matches!(op.step, Step::Required(PROTO, _))).copied();
        let time_pair = time_pair(&times);
        Some(Plan {
            time_pair,
            times,
            icmp,
            proto,
            steps,
            len: off,
            has_out_packets: req_taken[OUT_PACKETS],
            has_out_bytes: req_taken[OUT_BYTES],
            dense: DenseFields::new(dense),
        })
    }

    /// Record length in bytes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of memory the plan holds (charged to the template limit).
    pub(super) fn cost(&self) -> usize {
        self.steps.len() * std::mem::size_of::<Op>()
    }

    /// Appends the records in `body` (whole records only, at most `room`)
    /// to `b`; returns how many and their counters.
    pub(super) fn decode(
        &self,
        body: &[u8],
        room: usize,
        cx: &SetContext,
        b: &mut BatchBuilder,
    ) -> Appended {
        let n = (body.len() / self.len).min(room);
        // Every record sets the same columns: written in place, without
        // the pushes' per-value checks, when each has a value in every
        // row so far.
        if cx.stored_rate.is_none() && cx.scale == 1 && n > 0 && b.begin_dense(n, &self.dense) {
            let row = b.len();
            let done = if n >= COLUMNS_FROM {
                self.decode_columns(body, n, cx, b, row)
            } else {
                self.decode_into(body, n, cx, &mut InPlace { b, row })
            };
            b.fill_u64_at(Field::Received, row, n, cx.received_ms);
            b.fill_u128_at(Field::ExporterAddr, row, n, cx.exporter_addr);
            b.fill_u64_at(Field::ExporterId, row, n, u64::from(cx.sysid));
            b.fill_u64_at(Field::FlowVersion, row, n, cx.flow_version);
            b.fill_u64_at(Field::ObsDomain, row, n, u64::from(cx.domain));
            b.end_dense(n, &self.dense);
            return done;
        }
        self.decode_into(body, room, cx, b)
    }

    /// The `n` records of `body` written in place, column by column, into
    /// rows `row..row + n` (made room for by `begin_dense`): one tight loop
    /// per element over the records, then one pass per row for the times.
    /// The same values as [`Plan::decode_into`] for data sets whose
    /// counters are not scaled.
    fn decode_columns(
        &self,
        body: &[u8],
        n: usize,
        cx: &SetContext,
        b: &mut BatchBuilder,
        row: usize,
    ) -> Appended {
        let len = self.len;
        let mut seen = [false; REQUIRED];
        for op in &self.steps {
            match op.step {
                Step::Column(f, mask) => column(body, len, op, mask, b.window_u64(f, row, n)),
                Step::Required(i, mask) => {
                    seen[i] = true;
                    column(body, len, op, mask, b.window_u64(REQ_FIELDS[i], row, n));
                }
                Step::Ip4(f) => {
                    let off = usize::from(op.off);
                    for (x, rec) in b.window_u128(f, row, n).iter_mut().zip(body.chunks_exact(len))
                    {
                        *x = 0xffff_0000_0000 | u128::from(read(rec, off, 4, op.shift));
                    }
                }
                Step::Ip6(f) => {
                    let off = usize::from(op.off);
                    for (x, rec) in b.window_u128(f, row, n).iter_mut().zip(body.chunks_exact(len))
                    {
                        if let Some(a) =
                            rec.get(off..off + 16).and_then(|v| <[u8; 16]>::try_from(v).ok())
                        {
                            *x = u128::from_be_bytes(a);
                        }
                    }
                }
                Step::Icmp | Step::Time(_) => {}
            }
        }
        // Required values the template lacks are zero (the pushes' rows
        // start from zeros too); the reply counters only when present.
        for (i, f) in REQ_FIELDS.iter().enumerate().take(OUT_PACKETS) {
            if !seen[i] {
                b.window_u64(*f, row, n).fill(0);
            }
        }
        // As `Scratch::finish`: the ICMP type/code only for ICMP flows.
        if let Some(icmp) = self.icmp {
            for (r, rec) in body.chunks_exact(len).take(n).enumerate() {
                let proto = self.proto.map_or(0, |p| read_op(rec, &p) & U8);
                if proto == 1 || proto == 58 {
                    let tc = read_op(rec, &icmp) & U16;
                    b.set_u64_at(Field::SrcPort, row + r, 0);
                    b.set_u64_at(Field::DstPort, row + r, tc);
                }
            }
        }
        let Some((first, last)) = b.windows_u64(Field::First, Field::Last, row, n) else {
            return Appended::default();
        };
        for ((f, l), rec) in first.iter_mut().zip(last.iter_mut()).zip(body.chunks_exact(len)) {
            (*f, *l) = self.times_of(rec, &cx.clock);
        }
        let total = |w: &[u64]| w.iter().fold(0u64, |t, &x| t.saturating_add(x));
        let packets = total(b.window_u64(Field::Packets, row, n));
        let bytes = total(b.window_u64(Field::Bytes, row, n));
        Appended { records: n, packets, bytes }
    }

    /// `(first, last)` of a record: for the usual pairs each time on its
    /// own, as `Times::resolve` gives it for them; else the record's time
    /// elements, in template order, resolved.
    #[inline]
    #[allow(clippy::cast_possible_truncation)]
    fn times_of(&self, rec: &[u8], clock: &Clock) -> (u64, u64) {
        match self.time_pair {
            Some((unit, a, z)) if unit != TimeUnit::Uptime || clock.sys_uptime.is_some() => {
                let conv = |v: u64| match unit {
                    TimeUnit::Uptime => {
                        uptime_to_abs(v as u32, clock.sys_uptime.unwrap_or(0), clock.export_ms)
                    }
                    TimeUnit::Seconds => v.saturating_mul(1000),
                    TimeUnit::Millis => v,
                };
                let (x, y) = (conv(read_op(rec, &a)), conv(read_op(rec, &z)));
                if x <= y { (x, y) } else { (y, x) }
            }
            _ => {
                let mut times = Times::default();
                for op in &self.times {
                    let (off, len) = (usize::from(op.off), usize::from(op.len));
                    if let (Step::Time(act), Some(v)) = (op.step, rec.get(off..off + len)) {
                        times.apply(act, v);
                    }
                }
                times.resolve(clock)
            }
        }
    }

    #[allow(clippy::cast_possible_truncation)]
    fn decode_into<O: Out>(
        &self,
        body: &[u8],
        room: usize,
        cx: &SetContext,
        b: &mut O,
    ) -> Appended {
        let mut done = Appended::default();
        for rec in body.chunks_exact(self.len).take(room) {
            let mut req = [0u64; REQUIRED];
            let mut icmp: Option<u64> = None;
            for op in &self.steps {
                let (off, len) = (usize::from(op.off), usize::from(op.len));
                let read = || read(rec, off, len, op.shift);
                match op.step {
                    Step::Column(f, mask) => b.push_u64(f, read() & mask),
                    Step::Required(i, mask) => {
                        if let Some(r) = req.get_mut(i) {
                            *r = read() & mask;
                        }
                    }
                    Step::Ip4(f) => {
                        b.push_u128(f, 0xffff_0000_0000 | u128::from(read()));
                    }
                    Step::Icmp => icmp = Some(read() & U16),
                    Step::Ip6(f) => {
                        // Always there: an IPv6 step is a 16-byte element
                        // of the record (written in place, it must be).
                        if let Some(a) =
                            rec.get(off..off + 16).and_then(|v| <[u8; 16]>::try_from(v).ok())
                        {
                            b.push_u128(f, u128::from_be_bytes(a));
                        }
                    }
                    // All of them at once below.
                    Step::Time(_) => {}
                }
            }
            // As `Scratch::finish`: the ICMP type/code only for ICMP flows.
            if let Some(tc) = icmp
                && (req[PROTO] == 1 || req[PROTO] == 58)
            {
                req[SRC_PORT] = 0;
                req[DST_PORT] = tc;
            }
            let (first, last) = self.times_of(rec, &cx.clock);
            if cx.scale > 1 {
                let r = u64::from(cx.scale);
                for i in [PACKETS, BYTES, OUT_PACKETS, OUT_BYTES] {
                    req[i] = req[i].saturating_mul(r);
                }
            }
            b.push_u64(Field::First, first);
            b.push_u64(Field::Last, last);
            b.push_u64(Field::SrcPort, req[SRC_PORT]);
            b.push_u64(Field::DstPort, req[DST_PORT]);
            b.push_u64(Field::Proto, req[PROTO]);
            b.push_u64(Field::TcpFlags, req[TCP_FLAGS]);
            b.push_u64(Field::SrcTos, req[SRC_TOS]);
            b.push_u64(Field::Packets, req[PACKETS]);
            b.push_u64(Field::Bytes, req[BYTES]);
            if self.has_out_packets {
                b.push_u64(Field::OutPackets, req[OUT_PACKETS]);
            }
            if self.has_out_bytes {
                b.push_u64(Field::OutBytes, req[OUT_BYTES]);
            }
            if O::PER_ROW_CONSTANTS {
                b.push_u64(Field::Received, cx.received_ms);
                b.push_u128(Field::ExporterAddr, cx.exporter_addr);
                b.push_u64(Field::ExporterId, u64::from(cx.sysid));
                if let Some(r) = cx.stored_rate {
                    b.push_u64(Field::SamplingRate, u64::from(r));
                }
                b.push_u64(Field::FlowVersion, cx.flow_version);
                b.push_u64(Field::ObsDomain, u64::from(cx.domain));
            }
            b.end_row();
            done.records += 1;
            done.packets = done.packets.saturating_add(req[PACKETS]);
            done.bytes = done.bytes.saturating_add(req[BYTES]);
        }
        done
    }
}

/// Where decoded values go: pushed to the column builders, or written in
/// place.
trait Out {
    /// Whether the values that are the same for the whole data set
    /// (received time, exporter, domain, version) are given row by row;
    /// if not, the caller fills them for the set.
    const PER_ROW_CONSTANTS: bool;
    fn push_u64(&mut self, f: Field, v: u64);
    fn push_u128(&mut self, f: Field, v: u128);
    fn end_row(&mut self);
}

impl Out for BatchBuilder {
    const PER_ROW_CONSTANTS: bool = true;
    #[inline(always)]
    fn push_u64(&mut self, f: Field, v: u64) {
        BatchBuilder::push_u64(self, f, v);
    }
    #[inline(always)]
    fn push_u128(&mut self, f: Field, v: u128) {
        BatchBuilder::push_u128(self, f, v);
    }
    #[inline(always)]
    fn end_row(&mut self) {
        BatchBuilder::end_row(self);
    }
}

/// Rows written in place (see [`BatchBuilder::begin_dense`]).
struct InPlace<'a> {
    b: &'a mut BatchBuilder,
    row: usize,
}

impl Out for InPlace<'_> {
    const PER_ROW_CONSTANTS: bool = false;
    #[inline(always)]
    fn push_u64(&mut self, f: Field, v: u64) {
        self.b.set_u64_at(f, self.row, v);
    }
    #[inline(always)]
    fn push_u128(&mut self, f: Field, v: u128) {
        self.b.set_u128_at(f, self.row, v);
    }
    #[inline(always)]
    fn end_row(&mut self) {
        self.row += 1;
    }
}

/// The unit of a pair of time elements taken on the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeUnit {
    /// `first/lastSwitched` (v9 21/22): ms of the exporter's uptime.
    Uptime,
    /// `flowStart/EndSeconds` (150/151).
    Seconds,
    /// `flowStart/EndMilliseconds` (152/153).
    Millis,
}

/// (unit, start, end) if `times` is exactly one start and one end element
/// of one [`TimeUnit`], each 1 to 8 bytes long.
fn time_pair(times: &[Op]) -> Option<(TimeUnit, Op, Op)> {
    let [a, z] = times else { return None };
    if !(1..=8).contains(&a.len) || !(1..=8).contains(&z.len) {
        return None;
    }
    let (Step::Time(x), Step::Time(y)) = (a.step, z.step) else { return None };
    let (unit, start, end) = match (x, y) {
        (Act::FirstUptime, Act::LastUptime) => (TimeUnit::Uptime, a, z),
        (Act::LastUptime, Act::FirstUptime) => (TimeUnit::Uptime, z, a),
        (Act::FirstSeconds, Act::LastSeconds) => (TimeUnit::Seconds, a, z),
        (Act::LastSeconds, Act::FirstSeconds) => (TimeUnit::Seconds, z, a),
        (Act::FirstMillis, Act::LastMillis) => (TimeUnit::Millis, a, z),
        (Act::LastMillis, Act::FirstMillis) => (TimeUnit::Millis, z, a),
        _ => return None,
    };
    Some((unit, *start, *end))
}

/// Column `op` of each of the records of `body` (`len` bytes each) into
/// `out`, cut by `mask`.
#[inline(always)]
fn column(body: &[u8], len: usize, op: &Op, mask: u64, out: &mut [u64]) {
    for (x, rec) in out.iter_mut().zip(body.chunks_exact(len)) {
        *x = read_op(rec, op) & mask;
    }
}

/// [`read`] of the element of `op`.
#[inline(always)]
fn read_op(rec: &[u8], op: &Op) -> u64 {
    read(rec, usize::from(op.off), usize::from(op.len), op.shift)
}

/// The big-endian number of `len` (1 to 8, checked when the plan is
/// compiled) bytes at `off`: one 8-byte load shifted right by `shift`
/// (`64 - 8 * len`, from the plan) when the record has 8 bytes from `off`
/// on.
#[inline]
fn read(rec: &[u8], off: usize, len: usize, shift: u8) -> u64 {
    match rec.get(off..off + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        Some(w) => u64::from_be_bytes(w) >> (shift & 63),
        None => rec.get(off..off + len).map_or(0, |v| num(v).unwrap_or_else(|| be_uint(v))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_templates_only() {
        let v9 = [(4u16, Act::Src4), (4, Act::Dst4), (2, Act::SrcPort), (8, Act::Bytes)];
        let p = Plan::compile(&v9).unwrap();
        assert_eq!((p.len(), p.steps.len()), (18, 4));
        // Competing elements, variable length, sampling: the general path.
        assert!(Plan::compile(&[(4, Act::Src4), (16, Act::Src6)]).is_none());
        assert!(Plan::compile(&[(8, Act::Bytes), (8, Act::BytesTotal)]).is_none());
        assert!(Plan::compile(&[(VARLEN, Act::Skip)]).is_none());
        assert!(Plan::compile(&[(4, Act::SamplerId)]).is_none());
        assert!(Plan::compile(&[(2, Act::SrcPort), (2, Act::SrcPort)]).is_none());
        // A wrong length adds no step but keeps the offsets.
        let p = Plan::compile(&[(3, Act::Src4), (2, Act::DstPort)]).unwrap();
        assert_eq!(
            p.steps,
            vec![Op { off: 3, len: 2, shift: 48, step: Step::Required(DST_PORT, U16) }]
        );
        assert!(Plan::compile(&[(0, Act::Skip)]).is_none());
    }
}
