//! The vectorised evaluator: a [`Filter`](crate::Filter) compiled to
//! predicates over whole column slices.
//!
//! Every leaf fills one `u64` word per 64 rows: the test is computed for each
//! value of a 64-row chunk and packed branch-free (a loop the compiler turns
//! into SIMD), then combined with the column's validity words. `and`, `or`
//! and `not` combine words. The semantics are exactly those of the row
//! evaluator [`Expr::matches`]: a row without the field a predicate reads does
//! not match it (and does match its negation). Required fields (nfdump's
//! generic flow part) and [`Operand::FieldOrZero`] read as 0 where a row or
//! the whole batch has no value, as [`FlowBatch::record`] does.

use weir_record::{Bitmap, Column, Field, FlowBatch, Values};

use crate::ast::{CmpOp, Expr, MPLS_FIELDS, Net, Operand, Predicate};

/// Lists up to this long are tested by a linear OR of compares; longer ones
/// by binary search.
const LINEAR_LIST: usize = 8;
/// Network sets up to this many ranges are tested linearly.
const LINEAR_NETS: usize = 4;

/// A filter compiled for column batches; see [`crate::Filter::compile`].
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    root: Node,
    fields: Vec<Field>,
}

#[derive(Debug, Clone)]
enum Node {
    Const(bool),
    Ident(String),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Leaf(Src, Test),
}

/// Where a leaf's values come from.
#[derive(Debug, Clone, Copy)]
enum Src {
    /// A stored column; `or_zero`: a missing value reads as 0 instead of
    /// failing the test.
    Col { field: Field, or_zero: bool },
    /// A value computed per chunk from several columns.
    Derived(Operand),
}

/// The test applied to each value.
#[derive(Debug, Clone)]
enum Test {
    Cmp(CmpOp, u128),
    /// The sorted list, and its members that fit a `u64`.
    List(Vec<u128>, Vec<u64>),
    /// Every bit of the mask set.
    Bits(u128),
    Nets(NetSet),
    /// IPv6 (`true`) or IPv4-mapped (`false`).
    Family(bool),
}

/// Networks as sorted, disjoint, merged address ranges, plus the networks
/// whose masks are not prefixes (tested one by one).
#[derive(Debug, Clone)]
struct NetSet {
    ranges: Vec<(u128, u128)>,
    /// The ranges' first and last addresses, for the branch-free search.
    lows: Vec<u128>,
    highs: Vec<u128>,
    /// Bucket index over `[lows[0], highs[last]]`: the ranges meeting
    /// bucket `b` (of `1 << shift` addresses) are `starts[b]..=starts[b + 1]`.
    starts: Vec<u32>,
    shift: u32,
    other: Vec<Net>,
}

