//! The field registry: one table that names every stored column.
//!
//! Each column of a slot file is a [`Field`]. Its [`FieldInfo`] gives the
//! column id used on disk, the physical width in memory, the logical type,
//! the snake-case name, the nfdump filter keyword and the nfdump `fmt:`
//! token. The filter parser, the printers and the aggregator look fields up
//! here instead of keeping their own lists.
//!
//! The table, the [`Field`] enum, the row struct [`crate::FlowRecord`] and
//! the [`crate::BatchBuilder`] are all generated from the single
//! `define_fields!` invocation at the bottom of this file, so they cannot
//! drift apart.

use std::fmt;
use std::str::FromStr;

/// How a column is held in memory: every integer column widens to `u64`,
/// addresses use `u128`. The on-disk width is chosen per block by the codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Physical {
    /// A `u64` column.
    U64,
    /// A `u128` column (IP addresses).
    U128,
}

impl Physical {
    /// The code stored in a column entry (`phys` in FORMAT.md).
    pub const fn code(self) -> u8 {
        match self {
            Physical::U64 => 0,
            Physical::U128 => 1,
        }
    }
}

/// What the numbers of a column mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldType {
    /// Milliseconds since the Unix epoch.
    TimeMs,
    /// An IPv4 (mapped) or IPv6 address.
    Ip,
    /// A 48-bit MAC address.
    Mac,
    /// An MPLS label stack entry: `label << 4 | exp << 1 | bottom-of-stack`.
    Mpls,
    /// An IP protocol number.
    Proto,
    /// TCP flags (`CEUAPRSF`).
    TcpFlags,
    /// A transport port (for ICMP the destination port holds `type << 8 | code`).
    Port,
    /// An 8-bit number.
    U8,
    /// A 16-bit number.
    U16,
    /// A 32-bit number.
    U32,
    /// A 64-bit number.
    U64,
}

impl FieldType {
    /// The largest value a field of this type can hold.
    pub const fn max_value(self) -> u128 {
        match self {
            FieldType::TimeMs | FieldType::U64 => u64::MAX as u128,
            FieldType::Ip => u128::MAX,
            FieldType::Mac => 0xffff_ffff_ffff,
            FieldType::Mpls => 0x00ff_ffff,
            FieldType::Proto | FieldType::TcpFlags | FieldType::U8 => 0xff,
            FieldType::Port | FieldType::U16 => 0xffff,
            FieldType::U32 => u32::MAX as u128,
        }
    }
}

/// Everything the registry knows about one stored column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// The field.
    pub field: Field,
    /// Column id on disk (FORMAT.md, "Column ids"). Never reused.
    pub id: u16,
    /// Snake-case name used by weir (CSV/JSON keys, `-A` keys, `inspect`).
    pub name: &'static str,
    /// In-memory representation.
    pub physical: Physical,
    /// Meaning of the values.
    pub ty: FieldType,
    /// nfdump filter keyword(s) for this field, e.g. `"src port"`; empty if
    /// nfdump has none.
    pub keyword: &'static str,
    /// nfdump `fmt:` token, e.g. `"%sp"`; empty if nfdump has none.
    pub token: &'static str,
    /// Whether every row has a value (nfdump's generic flow part).
    pub required: bool,
    /// One line for `--help` texts and docs.
    pub doc: &'static str,
}

/// Where a non-column attribute comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrSource {
    /// Stored once per file (the footer), not per row.
    File,
    /// Computed from stored columns.
    Derived,
}

/// A queryable attribute that is not a column of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrInfo {
    /// weir's name.
    pub name: &'static str,
    /// Where the value comes from.
    pub source: AttrSource,
    /// nfdump filter keyword.
    pub keyword: &'static str,
    /// nfdump `fmt:` token.
    pub token: &'static str,
    /// How it is obtained.
    pub doc: &'static str,
}

