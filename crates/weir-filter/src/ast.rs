//! The typed filter tree and its reference row evaluator.
//!
//! Every nfdump primitive is lowered at parse time into [`Expr`] nodes whose
//! leaves are [`Predicate`]s on a single [`Operand`]: `port 80` becomes
//! `src_port == 80 or dst_port == 80`, `flags SA` becomes
//! `proto == 6 and tcp_flags has all of 0x12`. The evaluator below is
//! deliberately plain: it is the oracle the vectorised compiler and the block
//! pruner are tested against.

use weir_record::{Field, FlowRecord, is_ipv4_mapped};

/// A filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Matches every record (`any`).
    Any,
    /// Negation: true where the inner expression is false, including for
    /// records that lack the field the inner predicate reads.
    Not(Box<Expr>),
    /// All of the sub-expressions (at least two).
    And(Vec<Expr>),
    /// Any of the sub-expressions (at least two).
    Or(Vec<Expr>),
    /// A leaf test.
    Predicate(Predicate),
}

/// A comparison operator (`=`/`==`/`eq`, `<`/`lt`, ...). A missing operator
/// means [`CmpOp::Eq`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// Equal.
    Eq,
    /// Less than.
    Lt,
    /// Greater than.
    Gt,
    /// Less than or equal.
    Le,
    /// Greater than or equal.
    Ge,
}

impl CmpOp {
    /// `value OP constant`.
    #[inline]
    pub fn test(self, value: u128, constant: u128) -> bool {
        match self {
            CmpOp::Eq => value == constant,
            CmpOp::Lt => value < constant,
            CmpOp::Gt => value > constant,
            CmpOp::Le => value <= constant,
            CmpOp::Ge => value >= constant,
        }
    }
}

/// The value a predicate reads from a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A stored column; a record without it does not match.
    Field(Field),
    /// A stored column read as 0 when absent (nfdump's AS numbers).
    FieldOrZero(Field),
    /// `last - first` in milliseconds.
    Duration,
    /// Packets per second: `packets * 1000 / duration`, 0 for duration 0.
    Pps,
    /// Bits per second: `bytes * 8000 / duration`, 0 for duration 0.
    Bps,
    /// Bytes per packet: `bytes / packets`, 0 for 0 packets.
    Bpp,
    /// ICMP type: `dst_port >> 8`.
    IcmpType,
    /// ICMP code: `dst_port & 0xff`.
    IcmpCode,
    /// The 20-bit label of an MPLS stack entry (`entry >> 4`).
    MplsLabel(Field),
    /// The 3 experimental bits of an MPLS stack entry (`entry >> 1 & 7`).
    MplsExp(Field),
    /// The label of the first stack entry with the bottom-of-stack bit set;
    /// absent when there is none.
    MplsEos,
}

/// The MPLS stack columns, top first.
pub const MPLS_FIELDS: [Field; 10] = [
    Field::Mpls1,
    Field::Mpls2,
    Field::Mpls3,
    Field::Mpls4,
    Field::Mpls5,
    Field::Mpls6,
    Field::Mpls7,
    Field::Mpls8,
    Field::Mpls9,
    Field::Mpls10,
];

impl Operand {
    /// The operand's value for `rec`, `None` when the record lacks the data.
    pub fn value(self, rec: &FlowRecord) -> Option<u128> {
        let duration = || u128::from(rec.last.saturating_sub(rec.first));
        match self {
            Operand::Field(f) => rec.get(f),
            Operand::FieldOrZero(f) => Some(rec.get(f).unwrap_or(0)),
            Operand::Duration => Some(duration()),
            Operand::Pps => {
                Some((u128::from(rec.packets) * 1000).checked_div(duration()).unwrap_or(0))
            }
            Operand::Bps => {
                Some((u128::from(rec.bytes) * 8000).checked_div(duration()).unwrap_or(0))
            }
            Operand::Bpp => Some(u128::from(rec.bytes.checked_div(rec.packets).unwrap_or(0))),
            Operand::IcmpType => Some(u128::from(rec.dst_port >> 8)),
            Operand::IcmpCode => Some(u128::from(rec.dst_port & 0xff)),
            Operand::MplsLabel(f) => rec.get(f).map(|v| v >> 4),
            Operand::MplsExp(f) => rec.get(f).map(|v| (v >> 1) & 7),
            Operand::MplsEos => {
                MPLS_FIELDS.iter().filter_map(|f| rec.get(*f)).find(|v| v & 1 == 1).map(|v| v >> 4)
            }
        }
    }

    /// The stored columns the operand reads.
    pub fn fields(self) -> Vec<Field> {
        match self {
            Operand::Field(f)
            | Operand::FieldOrZero(f)
            | Operand::MplsLabel(f)
            | Operand::MplsExp(f) => vec![f],
            Operand::Duration => vec![Field::First, Field::Last],
            Operand::Pps => vec![Field::First, Field::Last, Field::Packets],
            Operand::Bps => vec![Field::First, Field::Last, Field::Bytes],
            Operand::Bpp => vec![Field::Packets, Field::Bytes],
            Operand::IcmpType | Operand::IcmpCode => vec![Field::DstPort],
            Operand::MplsEos => MPLS_FIELDS.to_vec(),
        }
    }
}