impl NetSet {
    fn new(nets: &[Net]) -> NetSet {
        let mut ranges = Vec::new();
        let mut other = Vec::new();
        for n in nets {
            // A prefix mask is leading ones then trailing zeros.
            if (!n.mask).wrapping_add(1) & !n.mask == 0 {
                ranges.push(n.range());
            } else {
                other.push(*n);
            }
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        let lows: Vec<u128> = merged.iter().map(|r| r.0).collect();
        let highs: Vec<u128> = merged.iter().map(|r| r.1).collect();
        let (mut starts, mut shift) = (Vec::new(), 0);
        if let (Some(&lo), Some(&hi)) = (lows.first(), highs.last()) {
            let bits = 128 - (hi - lo).leading_zeros();
            let log = (merged.len().next_power_of_two().trailing_zeros() + 2).min(bits).min(20);
            shift = bits - log;
            starts = (0..=(1u128 << log))
                .map(|b| {
                    let first = lo.saturating_add(b << shift);
                    u32::try_from(highs.partition_point(|h| *h < first)).unwrap_or(u32::MAX)
                })
                .collect();
        }
        NetSet { ranges: merged, lows, highs, starts, shift, other }
    }

    #[inline(always)]
    fn contains(&self, v: u128) -> bool {
        let in_range = if self.ranges.len() <= LINEAR_NETS {
            self.ranges.iter().fold(false, |a, &(lo, hi)| a | ((v >= lo) & (v <= hi)))
        } else {
            self.search(v)
        };
        in_range || self.other.iter().any(|n| n.contains(v))
    }
}

impl NetSet {
    /// Whether `v` lies in one of the (more than [`LINEAR_NETS`]) ranges.
    #[inline(always)]
    fn search(&self, v: u128) -> bool {
        let (lows, highs) = (&self.lows, &self.highs);
        let (lo, hi) = (lows[0], highs[highs.len() - 1]);
        if v < lo || v > hi {
            return false;
        }
        let b = ((v - lo) >> self.shift) as usize;
        let first = self.starts[b] as usize;
        let end = (self.starts[b + 1] as usize + 1).min(lows.len());
        if end - first <= 2 {
            // The common case (about one range per bucket): test two
            // entries without branching on how many there are.
            let second = (first + 1).min(end - 1);
            ((lows[first] <= v) & (v <= highs[first]))
                | ((lows[second] <= v) & (v <= highs[second]))
        } else {
            // Branch-free search of the window for the last range starting
            // at or before `v`.
            let mut base = first;
            let mut len = end - first;
            while len > 1 {
                let half = len / 2;
                base = if lows[base + half] <= v { base + half } else { base };
                len -= half;
            }
            (lows[base] <= v) & (v <= highs[base])
        }
    }
}

impl Test {
    /// The result for the value 0 (rows reading as 0).
    fn of_zero(&self) -> bool {
        match self {
            Test::Cmp(op, c) => op.test(0, *c),
            Test::List(v, _) => v.binary_search(&0).is_ok(),
            Test::Bits(m) => *m == 0,
            Test::Nets(n) => n.contains(0),
            Test::Family(v6) => *v6,
        }
    }

    /// Relative cost per row, for ordering the children of `and`.
    fn cost(&self) -> u32 {
        match self {
            Test::Cmp(..) | Test::Bits(_) | Test::Family(_) => 1,
            Test::List(v, _) if v.len() <= LINEAR_LIST => 2,
            Test::List(..) => 4,
            Test::Nets(n) if n.ranges.len() <= LINEAR_NETS && n.other.is_empty() => 3,
            Test::Nets(_) => 6,
        }
    }
}

impl Node {
    fn compile(e: &Expr) -> Node {
        match e {
            Expr::Any => Node::Const(true),
            Expr::Not(e) => match Node::compile(e) {
                Node::Const(b) => Node::Const(!b),
                Node::Not(inner) => *inner,
                n => Node::Not(Box::new(n)),
            },
            Expr::And(v) => {
                let mut kids: Vec<Node> = Vec::new();
                for n in v.iter().map(Node::compile) {
                    match n {
                        Node::Const(true) => {}
                        Node::Const(false) => return Node::Const(false),
                        Node::And(inner) => kids.extend(inner),
                        n => kids.push(n),
                    }
                }
                kids.sort_by_key(Node::cost);
                match kids.len() {
                    0 => Node::Const(true),
                    1 => kids.pop().unwrap_or(Node::Const(true)),
                    _ => Node::And(kids),
                }
            }
            Expr::Or(v) => {
                let mut kids: Vec<Node> = Vec::new();
                for n in v.iter().map(Node::compile) {
                    match n {
                        Node::Const(false) => {}
                        Node::Const(true) => return Node::Const(true),
                        Node::Or(inner) => kids.extend(inner),
                        n => kids.push(n),
                    }
                }
                kids.sort_by_key(Node::cost);
                match kids.len() {
                    0 => Node::Const(false),
                    1 => kids.pop().unwrap_or(Node::Const(false)),
                    _ => Node::Or(kids),
                }
            }
            Expr::Predicate(p) => Node::leaf(p),
        }
    }

