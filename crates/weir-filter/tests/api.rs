//! The public API: tree shapes, fields, errors, includes.

use std::path::PathBuf;

use weir_filter::{CmpOp, Expr, Filter, Operand, Predicate};
use weir_record::{Field, FlowRecord};

fn cmp(f: Field, op: CmpOp, value: u128) -> Expr {
    Expr::Predicate(Predicate::Compare { operand: Operand::Field(f), op, value })
}

#[test]
fn unqualified_port_is_either_side() {
    let f = Filter::parse("port 80").unwrap();
    assert_eq!(
        f.expr(),
        &Expr::Or(vec![cmp(Field::SrcPort, CmpOp::Eq, 80), cmp(Field::DstPort, CmpOp::Eq, 80)])
    );
    assert_eq!(f.fields(), vec![Field::SrcPort, Field::DstPort]);
}

#[test]
fn flags_imply_tcp_and_icmp_implies_icmp() {
    let f = Filter::parse("flags SA").unwrap();
    assert_eq!(
        f.expr(),
        &Expr::And(vec![
            cmp(Field::Proto, CmpOp::Eq, 6),
            Expr::Predicate(Predicate::AllBits {
                operand: Operand::Field(Field::TcpFlags),
                mask: 18
            }),
        ])
    );
    let f = Filter::parse("icmp-type 8").unwrap();
    assert_eq!(f.fields(), vec![Field::DstPort, Field::Proto]);
}

#[test]
fn precedence_not_and_or() {
    let f = Filter::parse("not proto 1 and proto 6 or proto 17").unwrap();
    let p = |v| cmp(Field::Proto, CmpOp::Eq, v);
    assert_eq!(f.expr(), &Expr::Or(vec![Expr::And(vec![Expr::Not(Box::new(p(1))), p(6)]), p(17)]));
}

#[test]
fn fields_and_ident() {
    let f = Filter::parse("ident foo and (bytes > 1k or duration < 5)").unwrap();
    assert_eq!(f.fields(), vec![Field::First, Field::Last, Field::Bytes]);
    assert!(f.uses_ident());
    assert!(!Filter::parse("any").unwrap().uses_ident());
    assert!(Filter::parse("any").unwrap().fields().is_empty());
    assert_eq!(Filter::any(), Filter::parse("any").unwrap());
}

#[test]
fn pretty_error_has_caret_under_the_column() {
    let e = Filter::parse("proto tcp and port 70000").unwrap_err();
    assert_eq!((e.line, e.column), (1, 20));
    assert_eq!(e.message, "Port number: 70000 out of range (0..65535)");
    assert_eq!(
        e.pretty,
        "filter error: Port number: 70000 out of range (0..65535)\n  proto tcp and port 70000\n                     ^"
    );
    assert_eq!(e.to_string(), "line 1, column 20: Port number: 70000 out of range (0..65535)");
    let e = Filter::parse("proto tcp and\n  pot 80").unwrap_err();
    assert_eq!((e.line, e.column), (2, 3));
    assert!(e.pretty.ends_with("\n    pot 80\n    ^"), "{}", e.pretty);
    assert!(e.message.starts_with("syntax error at 'pot'"), "{}", e.message);
}

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("weir-filter").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn include_files() {
    let d = scratch("include");
    std::fs::write(d.join("web.flt"), "# web ports\nport in [80 443]\n").unwrap();
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/tcp.flt"), "proto tcp and @include ../web.flt").unwrap();
    let f = Filter::parse_with_includes("@include sub/tcp.flt and not port 443", &d).unwrap();
    let r = FlowRecord { proto: 6, dst_port: 80, ..Default::default() };
    assert!(f.matches(&r, ""));
    assert!(!f.matches(&FlowRecord { dst_port: 443, ..r.clone() }, ""));
    // `or` inside an include binds as one term.
    std::fs::write(d.join("or.flt"), "port 1 or port 2").unwrap();
    let f = Filter::parse_with_includes("proto udp and @include or.flt", &d).unwrap();
    assert!(!f.matches(&FlowRecord { proto: 6, dst_port: 2, ..Default::default() }, ""));

    std::fs::write(d.join("bad.flt"), "port 1 and\nport 99999").unwrap();
    let e = Filter::parse_with_includes("any and @include 'bad.flt'", &d).unwrap_err();
    assert_eq!(e.column, 9);
    assert!(e.message.contains("line 2, column 6: Port number: 99999"), "{}", e.message);

    std::fs::write(d.join("loop.flt"), "@include loop.flt").unwrap();
    let e = Filter::parse_with_includes("@include loop.flt", &d).unwrap_err();
    assert!(e.message.contains("nested more than 10 deep"), "{}", e.message);

    let e = Filter::parse_with_includes("@include missing.flt", &d).unwrap_err();
    assert!(e.message.contains("missing.flt"), "{}", e.message);
}

/// Every example in docs/FILTER.md parses (examples are separated by blank
/// lines; `@include` needs a file and is checked by `include_files`).
#[test]
fn documented_examples_parse() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/FILTER.md"),
    )
    .unwrap();
    let block = doc.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    let mut n = 0;
    for example in block.split("\n\n") {
        let text: String =
            example.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
        if text.trim().is_empty() || text.contains("@include") {
            continue;
        }
        Filter::parse(&text).unwrap_or_else(|e| panic!("{text}\n{}", e.pretty));
        n += 1;
    }
    assert!(n >= 15, "{n}");
}

#[test]
fn from_str_and_is_any() {
    let f: Filter = "ANY".parse().unwrap();
    assert!(f.is_any());
    assert!(!"port 1".parse::<Filter>().unwrap().is_any());
    assert!("port".parse::<Filter>().is_err());
}