/// Attributes that are not columns: the file ident and values computed from
/// columns. Listed here so that the registry is the one place to look.
pub const ATTRS: &[AttrInfo] = &[
    AttrInfo {
        name: "ident",
        source: AttrSource::File,
        keyword: "ident",
        token: "%idt",
        doc: "ident of the source, stored in the file footer",
    },
    AttrInfo {
        name: "duration",
        source: AttrSource::Derived,
        keyword: "duration",
        token: "%td",
        doc: "last - first, in milliseconds",
    },
    AttrInfo {
        name: "icmp_type",
        source: AttrSource::Derived,
        keyword: "icmp-type",
        token: "%it",
        doc: "dst_port >> 8 for ICMP and ICMPv6 flows",
    },
    AttrInfo {
        name: "icmp_code",
        source: AttrSource::Derived,
        keyword: "icmp-code",
        token: "%ic",
        doc: "dst_port & 0xff for ICMP and ICMPv6 flows",
    },
    AttrInfo {
        name: "pps",
        source: AttrSource::Derived,
        keyword: "pps",
        token: "%pps",
        doc: "packets per second (0 when the duration is 0)",
    },
    AttrInfo {
        name: "bps",
        source: AttrSource::Derived,
        keyword: "bps",
        token: "%bps",
        doc: "bits per second (0 when the duration is 0)",
    },
    AttrInfo {
        name: "bpp",
        source: AttrSource::Derived,
        keyword: "bpp",
        token: "%bpp",
        doc: "bytes per packet",
    },
];

/// Error for a field name that the registry does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField(pub String);

impl fmt::Display for UnknownField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown field '{}'", self.0)
    }
}

impl std::error::Error for UnknownField {}