    fn leaf(p: &Predicate) -> Node {
        let src = |operand: Operand| match operand {
            Operand::Field(f) => Src::Col { field: f, or_zero: f.info().required },
            Operand::FieldOrZero(f) => Src::Col { field: f, or_zero: true },
            o => Src::Derived(o),
        };
        let col = |f: Field| Src::Col { field: f, or_zero: f.info().required };
        match p {
            Predicate::Compare { operand, op, value } => {
                Node::Leaf(src(*operand), Test::Cmp(*op, *value))
            }
            Predicate::InList { operand, values } => {
                let mut v = values.clone();
                v.sort_unstable();
                v.dedup();
                let v64 = v.iter().filter_map(|x| u64::try_from(*x).ok()).collect();
                Node::Leaf(src(*operand), Test::List(v, v64))
            }
            Predicate::InNets { field, nets } => {
                Node::Leaf(col(*field), Test::Nets(NetSet::new(nets)))
            }
            Predicate::AllBits { operand, mask } => Node::Leaf(src(*operand), Test::Bits(*mask)),
            Predicate::Family { field, v6 } => Node::Leaf(col(*field), Test::Family(*v6)),
            Predicate::Ident(s) => Node::Ident(s.clone()),
        }
    }

    fn cost(&self) -> u32 {
        match self {
            Node::Const(_) | Node::Ident(_) => 0,
            Node::Not(n) => n.cost(),
            Node::And(v) | Node::Or(v) => v.iter().map(Node::cost).sum(),
            Node::Leaf(src, test) => {
                let src_cost = match src {
                    Src::Col { field, .. } => match field.physical() {
                        weir_record::Physical::U64 => 0,
                        weir_record::Physical::U128 => 2,
                    },
                    Src::Derived(Operand::MplsEos) => 16,
                    Src::Derived(Operand::Pps | Operand::Bps) => 12,
                    Src::Derived(_) => 8,
                };
                src_cost + test.cost()
            }
        }
    }
}

impl CompiledFilter {
    pub(crate) fn new(expr: &Expr, fields: Vec<Field>) -> CompiledFilter {
        CompiledFilter { root: Node::compile(expr), fields }
    }

    /// The stored columns the filter reads, sorted, without duplicates.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Evaluates the filter on every row of `batch`, read from a file with
    /// ident `ident`: bit `i` of `out` is set when row `i` matches. `out` is
    /// resized to `batch.rows()` if needed.
    pub fn eval(&self, batch: &FlowBatch, ident: &str, out: &mut Bitmap) {
        let rows = batch.rows();
        if out.len() != rows {
            *out = Bitmap::zeros(rows);
        }
        let ctx = Ctx { batch, ident, rows };
        ctx.node(&self.root, out.words_mut(), None);
    }
}

struct Ctx<'a> {
    batch: &'a FlowBatch,
    ident: &'a str,
    rows: usize,
}

/// The bits of the last word that stand for rows.
#[inline]
fn tail_mask(rows: usize) -> u64 {
    match rows % 64 {
        0 => u64::MAX,
        r => (1u64 << r) - 1,
    }
}

fn fill(out: &mut [u64], v: bool, rows: usize) {
    out.fill(if v { u64::MAX } else { 0 });
    clear_tail(out, rows);
}

#[inline]
fn clear_tail(out: &mut [u64], rows: usize) {
    if let Some(last) = out.last_mut() {
        *last &= tail_mask(rows);
    }
}

/// Packs `f(v)` for every value, 64 per word, bit `i % 64` of word `i / 64`.
/// With `care`, words where `care` is 0 are skipped (left as they are).
#[inline(always)]
fn pack<T: Copy>(vals: &[T], out: &mut [u64], care: Option<&[u64]>, f: impl Fn(T) -> bool) {
    #[inline(always)]
    fn word<T: Copy>(chunk: &[T], f: &impl Fn(T) -> bool) -> u64 {
        let mut x = 0u64;
        if let Ok(full) = <&[T; 64]>::try_from(chunk) {
            for (i, v) in full.iter().enumerate() {
                x |= u64::from(f(*v)) << i;
            }
        } else {
            for (i, v) in chunk.iter().enumerate() {
                x |= u64::from(f(*v)) << i;
            }
        }
        x
    }
    match care {
        None => {
            let chunks = vals.chunks_exact(64);
            let rem = chunks.remainder();
            let mut words = out.iter_mut();
            for (chunk, w) in chunks.zip(&mut words) {
                let mut x = 0u64;
                for (i, v) in chunk.iter().enumerate() {
                    x |= u64::from(f(*v)) << i;
                }
                *w = x;
            }
            if !rem.is_empty()
                && let Some(w) = words.next()
            {
                *w = word(rem, &f);
            }
        }
        Some(care) => {
            for ((w, chunk), c) in out.iter_mut().zip(vals.chunks(64)).zip(care) {
                if *c != 0 {
                    *w = word(chunk, &f);
                }
            }
        }
    }
}

