//! Column access and aggregation key components.

use weir_record::{Bitmap, Column, Field, FlowBatch, FlowRecord, Values, is_ipv4_mapped};

use crate::model::AggKey;
use crate::stats::absent_value;

/// A borrowed column, or "no row has it".
#[derive(Clone, Copy)]
pub(crate) enum Col<'a> {
    Absent,
    U64(&'a [u64], Option<&'a Bitmap>),
    U128(&'a [u128], Option<&'a Bitmap>),
}

impl<'a> Col<'a> {
    pub fn of(batch: &'a FlowBatch, f: Field) -> Col<'a> {
        match batch.column(f) {
            None => Col::Absent,
            Some(Column { values: Values::U64(v), validity }) => Col::U64(v, validity.as_ref()),
            Some(Column { values: Values::U128(v), validity }) => Col::U128(v, validity.as_ref()),
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<u128> {
        match *self {
            Col::Absent => None,
            Col::U64(v, b) => {
                if b.is_some_and(|b| !b.get(i)) {
                    None
                } else {
                    v.get(i).map(|x| *x as u128)
                }
            }
            Col::U128(v, b) => {
                if b.is_some_and(|b| !b.get(i)) {
                    None
                } else {
                    v.get(i).copied()
                }
            }
        }
    }

    /// A required u64 column's value (0 when missing).
    #[inline]
    pub fn u64_or(&self, i: usize, default: u64) -> u64 {
        match *self {
            Col::U64(v, None) => v.get(i).copied().unwrap_or(default),
            _ => self.get(i).map_or(default, |x| x as u64),
        }
    }
}

/// Keeps the top `total` bits of `v`.
#[inline]
pub(crate) fn keep_bits(v: u128, total: u32) -> u128 {
    if total == 0 {
        0
    } else if total >= 128 {
        v
    } else {
        v & (u128::MAX << (128 - total))
    }
}

/// One aggregation key component. An absent plain field counts as 0 (an
/// absent address as 0.0.0.0), as in nfdump; a prefix key of the other
/// address family stays absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comp {
    Field(Field),
    Prefix { field: Field, ipv6: bool, bits: u8 },
    Net { addr: Field, mask: Field },
}

impl Comp {
    pub fn from_key(k: &AggKey) -> Comp {
        match *k {
            AggKey::Field(f) => Comp::Field(f),
            AggKey::Prefix { field, ipv6, bits } => Comp::Prefix { field, ipv6, bits },
            AggKey::SrcNet => Comp::Net { addr: Field::SrcAddr, mask: Field::SrcMask },
            AggKey::DstNet => Comp::Net { addr: Field::DstAddr, mask: Field::DstMask },
        }
    }

    /// The components of a key list; empty = the 5-tuple.
    pub fn list(keys: &[AggKey]) -> Vec<Comp> {
        if keys.is_empty() {
            [Field::Proto, Field::SrcAddr, Field::DstAddr, Field::SrcPort, Field::DstPort]
                .into_iter()
                .map(Comp::Field)
                .collect()
        } else {
            keys.iter().map(Comp::from_key).collect()
        }
    }

    pub fn fields(&self, out: &mut Vec<Field>) {
        match *self {
            Comp::Field(f) | Comp::Prefix { field: f, .. } => out.push(f),
            Comp::Net { addr, mask } => {
                out.push(addr);
                out.push(mask);
            }
        }
    }

    /// The same component on the other side (source <-> destination).
    pub fn mirror(&self) -> Comp {
        match *self {
            Comp::Field(f) => Comp::Field(mirror_field(f)),
            Comp::Prefix { field, ipv6, bits } => {
                Comp::Prefix { field: mirror_field(field), ipv6, bits }
            }
            Comp::Net { addr, mask } => {
                Comp::Net { addr: mirror_field(addr), mask: mirror_field(mask) }
            }
        }
    }

    /// The value of this component for row `i`.
    #[inline]
    pub fn value(&self, cols: &[Col<'_>; 2], i: usize) -> Option<u128> {
        match *self {
            Comp::Field(f) => Some(cols[0].get(i).unwrap_or_else(|| absent_value(f))),
            Comp::Prefix { ipv6, bits, .. } => {
                let v = cols[0].get(i)?;
                if is_ipv4_mapped(v) == ipv6 {
                    return None;
                }
                let total = if ipv6 { u32::from(bits) } else { 96 + u32::from(bits) };
                Some(keep_bits(v, total))
            }
            Comp::Net { addr, .. } => {
                let v = cols[0].get(i).unwrap_or_else(|| absent_value(addr));
                let m = cols[1].get(i).unwrap_or(0) as u32;
                let total = if is_ipv4_mapped(v) { 96 + m.min(32) } else { m.min(128) };
                Some(keep_bits(v, total))
            }
        }
    }

    /// The columns of a batch this component reads.
    pub fn cols<'a>(&self, batch: &'a FlowBatch) -> [Col<'a>; 2] {
        match *self {
            Comp::Field(f) | Comp::Prefix { field: f, .. } => [Col::of(batch, f), Col::Absent],
            Comp::Net { addr, mask } => [Col::of(batch, addr), Col::of(batch, mask)],
        }
    }

    /// The value as it would be computed from a record.
    #[cfg(test)]
    pub fn value_of(&self, r: &FlowRecord) -> Option<u128> {
        match *self {
            Comp::Field(f) => Some(r.get(f).unwrap_or_else(|| absent_value(f))),
            Comp::Prefix { field, ipv6, bits } => {
                let v = r.get(field)?;
                if is_ipv4_mapped(v) == ipv6 {
                    return None;
                }
                let total = if ipv6 { u32::from(bits) } else { 96 + u32::from(bits) };
                Some(keep_bits(v, total))
            }
            Comp::Net { addr, mask } => {
                let v = r.get(addr).unwrap_or_else(|| absent_value(addr));
                let m = r.get(mask).unwrap_or(0) as u32;
                let total = if is_ipv4_mapped(v) { 96 + m.min(32) } else { m.min(128) };
                Some(keep_bits(v, total))
            }
        }
    }

    /// Writes the component into an aggregated record.
    pub fn set(&self, r: &mut FlowRecord, v: u128) {
        match *self {
            Comp::Field(f) => r.set(f, v),
            Comp::Prefix { field, bits, .. } => {
                r.set(field, v);
                let mask = if field == Field::SrcAddr { Field::SrcMask } else { Field::DstMask };
                if r.get(mask).is_none() {
                    r.set(mask, u128::from(bits));
                }
            }
            Comp::Net { addr, .. } => r.set(addr, v),
        }
    }

    /// Also writes the mask of a `srcnet`/`dstnet` component.
    pub fn set_mask_from(&self, r: &mut FlowRecord, mask: Option<u128>) {
        if let (Comp::Net { mask: f, .. }, Some(m)) = (self, mask) {
            r.set(*f, m);
        }
    }
}

/// Source <-> destination.
pub(crate) fn mirror_field(f: Field) -> Field {
    use Field as F;
    match f {
        F::SrcAddr => F::DstAddr,
        F::DstAddr => F::SrcAddr,
        F::SrcPort => F::DstPort,
        F::DstPort => F::SrcPort,
        F::SrcAs => F::DstAs,
        F::DstAs => F::SrcAs,
        F::SrcMask => F::DstMask,
        F::DstMask => F::SrcMask,
        F::SrcVlan => F::DstVlan,
        F::DstVlan => F::SrcVlan,
        F::SrcTos => F::DstTos,
        F::DstTos => F::SrcTos,
        F::InputIf => F::OutputIf,
        F::OutputIf => F::InputIf,
        F::InSrcMac => F::InDstMac,
        F::InDstMac => F::InSrcMac,
        F::OutSrcMac => F::OutDstMac,
        F::OutDstMac => F::OutSrcMac,
        F::PrevAs => F::NextAs,
        F::NextAs => F::PrevAs,
        f => f,
    }
}

/// A fast, well-mixed 64-bit hash step (folded multiply).
#[inline]
pub(crate) fn mix(h: u64, v: u128) -> u64 {
    #[inline]
    fn fold(a: u64, b: u64) -> u64 {
        let p = u128::from(a) * u128::from(b);
        (p as u64) ^ ((p >> 64) as u64)
    }
    let a = fold(h ^ (v as u64), 0x9E37_79B9_7F4A_7C15);
    fold(a ^ ((v >> 64) as u64), 0xD6E8_FEB8_6659_FD93)
}