macro_rules! define_fields {
    ($(
        $variant:ident = $id:literal, $member:ident: $rty:ty, $pres:ident, $phys:ident, $ty:ident,
        $keyword:literal, $token:literal, $doc:literal;
    )*) => {
        /// A stored column. The discriminant is the on-disk column id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum Field {
            $(
                #[doc = $doc]
                $variant = $id,
            )*
        }

        impl Field {
            /// Every stored field, in column-id order.
            pub const ALL: &'static [Field] = &[$(Field::$variant,)*];
            /// Number of stored fields.
            pub const COUNT: usize = Self::ALL.len();

            /// The registry entry of this field.
            pub fn info(self) -> &'static FieldInfo {
                &FIELDS[self.index()]
            }

            /// Dense index `0..COUNT` (column id - 1).
            #[inline]
            pub const fn index(self) -> usize {
                self as usize - 1
            }

            /// The on-disk column id.
            #[inline]
            pub const fn id(self) -> u16 {
                self as u16
            }

            /// The field with this on-disk id, if this build knows it.
            pub fn from_id(id: u16) -> Option<Field> {
                match id {
                    $($id => Some(Field::$variant),)*
                    _ => None,
                }
            }

            /// weir's snake-case name.
            pub fn name(self) -> &'static str {
                self.info().name
            }

            /// In-memory representation.
            pub fn physical(self) -> Physical {
                self.info().physical
            }
        }

        /// The registry: one entry per stored field, indexed by [`Field::index`].
        pub static FIELDS: &[FieldInfo] = &[$(
            FieldInfo {
                field: Field::$variant,
                id: $id,
                name: stringify!($member),
                physical: Physical::$phys,
                ty: FieldType::$ty,
                keyword: $keyword,
                token: $token,
                required: define_fields!(@req $pres),
                doc: $doc,
            },
        )*];

        /// One flow, as decoders produce it and printers consume it.
        ///
        /// Fields nfdump keeps in every record are plain values; all others
        /// are `Option`s, because a record without a field must not match a
        /// filter on it. Addresses are `u128` (IPv4-mapped for IPv4, see
        /// [`crate::ip_to_u128`]), MACs the low 48 bits of a `u64`.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct FlowRecord {
            $(
                #[doc = $doc]
                pub $member: define_fields!(@ty $pres $rty),
            )*
        }

        impl FlowRecord {
            /// The value of `field` widened to `u128`, `None` if absent.
            pub fn get(&self, field: Field) -> Option<u128> {
                match field {
                    $(Field::$variant => define_fields!(@get $pres self.$member),)*
                }
            }

            /// Sets `field` (truncating `value` to the field's Rust type).
            #[allow(clippy::cast_possible_truncation)]
            pub fn set(&mut self, field: Field, value: u128) {
                match field {
                    $(Field::$variant => define_fields!(@set $pres self.$member, $rty, value),)*
                }
            }

            /// Removes an optional field; required fields are set to 0.
            pub fn clear(&mut self, field: Field) {
                match field {
                    $(Field::$variant => define_fields!(@clear $pres self.$member),)*
                }
            }
        }

        /// Collects flows into a column-oriented [`crate::FlowBatch`]: whole
        /// [`FlowRecord`]s with [`BatchBuilder::push`], or column by column
        /// with [`BatchBuilder::push_u64`] / [`BatchBuilder::push_u128`] and
        /// [`BatchBuilder::end_row`] (decoders that skip the row).
        #[derive(Debug)]
        pub struct BatchBuilder {
            rows: usize,
            /// Integer columns by field index (address fields' entries unused).
            u64s: [crate::batch::ColumnBuilder<u64>; Field::COUNT],
            /// Address columns by field index (integer fields' entries unused).
            u128s: [crate::batch::ColumnBuilder<u128>; Field::COUNT],
            /// The last rows written in place: their fields, the row count
            /// after them (`usize::MAX`: none since the last `finish`), and
            /// the room every one of those columns has, so that the next
            /// data set of the same fields right after skips the checks.
            dense_mask: [u64; DENSE_WORDS],
            dense_until: usize,
            dense_room: usize,
        }

        impl Default for BatchBuilder {
            fn default() -> Self {
                BatchBuilder {
                    rows: 0,
                    u64s: std::array::from_fn(|_| Default::default()),
                    u128s: std::array::from_fn(|_| Default::default()),
                    dense_mask: [0; DENSE_WORDS],
                    dense_until: usize::MAX,
                    dense_room: 0,
                }
            }
        }

        impl BatchBuilder {
            /// Appends one row.
            #[inline]
            pub fn push(&mut self, r: &FlowRecord) {
                let row = self.rows;
                $(define_fields!(@push $pres self, Field::$variant, row, r.$member, $phys);)*
                self.rows += 1;
            }

            /// Sets integer field `field` of the current row (the one the
            /// next [`BatchBuilder::end_row`] completes). Each field at most
            /// once per row; a field not set has no value in that row
            /// (required fields must be set). Ignored for address fields.
            #[inline]
            pub fn push_u64(&mut self, field: Field, v: u64) {
                debug_assert_eq!(field.physical(), Physical::U64, "{field}");
                self.u64s[field.index()].push_value(self.rows, v);
            }

            /// Sets address field `field` of the current row (see
            /// [`BatchBuilder::push_u64`]). Ignored for integer fields.
            #[inline]
            pub fn push_u128(&mut self, field: Field, v: u128) {
                debug_assert_eq!(field.physical(), Physical::U128, "{field}");
                self.u128s[field.index()].push_value(self.rows, v);
            }

            /// Prepares `n` rows in which exactly `fields` have a value,
            /// each set in place (rows `len()..len() + n`: by row with
            /// [`BatchBuilder::set_u64_at`] / [`BatchBuilder::set_u128_at`],
            /// by column through [`BatchBuilder::window_u64`] and the
            /// like), then completed by [`BatchBuilder::end_dense`]: no
            /// per-value checks. `false` (use the pushes) if one of those
            /// columns lacks a value in a row so far. Right after
            /// `end_dense` of the same set of fields, with room left, this
            /// checks nothing.
            pub fn begin_dense(&mut self, n: usize, fields: &DenseFields) -> bool {
                let row = self.rows;
                // Right after rows of the same fields, every one of those
                // columns is filled up to here, without gaps.
                if self.dense_until == row
                    && row + n <= self.dense_room
                    && self.dense_mask == fields.mask
                {
                    return true;
                }
                self.dense_until = usize::MAX;
                let ok = fields.u64s.iter().all(|f| self.u64s[f.index()].make_room(row, n))
                    && fields.u128s.iter().all(|f| self.u128s[f.index()].make_room(row, n));
                if ok {
                    self.dense_mask = fields.mask;
                    let r64 = fields.u64s.iter().map(|f| self.u64s[f.index()].room());
                    let r128 = fields.u128s.iter().map(|f| self.u128s[f.index()].room());
                    self.dense_room = r64.chain(r128).min().unwrap_or(0);
                }
                ok
            }

            /// Sets integer field `field` of row `row` (see
            /// [`BatchBuilder::begin_dense`]).
            #[inline(always)]
            pub fn set_u64_at(&mut self, field: Field, row: usize, v: u64) {
                self.u64s[field.index()].set_at(row, v);
            }

            /// Sets address field `field` of row `row` (see
            /// [`BatchBuilder::begin_dense`]).
            #[inline(always)]
            pub fn set_u128_at(&mut self, field: Field, row: usize, v: u128) {
                self.u128s[field.index()].set_at(row, v);
            }

            /// Rows `row..row + n` of integer field `field`, to be set in
            /// place (see [`BatchBuilder::begin_dense`]).
            #[inline]
            pub fn window_u64(&mut self, field: Field, row: usize, n: usize) -> &mut [u64] {
                self.u64s[field.index()].window(row, n)
            }

            /// Rows `row..row + n` of two different integer fields at once
            /// (see [`BatchBuilder::window_u64`]); `None` if `a == b`.
            #[inline]
            pub fn windows_u64(
                &mut self,
                a: Field,
                b: Field,
                row: usize,
                n: usize,
            ) -> Option<(&mut [u64], &mut [u64])> {
                let [x, y] = self.u64s.get_disjoint_mut([a.index(), b.index()]).ok()?;
                Some((x.window(row, n), y.window(row, n)))
            }

            /// Rows `row..row + n` of address field `field`, to be set in
            /// place (see [`BatchBuilder::begin_dense`]).
            #[inline]
            pub fn window_u128(&mut self, field: Field, row: usize, n: usize) -> &mut [u128] {
                self.u128s[field.index()].window(row, n)
            }

            /// Sets integer field `field` of rows `row..row + n` to `v`
            /// (see [`BatchBuilder::begin_dense`]).
            #[inline]
            pub fn fill_u64_at(&mut self, field: Field, row: usize, n: usize, v: u64) {
                self.u64s[field.index()].fill_at(row, n, v);
            }

            /// Sets address field `field` of rows `row..row + n` to `v`
            /// (see [`BatchBuilder::begin_dense`]).
            #[inline]
            pub fn fill_u128_at(&mut self, field: Field, row: usize, n: usize, v: u128) {
                self.u128s[field.index()].fill_at(row, n, v);
            }

            /// Completes the `n` rows of [`BatchBuilder::begin_dense`].
            pub fn end_dense(&mut self, n: usize, fields: &DenseFields) {
                let rows = self.rows + n;
                for f in &fields.u64s {
                    self.u64s[f.index()].filled_to(rows);
                }
                for f in &fields.u128s {
                    self.u128s[f.index()].filled_to(rows);
                }
                self.rows = rows;
                self.dense_until = rows;
            }

            /// Completes the row begun by `push_u64` / `push_u128` calls.
            #[inline]
            pub fn end_row(&mut self) {
                self.rows += 1;
            }

            /// Rows pushed since the last [`BatchBuilder::finish`].
            pub fn len(&self) -> usize {
                self.rows
            }

            /// Whether no row has been pushed.
            pub fn is_empty(&self) -> bool {
                self.rows == 0
            }

            /// Returns the memory of a finished batch for the next one.
            pub fn recycle(&mut self, batch: &mut crate::FlowBatch) {
                self.dense_until = usize::MAX;
                for f in Field::ALL {
                    if let Some(col) = batch.take_column(*f) {
                        match f.physical() {
                            Physical::U64 => self.u64s[f.index()].recycle(col),
                            Physical::U128 => self.u128s[f.index()].recycle(col),
                        }
                    }
                }
            }

            /// Takes the rows pushed so far as a batch and starts over.
            /// Columns without any value are left out of the batch.
            pub fn finish(&mut self) -> crate::FlowBatch {
                let mut batch = crate::FlowBatch::new(self.rows);
                for f in Field::ALL {
                    let col = match f.physical() {
                        Physical::U64 => self.u64s[f.index()].take(self.rows),
                        Physical::U128 => self.u128s[f.index()].take(self.rows),
                    };
                    if let Some(col) = col {
                        batch.set_column(*f, col);
                    }
                }
                // Values pushed to the wrong kind of column are dropped.
                for f in Field::ALL {
                    match f.physical() {
                        Physical::U64 => drop(self.u128s[f.index()].take(self.rows)),
                        Physical::U128 => drop(self.u64s[f.index()].take(self.rows)),
                    }
                }
                self.rows = 0;
                self.dense_until = usize::MAX;
                batch
            }
        }
    };
    (@req req) => { true };
    (@req opt) => { false };
    (@ty req $t:ty) => { $t };
    (@ty opt $t:ty) => { Option<$t> };
    (@phys U64) => { u64 };
    (@phys U128) => { u128 };
    (@get req $e:expr) => { Some($e as u128) };
    (@get opt $e:expr) => { $e.map(|v| v as u128) };
    (@set req $e:expr, $t:ty, $v:expr) => { $e = $v as $t };
    (@set opt $e:expr, $t:ty, $v:expr) => { $e = Some($v as $t) };
    (@clear req $e:expr) => { $e = Default::default() };
    (@clear opt $e:expr) => { $e = None };
    (@push req $s:ident, $f:expr, $row:expr, $v:expr, U64) => { $s.u64s[$f.index()].push_value($row, $v as u64) };
    (@push req $s:ident, $f:expr, $row:expr, $v:expr, U128) => { $s.u128s[$f.index()].push_value($row, $v as u128) };
    (@push opt $s:ident, $f:expr, $row:expr, $v:expr, U64) => { $s.u64s[$f.index()].push($row, $v.map(|x| x as u64)) };
    (@push opt $s:ident, $f:expr, $row:expr, $v:expr, U128) => { $s.u128s[$f.index()].push($row, $v.map(|x| x as u128)) };
}

