//! Block pruning from zone maps: may any row of a block match?
//!
//! For every expression we ask two questions over a block: *may some row make
//! it true* and *may some row make it false*. Both answers are conservative
//! (`true` when unsure), so `not` can swap them and a "no" is always a proof.

use weir_record::{BlockStats, Field, ZoneMap};

use crate::ast::{CmpOp, Expr, Operand, Predicate};

/// The values an operand takes over a block: `None` if no row has one,
/// otherwise a range that holds all of them, and whether some row lacks one.
struct Span {
    range: Option<(u128, u128)>,
    missing: bool,
    /// The range is exact per row (every value in it is a real value bound);
    /// false for derived operands where we only know nothing.
    known: bool,
}

fn zone(stats: &BlockStats, f: Field) -> Option<ZoneMap> {
    match stats.zone(f) {
        Some(z) => Some(*z),
        // Every row has a required field, so a missing zone map can only
        // mean the stats do not cover it: assume any value.
        None if f.info().required && stats.rows > 0 => {
            Some(ZoneMap { min: 0, max: f.info().ty.max_value(), nulls: 1 })
        }
        None => None,
    }
}

fn span(stats: &BlockStats, o: Operand) -> Span {
    let rows = stats.rows;
    let unknown = Span { range: Some((0, u128::MAX)), missing: true, known: false };
    match o {
        Operand::Field(f) => match zone(stats, f) {
            None => Span { range: None, missing: rows > 0, known: true },
            Some(z) => Span { range: Some((z.min, z.max)), missing: z.nulls > 0, known: true },
        },
        Operand::FieldOrZero(f) => match zone(stats, f) {
            None => Span { range: Some((0, 0)), missing: false, known: true },
            Some(z) if z.nulls > 0 => Span { range: Some((0, z.max)), missing: false, known: true },
            Some(z) => Span { range: Some((z.min, z.max)), missing: false, known: true },
        },
        Operand::IcmpType => match zone(stats, Field::DstPort) {
            Some(z) => {
                Span { range: Some((z.min >> 8, z.max >> 8)), missing: z.nulls > 0, known: true }
            }
            None => Span { range: None, missing: rows > 0, known: true },
        },
        Operand::MplsLabel(f) => match zone(stats, f) {
            Some(z) => {
                Span { range: Some((z.min >> 4, z.max >> 4)), missing: z.nulls > 0, known: true }
            }
            None => Span { range: None, missing: rows > 0, known: true },
        },
        Operand::Duration => match (zone(stats, Field::First), zone(stats, Field::Last)) {
            (Some(f), Some(l)) => {
                Span { range: Some((0, l.max.saturating_sub(f.min))), missing: false, known: false }
            }
            _ => unknown,
        },
        _ => unknown,
    }
}

/// The values `op value` accepts, as an inclusive range (`None`: no value).
fn accepted(op: CmpOp, v: u128) -> Option<(u128, u128)> {
    match op {
        CmpOp::Eq => Some((v, v)),
        CmpOp::Lt => v.checked_sub(1).map(|hi| (0, hi)),
        CmpOp::Le => Some((0, v)),
        CmpOp::Gt => v.checked_add(1).map(|lo| (lo, u128::MAX)),
        CmpOp::Ge => Some((v, u128::MAX)),
    }
}

fn overlaps(a: (u128, u128), b: (u128, u128)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

fn inside(a: (u128, u128), b: (u128, u128)) -> bool {
    b.0 <= a.0 && a.1 <= b.1
}

/// May some row make `p` true?
fn pred_may_true(p: &Predicate, stats: &BlockStats) -> bool {
    if stats.rows == 0 {
        return false;
    }
    match p {
        Predicate::Compare { operand, op, value } => {
            let s = span(stats, *operand);
            match (s.range, accepted(*op, *value)) {
                (Some(r), Some(a)) => overlaps(r, a),
                _ => false,
            }
        }
        Predicate::InList { operand, values } => match span(stats, *operand).range {
            Some(r) => values.iter().any(|v| overlaps(r, (*v, *v))),
            None => false,
        },
        Predicate::InNets { field, nets } => match zone(stats, *field) {
            Some(z) => nets.iter().any(|n| overlaps((z.min, z.max), n.range())),
            None => false,
        },
        Predicate::AllBits { operand, mask } => match span(stats, *operand).range {
            Some((_, hi)) => hi >= *mask,
            None => false,
        },
        Predicate::Family { field, .. } => zone(stats, *field).is_some(),
        Predicate::Ident(_) => true,
    }
}

/// May some row make `p` false?
fn pred_may_false(p: &Predicate, stats: &BlockStats) -> bool {
    if stats.rows == 0 {
        return false;
    }
    match p {
        Predicate::Compare { operand, op, value } => {
            let s = span(stats, *operand);
            if s.missing || !s.known {
                return true;
            }
            match (s.range, accepted(*op, *value)) {
                (Some(r), Some(a)) => !inside(r, a),
                _ => true,
            }
        }
        _ => true,
    }
}

fn may(e: &Expr, stats: &BlockStats, want: bool) -> bool {
    if stats.rows == 0 {
        return false;
    }
    match e {
        Expr::Any => want,
        Expr::Not(inner) => may(inner, stats, !want),
        Expr::And(v) => {
            if want {
                v.iter().all(|e| may(e, stats, true))
            } else {
                v.iter().any(|e| may(e, stats, false))
            }
        }
        Expr::Or(v) => {
            if want {
                v.iter().any(|e| may(e, stats, true))
            } else {
                v.iter().all(|e| may(e, stats, false))
            }
        }
        Expr::Predicate(p) => {
            if want {
                pred_may_true(p, stats)
            } else {
                pred_may_false(p, stats)
            }
        }
    }
}

/// Whether some row of a block with these stats may match `e`.
pub(crate) fn may_match(e: &Expr, stats: &BlockStats) -> bool {
    may(e, stats, true)
}
