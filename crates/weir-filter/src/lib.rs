//! weir's filter language: nfdump 1.7 compatible filter expressions.
//!
//! [`Filter::parse`] turns text such as `proto tcp and dst port in [80 443]`
//! into a typed expression tree ([`Expr`]) whose leaves are [`Predicate`]s
//! on fields of the registry ([`weir_record::Field`]). [`Filter::matches`]
//! is the reference row evaluator; [`Filter::prune`] tells from a block's
//! zone maps whether any of its rows may match.
//!
//! The grammar is `grammar/filter.pest` at the root of the repository; the
//! user documentation is `docs/FILTER.md`.
//!
//! ```
//! use weir_filter::Filter;
//! use weir_record::{FlowRecord, ip_to_u128};
//!
//! let f = Filter::parse("proto tcp and port 80 and not net 10.0.0.0/8").unwrap();
//! let mut r = FlowRecord { proto: 6, src_port: 40000, dst_port: 80, ..Default::default() };
//! r.src_addr = Some(ip_to_u128("192.0.2.1".parse().unwrap()));
//! assert!(f.matches(&r, "ident"));
//!
//! let e = Filter::parse("port 70000").unwrap_err();
//! assert_eq!((e.line, e.column), (1, 6));
//! assert!(e.message.contains("out of range"));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod ast;
mod compile;
mod error;
mod parse;
mod prune;
mod tables;

use std::path::Path;
use std::str::FromStr;

use weir_record::{BlockStats, Field, FlowRecord};

pub use ast::{CmpOp, Expr, MPLS_FIELDS, Net, Operand, Predicate};
pub use compile::CompiledFilter;
pub use error::FilterError;
pub use parse::MAX_INCLUDE_DEPTH;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    expr: Expr,
}

impl Filter {
    /// Parses a filter. `@include FILE` paths are relative to the current
    /// directory.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        Filter::parse_with_includes(text, Path::new("."))
    }

    /// Parses a filter whose `@include FILE` paths are relative to
    /// `base_dir` (an included file's own includes are relative to its
    /// directory). Includes nest at most [`MAX_INCLUDE_DEPTH`] deep.
    pub fn parse_with_includes(text: &str, base_dir: &Path) -> Result<Filter, FilterError> {
        parse::parse_text(text, base_dir, 0).map(|expr| Filter { expr })
    }

    /// The filter that matches every record (`any`).
    pub fn any() -> Filter {
        Filter { expr: Expr::Any }
    }

    /// A filter from an expression tree.
    pub fn from_expr(expr: Expr) -> Filter {
        Filter { expr }
    }

    /// The expression tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether `rec`, read from a file with ident `ident`, matches.
    pub fn matches(&self, rec: &FlowRecord, ident: &str) -> bool {
        self.expr.matches(rec, ident)
    }

    /// The stored columns the filter reads, sorted, without duplicates.
    pub fn fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        self.expr.collect_fields(&mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Compiles the filter for column batches: [`CompiledFilter::eval`]
    /// evaluates it over whole columns, 64 rows per word, with the same
    /// results as [`Filter::matches`] on every row.
    pub fn compile(&self) -> CompiledFilter {
        CompiledFilter::new(&self.expr, self.fields())
    }

    /// Whether the filter reads the file ident.
    pub fn uses_ident(&self) -> bool {
        fn walk(e: &Expr) -> bool {
            match e {
                Expr::Any => false,
                Expr::Not(e) => walk(e),
                Expr::And(v) | Expr::Or(v) => v.iter().any(walk),
                Expr::Predicate(p) => matches!(p, Predicate::Ident(_)),
            }
        }
        walk(&self.expr)
    }

    /// Whether the filter is `any` (matches every record without reading a
    /// column).
    pub fn is_any(&self) -> bool {
        self.expr == Expr::Any
    }

    /// `false` only if no row of a block with these zone maps can match
    /// ("no"); `true` means "maybe". Never `false` for a block holding a
    /// matching row.
    pub fn prune(&self, stats: &BlockStats) -> bool {
        prune::may_match(&self.expr, stats)
    }
}

impl FromStr for Filter {
    type Err = FilterError;

    /// Same as [`Filter::parse`].
    fn from_str(s: &str) -> Result<Filter, FilterError> {
        Filter::parse(s)
    }
}