/// Words of a [`DenseFields`] bit set.
const DENSE_WORDS: usize = Field::COUNT.div_ceil(64);

/// The fields that rows written in place all set
/// ([`BatchBuilder::begin_dense`]), by physical type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenseFields {
    u64s: Vec<Field>,
    u128s: Vec<Field>,
    /// The same set as bits by field index (compared in one go).
    mask: [u64; DENSE_WORDS],
}

impl DenseFields {
    /// The set of `fields` (repeats ignored).
    pub fn new(fields: impl IntoIterator<Item = Field>) -> DenseFields {
        let mut d = DenseFields { u64s: Vec::new(), u128s: Vec::new(), mask: [0; DENSE_WORDS] };
        for f in fields {
            let (w, bit) = (f.index() / 64, 1u64 << (f.index() % 64));
            if d.mask[w] & bit == 0 {
                d.mask[w] |= bit;
                match f.physical() {
                    Physical::U64 => d.u64s.push(f),
                    Physical::U128 => d.u128s.push(f),
                }
            }
        }
        d
    }

    /// Whether `field` is in the set.
    pub fn contains(&self, field: Field) -> bool {
        self.mask[field.index() / 64] & (1u64 << (field.index() % 64)) != 0
    }
}

define_fields! {
    First = 1, first: u64, req, U64, TimeMs, "first seen", "%ts", "Time the first packet of the flow was seen (ms since the epoch).";
    Last = 2, last: u64, req, U64, TimeMs, "last seen", "%te", "Time the last packet of the flow was seen (ms since the epoch).";
    Received = 3, received: u64, req, U64, TimeMs, "", "%tr", "Time the collector received the flow (ms since the epoch).";
    SrcAddr = 4, src_addr: u128, opt, U128, Ip, "src ip", "%sa", "Source IP address.";
    DstAddr = 5, dst_addr: u128, opt, U128, Ip, "dst ip", "%da", "Destination IP address.";
    SrcPort = 6, src_port: u16, req, U64, Port, "src port", "%sp", "Source transport port.";
    DstPort = 7, dst_port: u16, req, U64, Port, "dst port", "%dp", "Destination port; for ICMP type << 8 | code.";
    Proto = 8, proto: u8, req, U64, Proto, "proto", "%pr", "IP protocol number.";
    TcpFlags = 9, tcp_flags: u8, req, U64, TcpFlags, "flags", "%flg", "Cumulative TCP flags.";
    SrcTos = 10, src_tos: u8, req, U64, U8, "src tos", "%stos", "Type of service of the source side.";
    DstTos = 11, dst_tos: u8, opt, U64, U8, "dst tos", "%dtos", "Type of service of the destination side.";
    Packets = 12, packets: u64, req, U64, U64, "packets", "%pkt", "Packets (in direction).";
    Bytes = 13, bytes: u64, req, U64, U64, "bytes", "%byt", "Bytes (in direction).";
    OutPackets = 14, out_packets: u64, opt, U64, U64, "out packets", "%opkt", "Packets in the reverse direction of a bidirectional flow.";
    OutBytes = 15, out_bytes: u64, opt, U64, U64, "out bytes", "%obyt", "Bytes in the reverse direction of a bidirectional flow.";
    Flows = 16, flows: u64, opt, U64, U64, "flows", "%fl", "Number of flows aggregated into this record (absent = 1).";
    InputIf = 17, input_if: u32, opt, U64, U32, "in if", "%in", "Input interface (SNMP ifIndex).";
    OutputIf = 18, output_if: u32, opt, U64, U32, "out if", "%out", "Output interface (SNMP ifIndex).";
    SrcAs = 19, src_as: u32, opt, U64, U32, "src as", "%sas", "Source autonomous system.";
    DstAs = 20, dst_as: u32, opt, U64, U32, "dst as", "%das", "Destination autonomous system.";
    NextAs = 21, next_as: u32, opt, U64, U32, "next as", "%nas", "Next adjacent autonomous system.";
    PrevAs = 22, prev_as: u32, opt, U64, U32, "prev as", "%pas", "Previous adjacent autonomous system.";
    NextHop = 23, next_hop: u128, opt, U128, Ip, "next ip", "%nh", "IP next hop.";
    BgpNextHop = 24, bgp_next_hop: u128, opt, U128, Ip, "bgp next ip", "%nhb", "BGP next hop.";
    SrcMask = 25, src_mask: u8, opt, U64, U8, "src mask", "%smk", "Source prefix length.";
    DstMask = 26, dst_mask: u8, opt, U64, U8, "dst mask", "%dmk", "Destination prefix length.";
    SrcVlan = 27, src_vlan: u16, opt, U64, U16, "src vlan", "%svln", "Source VLAN id.";
    DstVlan = 28, dst_vlan: u16, opt, U64, U16, "dst vlan", "%dvln", "Destination VLAN id.";
    InSrcMac = 29, in_src_mac: u64, opt, U64, Mac, "in src mac", "%ismc", "Incoming source MAC address.";
    OutDstMac = 30, out_dst_mac: u64, opt, U64, Mac, "out dst mac", "%odmc", "Outgoing destination MAC address.";
    InDstMac = 31, in_dst_mac: u64, opt, U64, Mac, "in dst mac", "%idmc", "Incoming destination MAC address.";
    OutSrcMac = 32, out_src_mac: u64, opt, U64, Mac, "out src mac", "%osmc", "Outgoing source MAC address.";
    Mpls1 = 33, mpls1: u32, opt, U64, Mpls, "mpls label1", "%mpls1", "MPLS label stack entry 1 (top).";
    Mpls2 = 34, mpls2: u32, opt, U64, Mpls, "mpls label2", "%mpls2", "MPLS label stack entry 2.";
    Mpls3 = 35, mpls3: u32, opt, U64, Mpls, "mpls label3", "%mpls3", "MPLS label stack entry 3.";
    Mpls4 = 36, mpls4: u32, opt, U64, Mpls, "mpls label4", "%mpls4", "MPLS label stack entry 4.";
    Mpls5 = 37, mpls5: u32, opt, U64, Mpls, "mpls label5", "%mpls5", "MPLS label stack entry 5.";
    Mpls6 = 38, mpls6: u32, opt, U64, Mpls, "mpls label6", "%mpls6", "MPLS label stack entry 6.";
    Mpls7 = 39, mpls7: u32, opt, U64, Mpls, "mpls label7", "%mpls7", "MPLS label stack entry 7.";
    Mpls8 = 40, mpls8: u32, opt, U64, Mpls, "mpls label8", "%mpls8", "MPLS label stack entry 8.";
    Mpls9 = 41, mpls9: u32, opt, U64, Mpls, "mpls label9", "%mpls9", "MPLS label stack entry 9.";
    Mpls10 = 42, mpls10: u32, opt, U64, Mpls, "mpls label10", "%mpls10", "MPLS label stack entry 10.";
    Direction = 43, direction: u8, opt, U64, U8, "flowdir", "%dir", "Flow direction: 0 ingress, 1 egress.";
    FwdStatus = 44, fwd_status: u8, opt, U64, U8, "fwdstat", "%fwd", "Forwarding status (RFC 7270).";
    EngineType = 45, engine_type: u8, opt, U64, U8, "engine-type", "%eng", "Exporter engine type.";
    EngineId = 46, engine_id: u8, opt, U64, U8, "engine-id", "%eng", "Exporter engine id.";
    ExporterAddr = 47, exporter_addr: u128, opt, U128, Ip, "router ip", "%ra", "Address of the exporter that sent the flow.";
    ExporterId = 48, exporter_id: u16, opt, U64, U16, "exporter id", "%exp", "Exporter sysid: index into the file's exporter table.";
    SamplingRate = 49, sampling_rate: u32, opt, U64, U32, "", "", "Packet sampling rate applied by the exporter (1 in N).";
    FlowVersion = 50, flow_version: u8, opt, U64, U8, "", "%nfv", "Export protocol: 1, 5, 7, 9, 10 (IPFIX) or 0x85 (sFlow v5).";
    ObsDomain = 51, obs_domain: u32, opt, U64, U32, "observation domain id", "%odid", "v9 source id / IPFIX observation domain id.";
    EndReason = 52, end_reason: u8, opt, U64, U8, "", "%end", "Flow end reason (IPFIX IE 136).";
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Field {
    type Err = UnknownField;

    /// Parses weir's snake-case name (case-insensitive).
    fn from_str(s: &str) -> Result<Field, UnknownField> {
        FIELDS
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(s))
            .map(|i| i.field)
            .ok_or_else(|| UnknownField(s.to_string()))
    }
}