/// An address network: `addr & mask == net`. Addresses are weir's `u128`
/// form (IPv4 mapped into `::ffff:0:0/96`), so an IPv4 `/24` has a mask of
/// 96 + 24 leading ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Net {
    /// The network address (already masked).
    pub net: u128,
    /// The mask; need not be contiguous (`net A.B.C.D M.M.M.M`).
    pub mask: u128,
}

impl Net {
    /// A single host.
    pub fn host(addr: u128) -> Net {
        Net { net: addr, mask: u128::MAX }
    }

    /// `addr/len` where `len` counts in the 128-bit space.
    pub fn prefix(addr: u128, len: u32) -> Net {
        let mask = if len == 0 { 0 } else { u128::MAX << (128 - len.min(128)) };
        Net { net: addr & mask, mask }
    }

    /// Whether `addr` is inside the network.
    #[inline]
    pub fn contains(&self, addr: u128) -> bool {
        addr & self.mask == self.net
    }

    /// The smallest and largest address inside the network.
    pub fn range(&self) -> (u128, u128) {
        (self.net, self.net | !self.mask)
    }
}

/// A leaf test on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// `operand OP value`.
    Compare {
        /// What is compared.
        operand: Operand,
        /// The operator.
        op: CmpOp,
        /// The constant.
        value: u128,
    },
    /// `operand in [values]`; `values` is sorted and free of duplicates.
    InList {
        /// What is looked up.
        operand: Operand,
        /// The sorted list.
        values: Vec<u128>,
    },
    /// The address in `field` lies in one of `nets`.
    InNets {
        /// An address column.
        field: Field,
        /// The networks (hosts are full-mask networks).
        nets: Vec<Net>,
    },
    /// `operand & mask == mask`: every bit of `mask` is set (`flags SA`).
    AllBits {
        /// What is tested.
        operand: Operand,
        /// The bits that must all be set.
        mask: u128,
    },
    /// The address in `field` is present and of the given family.
    Family {
        /// An address column.
        field: Field,
        /// `true` for IPv6, `false` for IPv4.
        v6: bool,
    },
    /// The file ident equals this string (case-sensitive).
    Ident(String),
}

impl Predicate {
    /// Evaluates the predicate on one record of a file with ident `ident`.
    pub fn matches(&self, rec: &FlowRecord, ident: &str) -> bool {
        match self {
            Predicate::Compare { operand, op, value } => {
                operand.value(rec).is_some_and(|v| op.test(v, *value))
            }
            Predicate::InList { operand, values } => {
                operand.value(rec).is_some_and(|v| values.binary_search(&v).is_ok())
            }
            Predicate::InNets { field, nets } => {
                rec.get(*field).is_some_and(|a| nets.iter().any(|n| n.contains(a)))
            }
            Predicate::AllBits { operand, mask } => {
                operand.value(rec).is_some_and(|v| v & mask == *mask)
            }
            Predicate::Family { field, v6 } => {
                rec.get(*field).is_some_and(|a| is_ipv4_mapped(a) != *v6)
            }
            Predicate::Ident(s) => ident == s,
        }
    }

    /// The stored columns the predicate reads (none for `ident`).
    pub fn fields(&self) -> Vec<Field> {
        match self {
            Predicate::Compare { operand, .. }
            | Predicate::InList { operand, .. }
            | Predicate::AllBits { operand, .. } => operand.fields(),
            Predicate::InNets { field, .. } | Predicate::Family { field, .. } => vec![*field],
            Predicate::Ident(_) => Vec::new(),
        }
    }
}

impl Expr {
    /// Evaluates the expression on one record of a file with ident `ident`.
    pub fn matches(&self, rec: &FlowRecord, ident: &str) -> bool {
        match self {
            Expr::Any => true,
            Expr::Not(e) => !e.matches(rec, ident),
            Expr::And(v) => v.iter().all(|e| e.matches(rec, ident)),
            Expr::Or(v) => v.iter().any(|e| e.matches(rec, ident)),
            Expr::Predicate(p) => p.matches(rec, ident),
        }
    }

    /// Adds the columns the expression reads to `out`.
    pub fn collect_fields(&self, out: &mut Vec<Field>) {
        match self {
            Expr::Any => {}
            Expr::Not(e) => e.collect_fields(out),
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.collect_fields(out)),
            Expr::Predicate(p) => out.extend(p.fields()),
        }
    }

    /// `a and b`, flattening nested ands.
    pub fn and(a: Expr, b: Expr) -> Expr {
        let mut v = Vec::new();
        for e in [a, b] {
            match e {
                Expr::And(inner) => v.extend(inner),
                e => v.push(e),
            }
        }
        Expr::And(v)
    }

    /// `a or b`, flattening nested ors.
    pub fn or(a: Expr, b: Expr) -> Expr {
        let mut v = Vec::new();
        for e in [a, b] {
            match e {
                Expr::Or(inner) => v.extend(inner),
                e => v.push(e),
            }
        }
        Expr::Or(v)
    }

    /// Or of several expressions (the single one itself if there is one).
    pub(crate) fn any_of(mut v: Vec<Expr>) -> Expr {
        if v.len() == 1 { v.pop().unwrap_or(Expr::Any) } else { Expr::Or(v) }
    }

    /// Shorthand for a comparison leaf.
    pub(crate) fn cmp(operand: Operand, op: CmpOp, value: u128) -> Expr {
        Expr::Predicate(Predicate::Compare { operand, op, value })
    }
}