/// Applies `test` to `u64` values (only in the words `care` has bits in).
fn test_u64(test: &Test, vals: &[u64], out: &mut [u64], care: Option<&[u64]>) {
    match test {
        Test::Cmp(op, c) => match u64::try_from(*c) {
            Ok(c) => match op {
                CmpOp::Eq => pack(vals, out, care, |v| v == c),
                CmpOp::Lt => pack(vals, out, care, |v| v < c),
                CmpOp::Gt => pack(vals, out, care, |v| v > c),
                CmpOp::Le => pack(vals, out, care, |v| v <= c),
                CmpOp::Ge => pack(vals, out, care, |v| v >= c),
            },
            // The constant is above every value.
            Err(_) => pack(vals, out, care, |_| matches!(op, CmpOp::Lt | CmpOp::Le)),
        },
        Test::List(_, l) if l.len() <= LINEAR_LIST => {
            pack(vals, out, care, |v| l.iter().fold(false, |a, &x| a | (x == v)));
        }
        Test::List(_, l) => pack(vals, out, care, |v| l.binary_search(&v).is_ok()),
        Test::Bits(m) => match u64::try_from(*m) {
            Ok(m) => pack(vals, out, care, |v| v & m == m),
            Err(_) => pack(vals, out, care, |_| false),
        },
        Test::Nets(n) => pack(vals, out, care, |v| n.contains(u128::from(v))),
        Test::Family(v6) => {
            pack(vals, out, care, |v| weir_record::is_ipv4_mapped(u128::from(v)) != *v6)
        }
    }
}

/// Applies `test` to `u128` values (only in the words `care` has bits in).
fn test_u128(test: &Test, vals: &[u128], out: &mut [u64], care: Option<&[u64]>) {
    match test {
        Test::Cmp(op, c) => {
            let c = *c;
            match op {
                CmpOp::Eq => pack(vals, out, care, |v| v == c),
                CmpOp::Lt => pack(vals, out, care, |v| v < c),
                CmpOp::Gt => pack(vals, out, care, |v| v > c),
                CmpOp::Le => pack(vals, out, care, |v| v <= c),
                CmpOp::Ge => pack(vals, out, care, |v| v >= c),
            }
        }
        Test::List(l, _) if l.len() <= LINEAR_LIST => {
            pack(vals, out, care, |v| l.iter().fold(false, |a, &x| a | (x == v)));
        }
        Test::List(l, _) => pack(vals, out, care, |v| l.binary_search(&v).is_ok()),
        Test::Bits(m) => {
            let m = *m;
            pack(vals, out, care, |v| v & m == m);
        }
        Test::Nets(n) if n.other.is_empty() && n.ranges.len() == 1 => {
            let (lo, hi) = n.ranges[0];
            let span = hi - lo;
            pack(vals, out, care, |v| v.wrapping_sub(lo) <= span);
        }
        Test::Nets(n) if n.other.is_empty() && n.ranges.len() <= LINEAR_NETS => {
            let r = &n.ranges;
            pack(vals, out, care, |v| {
                r.iter().fold(false, |a, &(lo, hi)| a | (v.wrapping_sub(lo) <= hi - lo))
            });
        }
        Test::Nets(n) => pack(vals, out, care, |v| n.contains(v)),
        Test::Family(v6) => pack(vals, out, care, |v| weir_record::is_ipv4_mapped(v) != *v6),
    }
}