impl FlowRecord {
    /// The MPLS label stack entries, top first (`mpls1` ..= `mpls10`).
    pub fn mpls(&self) -> [Option<u32>; 10] {
        [
            self.mpls1,
            self.mpls2,
            self.mpls3,
            self.mpls4,
            self.mpls5,
            self.mpls6,
            self.mpls7,
            self.mpls8,
            self.mpls9,
            self.mpls10,
        ]
    }

    /// The MPLS label stack entries to set, top first.
    pub fn mpls_mut(&mut self) -> [&mut Option<u32>; 10] {
        [
            &mut self.mpls1,
            &mut self.mpls2,
            &mut self.mpls3,
            &mut self.mpls4,
            &mut self.mpls5,
            &mut self.mpls6,
            &mut self.mpls7,
            &mut self.mpls8,
            &mut self.mpls9,
            &mut self.mpls10,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_match_index() {
        for (i, info) in FIELDS.iter().enumerate() {
            assert_eq!(info.id as usize, i + 1, "{}", info.name);
            assert_eq!(info.field.index(), i);
            assert_eq!(Field::from_id(info.id), Some(info.field));
        }
        assert_eq!(Field::from_id(0), None);
        assert_eq!(Field::from_id(Field::COUNT as u16 + 1), None);
    }

    #[test]
    fn names_and_tokens_are_unique() {
        let mut names: Vec<_> =
            FIELDS.iter().map(|i| i.name).chain(ATTRS.iter().map(|a| a.name)).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
        // %eng is shared by engine type and id (nfdump prints "type/id").
        let mut tokens: Vec<_> =
            FIELDS.iter().map(|i| i.token).filter(|t| !t.is_empty() && *t != "%eng").collect();
        tokens.sort_unstable();
        let before = tokens.len();
        tokens.dedup();
        assert_eq!(before, tokens.len());
    }

    #[test]
    fn name_round_trip() {
        for f in Field::ALL {
            assert_eq!(f.name().parse::<Field>().unwrap(), *f);
        }
        assert!("no_such_field".parse::<Field>().is_err());
    }

    #[test]
    fn get_set_clear_round_trip() {
        let mut r = FlowRecord::default();
        for f in Field::ALL {
            let max = f.info().ty.max_value();
            r.set(*f, max);
            assert_eq!(r.get(*f), Some(max), "{f}");
            r.clear(*f);
            let expect = if f.info().required { Some(0) } else { None };
            assert_eq!(r.get(*f), expect, "{f}");
        }
    }
}