/// One 64-row chunk of a `u64` column: values (0 where a row has none) and
/// the validity word. A missing column is all zeros and invalid.
#[inline]
fn load_u64(col: Option<&Column>, start: usize, len: usize, buf: &mut [u64; 64]) -> u64 {
    let Some(col) = col else {
        buf[..len].fill(0);
        return 0;
    };
    let k = start / 64;
    let valid = match &col.validity {
        Some(b) => b.words()[k],
        None => tail_mask_len(len),
    };
    match &col.values {
        Values::U64(v) => buf[..len].copy_from_slice(&v[start..start + len]),
        #[allow(clippy::cast_possible_truncation)]
        Values::U128(v) => {
            for (b, x) in buf[..len].iter_mut().zip(&v[start..start + len]) {
                *b = *x as u64;
            }
        }
    }
    for (i, b) in buf[..len].iter_mut().enumerate() {
        *b &= 0u64.wrapping_sub((valid >> i) & 1);
    }
    valid
}

#[inline]
fn tail_mask_len(len: usize) -> u64 {
    if len >= 64 { u64::MAX } else { (1u64 << len) - 1 }
}

impl Ctx<'_> {
    /// Evaluates `n` into `out`. With `care`, only the words where `care`
    /// is non-zero need be right (the caller ANDs the others away).
    fn node(&self, n: &Node, out: &mut [u64], care: Option<&[u64]>) {
        match n {
            Node::Const(b) => fill(out, *b, self.rows),
            Node::Ident(s) => fill(out, self.ident == s, self.rows),
            Node::Not(inner) => {
                self.node(inner, out, care);
                for w in out.iter_mut() {
                    *w = !*w;
                }
                clear_tail(out, self.rows);
            }
            Node::And(kids) => {
                let mut tmp = vec![0u64; out.len()];
                for (i, k) in kids.iter().enumerate() {
                    if i == 0 {
                        self.node(k, out, care);
                        // Words the caller does not care about: zero, so
                        // that the other children skip them.
                        if let Some(care) = care {
                            for (o, c) in out.iter_mut().zip(care) {
                                *o &= *c;
                            }
                        }
                        continue;
                    }
                    if out.iter().all(|w| *w == 0) {
                        break;
                    }
                    // Later children are needed only where rows still match:
                    // skip the words without any once there are enough.
                    let zero = out.iter().filter(|w| **w == 0).count();
                    let care = (zero * 4 >= out.len()).then_some(&*out);
                    self.node(k, &mut tmp, care);
                    for (o, t) in out.iter_mut().zip(&tmp) {
                        *o &= *t;
                    }
                }
            }
            Node::Or(kids) => {
                let mut tmp = vec![0u64; out.len()];
                let tail = tail_mask(self.rows);
                for (i, k) in kids.iter().enumerate() {
                    if i == 0 {
                        self.node(k, out, care);
                        continue;
                    }
                    if let Some((last, body)) = out.split_last()
                        && *last == tail
                        && body.iter().all(|w| *w == u64::MAX)
                    {
                        break;
                    }
                    self.node(k, &mut tmp, care);
                    for (o, t) in out.iter_mut().zip(&tmp) {
                        *o |= *t;
                    }
                }
            }
            Node::Leaf(Src::Col { field, or_zero }, test) => {
                self.column_leaf(*field, *or_zero, test, out, care);
            }
            Node::Leaf(Src::Derived(op), test) => self.derived_leaf(*op, test, out, care),
        }
    }

    fn column_leaf(
        &self,
        field: Field,
        or_zero: bool,
        test: &Test,
        out: &mut [u64],
        care: Option<&[u64]>,
    ) {
        let Some(col) = self.batch.column(field) else {
            // Every row lacks the field.
            fill(out, or_zero && test.of_zero(), self.rows);
            return;
        };
        match &col.values {
            Values::U64(v) => test_u64(test, v, out, care),
            Values::U128(v) => test_u128(test, v, out, care),
        }
        if let Some(valid) = &col.validity {
            if or_zero {
                let z = if test.of_zero() { u64::MAX } else { 0 };
                for (o, v) in out.iter_mut().zip(valid.words()) {
                    *o = (*o & *v) | (!*v & z);
                }
                clear_tail(out, self.rows);
            } else {
                for (o, v) in out.iter_mut().zip(valid.words()) {
                    *o &= *v;
                }
            }
        }
    }

    fn derived_leaf(&self, op: Operand, test: &Test, out: &mut [u64], care: Option<&[u64]>) {
        let b = self.batch;
        let mut buf = [0u128; 64];
        let mut a = [0u64; 64];
        let mut c = [0u64; 64];
        let mut d = [0u64; 64];
        let cols = |fs: &[Field]| fs.iter().map(|f| b.column(*f)).collect::<Vec<_>>();
        let mpls = cols(&MPLS_FIELDS);
        let (first, last) = (b.column(Field::First), b.column(Field::Last));
        let (packets, bytes) = (b.column(Field::Packets), b.column(Field::Bytes));
        let dport = b.column(Field::DstPort);
        for (k, w) in out.iter_mut().enumerate() {
            if care.is_some_and(|c| c[k] == 0) {
                continue;
            }
            let start = k * 64;
            let len = (self.rows - start).min(64);
            let all = tail_mask_len(len);
            let vals = &mut buf[..len];
            let valid = match op {
                Operand::Duration | Operand::Pps | Operand::Bps => {
                    load_u64(first, start, len, &mut a);
                    load_u64(last, start, len, &mut c);
                    let count = if op == Operand::Pps { packets } else { bytes };
                    load_u64(count, start, len, &mut d);
                    let scale: u128 = if op == Operand::Pps { 1000 } else { 8000 };
                    for (i, v) in vals.iter_mut().enumerate() {
                        let dur = u128::from(c[i].saturating_sub(a[i]));
                        *v = match op {
                            Operand::Duration => dur,
                            _ => (u128::from(d[i]) * scale).checked_div(dur).unwrap_or(0),
                        };
                    }
                    all
                }
                Operand::Bpp => {
                    load_u64(bytes, start, len, &mut a);
                    load_u64(packets, start, len, &mut c);
                    for (i, v) in vals.iter_mut().enumerate() {
                        *v = u128::from(a[i].checked_div(c[i]).unwrap_or(0));
                    }
                    all
                }
                Operand::IcmpType | Operand::IcmpCode => {
                    load_u64(dport, start, len, &mut a);
                    for (i, v) in vals.iter_mut().enumerate() {
                        let p = u128::from(a[i] & 0xffff);
                        *v = if op == Operand::IcmpType { p >> 8 } else { p & 0xff };
                    }
                    all
                }
                Operand::MplsLabel(f) | Operand::MplsExp(f) => {
                    let valid = load_u64(b.column(f), start, len, &mut a);
                    for (i, v) in vals.iter_mut().enumerate() {
                        let e = u128::from(a[i]);
                        *v =
                            if matches!(op, Operand::MplsLabel(_)) { e >> 4 } else { (e >> 1) & 7 };
                    }
                    if f.info().required { all } else { valid }
                }
                Operand::MplsEos => {
                    let mut found = 0u64;
                    vals.fill(0);
                    for col in mpls.iter().flatten() {
                        let valid = load_u64(Some(col), start, len, &mut a);
                        let mut bos = 0u64;
                        for (i, x) in a[..len].iter().enumerate() {
                            bos |= (x & 1) << i;
                        }
                        let take = valid & bos & !found;
                        for (i, v) in vals.iter_mut().enumerate() {
                            let m = 0u128.wrapping_sub(u128::from((take >> i) & 1));
                            *v = (*v & !m) | (u128::from(a[i] >> 4) & m);
                        }
                        found |= take;
                    }
                    found
                }
                Operand::Field(f) | Operand::FieldOrZero(f) => {
                    // Not produced by compile (these are column leaves).
                    let valid = load_u64(b.column(f), start, len, &mut a);
                    for (v, x) in vals.iter_mut().zip(&a) {
                        *v = u128::from(*x);
                    }
                    if f.info().required || matches!(op, Operand::FieldOrZero(_)) {
                        all
                    } else {
                        valid
                    }
                }
            };
            test_u128(test, vals, std::slice::from_mut(w), None);
            *w &= valid;
        }
    }
}
