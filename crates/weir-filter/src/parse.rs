//! From text to [`Expr`]: the pest parser and the walker that lowers every
//! nfdump primitive into typed predicates on registry fields.

use std::path::{Path, PathBuf};

use pest::Parser as _;
use pest::iterators::Pair;
use weir_record::{Field, ip_to_u128};

use crate::ast::{CmpOp, Expr, MPLS_FIELDS, Net, Operand, Predicate};
use crate::error::FilterError;
use crate::tables::{fwd_status_by_name, proto_by_name};

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/filter.pest"]
struct FilterParser;

/// Deepest `@include` nesting accepted (nfdump's limit).
pub const MAX_INCLUDE_DEPTH: usize = 10;

/// A semantic error at a byte offset of the text being parsed.
struct SemErr {
    pos: usize,
    msg: String,
}

type R<T> = Result<T, SemErr>;

fn err<T>(pos: usize, msg: impl Into<String>) -> R<T> {
    Err(SemErr { pos, msg: msg.into() })
}

/// Parses `text`; `@include` paths are relative to `base` and nest at most
/// [`MAX_INCLUDE_DEPTH`] deep.
pub(crate) fn parse_text(text: &str, base: &Path, depth: usize) -> Result<Expr, FilterError> {
    let mut pairs = FilterParser::parse(Rule::filter, text).map_err(|e| syntax_error(text, &e))?;
    let filter = pairs.next().expect("filter rule");
    let expr = filter.into_inner().next().expect("expr");
    let walker = Walker { base, depth };
    walker.expr(expr).map_err(|e| FilterError::at(text, e.pos, e.msg))
}

fn syntax_error(text: &str, e: &pest::error::Error<Rule>) -> FilterError {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((p, _)) => p,
    };
    let rest = &text[pos.min(text.len())..];
    let token: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && !"()[],".contains(*c))
        .take(40)
        .collect::<String>();
    let token = match rest.chars().next() {
        Some(c) if token.is_empty() && !c.is_whitespace() => c.to_string(),
        _ => token,
    };
    let at =
        if rest.trim().is_empty() { "end of filter".to_string() } else { format!("'{token}'") };
    let mut expected: Vec<String> = Vec::new();
    if let pest::error::ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for r in positives {
            let n = expected_name(*r);
            if !expected.contains(&n) {
                expected.push(n);
            }
        }
    }
    if let Some(i) = expected.iter().position(|e| e == "a filter term") {
        let term = expected.remove(i);
        expected.insert(0, term);
    }
    let msg = if expected.is_empty() || expected.len() > 8 {
        format!("syntax error at {at}")
    } else {
        format!("syntax error at {at}, expected {}", expected.join(" or "))
    };
    FilterError::at(text, pos, msg)
}

fn expected_name(r: Rule) -> String {
    let s = match r {
        Rule::number => "a number",
        Rule::string => "a value",
        Rule::address => "an IP address or network",
        Rule::num_list => "a list '[ ... ]'",
        Rule::addr_list => "a list of addresses '[ ... ]'",
        Rule::cmp => "a comparison",
        Rule::EOI => "end of filter",
        Rule::rparen => "')'",
        Rule::flag_letters | Rule::flag_exact => "TCP flags (FSRPAUECX)",
        Rule::mpls_label | Rule::mpls_exp | Rule::mpls_eos | Rule::mpls_any => {
            "'labelN', 'expN', 'eos' or 'any'"
        }
        Rule::dir_word => "'ingress' or 'egress'",
        Rule::include_path => "a file name",
        r => {
            let name = format!("{r:?}");
            return match name.strip_prefix("kw_") {
                Some(kw) => format!("'{kw}'"),
                None => "a filter term".to_string(),
            };
        }
    };
    s.to_string()
}

struct Walker<'a> {
    base: &'a Path,
    depth: usize,
}

fn pos(p: &Pair<'_, Rule>) -> usize {
    p.as_span().start()
}

fn has(parts: &[Pair<'_, Rule>], r: Rule) -> bool {
    parts.iter().any(|p| p.as_rule() == r)
}

fn find<'i>(parts: &[Pair<'i, Rule>], r: Rule) -> Option<Pair<'i, Rule>> {
    parts.iter().find(|p| p.as_rule() == r).cloned()
}

impl Walker<'_> {
    fn expr(&self, p: Pair<'_, Rule>) -> R<Expr> {
        match p.as_rule() {
            Rule::expr => {
                let mut out: Option<Expr> = None;
                for c in p.into_inner().filter(|c| c.as_rule() == Rule::and_expr) {
                    let e = self.expr(c)?;
                    out = Some(match out {
                        None => e,
                        Some(a) => Expr::or(a, e),
                    });
                }
                Ok(out.expect("or has operands"))
            }
            Rule::and_expr => {
                let mut out: Option<Expr> = None;
                for c in p.into_inner().filter(|c| c.as_rule() == Rule::not_expr) {
                    let e = self.expr(c)?;
                    out = Some(match out {
                        None => e,
                        Some(a) => Expr::and(a, e),
                    });
                }
                Ok(out.expect("and has operands"))
            }
            Rule::not_expr => {
                let mut nots = 0;
                let mut inner = None;
                for c in p.into_inner() {
                    if c.as_rule() == Rule::op_not {
                        nots += 1;
                    } else if c.as_rule() != Rule::rparen {
                        inner = Some(self.expr(c)?);
                    }
                }
                let mut e = inner.expect("primary");
                for _ in 0..nots {
                    e = Expr::Not(Box::new(e));
                }
                Ok(e)
            }
            Rule::include => self.include(p),
            Rule::unsupported => Err(unsupported(p)),
            _ => term(p),
        }
    }

    fn include(&self, p: Pair<'_, Rule>) -> R<Expr> {
        let at = pos(&p);
        let raw = p.into_inner().next().expect("path").as_str();
        let name = unquote(raw);
        if self.depth >= MAX_INCLUDE_DEPTH {
            return err(
                at,
                format!("@include '{name}': nested more than {MAX_INCLUDE_DEPTH} deep"),
            );
        }
        let path: PathBuf = self.base.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SemErr { pos: at, msg: format!("@include '{}': {e}", path.display()) })?;
        let base = path.parent().unwrap_or(self.base);
        parse_text(&text, base, self.depth + 1).map_err(|e| SemErr {
            pos: at,
            msg: format!(
                "in @include '{}', line {}, column {}: {}",
                path.display(),
                e.line,
                e.column,
                e.message
            ),
        })
    }
}

fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

fn unsupported(p: Pair<'_, Rule>) -> SemErr {
    let kw = p
        .clone()
        .into_inner()
        .find(|c| c.as_rule() == Rule::unsupported_kw)
        .expect("unsupported keyword");
    let word = kw.as_str().to_ascii_lowercase();
    let first = word.split_whitespace().next().unwrap_or("").to_string();
    let what = match first.as_str() {
        "nat" | "xlate" => "NAT translation data (NSEL/NEL)",
        "tun" => "tunnel addresses",
        "payload" | "ja3" | "ja4" => "flow payload",
        "geo" => "geo location data",
        "latency" | "client" | "server" => "latency measurements",
        "ttl" | "min" | "max" => "TTL values",
        "vrf" => "VRF ids",
        "pf" => "OpenBSD pflog data",
        "acl" | "ingress" | "egress" => "ACL and VRF data",
        "asa" => "Cisco ASA (NSEL) events",
        "ethertype" => "the ethernet type",
        "count" | "cnt" => "record sequence numbers",
        "observation" => "observation point ids",
        _ => "this data",
    };
    let text = p.as_str().trim();
    SemErr { pos: pos(&kw), msg: format!("'{text}' is not supported: weir does not store {what}") }
}

// ---------------------------------------------------------------- values

fn number(p: &Pair<'_, Rule>) -> R<u128> {
    let s = p.as_str();
    let at = pos(p);
    let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u128::from_str_radix(hex, 16).ok()
    } else {
        let (digits, mult) = match s.as_bytes().last().map(u8::to_ascii_lowercase) {
            Some(b'k') => (&s[..s.len() - 1], 1_000u128),
            Some(b'm') => (&s[..s.len() - 1], 1_000_000),
            Some(b'g') => (&s[..s.len() - 1], 1_000_000_000),
            Some(b't') => (&s[..s.len() - 1], 1_000_000_000_000),
            _ => (s, 1),
        };
        digits.parse::<u128>().ok().and_then(|v| v.checked_mul(mult))
    };
    match parsed {
        Some(v) if v <= u128::from(u64::MAX) => Ok(v),
        _ => err(at, format!("Number {s} out of range")),
    }
}

fn cmp_op(p: Option<Pair<'_, Rule>>) -> CmpOp {
    let Some(p) = p else { return CmpOp::Eq };
    match p.as_str().to_ascii_lowercase().as_str() {
        "<" | "lt" => CmpOp::Lt,
        ">" | "gt" => CmpOp::Gt,
        "<=" | "le" => CmpOp::Le,
        ">=" | "ge" => CmpOp::Ge,
        _ => CmpOp::Eq,
    }
}

fn check_max(v: u128, max: u128, what: &str, at: usize) -> R<u128> {
    if v > max { err(at, format!("{what}: {v} out of range (0..{max})")) } else { Ok(v) }
}

/// `cmp? number` with the number checked against `max`.
fn cmp_value(parts: &[Pair<'_, Rule>], max: u128, what: &str) -> R<(CmpOp, u128)> {
    let n = find(parts, Rule::number).expect("number");
    let v = number(&n)?;
    let v = check_max(v, max, what, pos(&n))?;
    Ok((cmp_op(find(parts, Rule::cmp)), v))
}

fn list_values(list: &Pair<'_, Rule>, max: u128, what: &str) -> R<Vec<u128>> {
    let mut out = Vec::new();
    for n in list.clone().into_inner() {
        let v = number(&n)?;
        out.push(check_max(v, max, what, pos(&n))?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn field_max(f: Field) -> u128 {
    f.info().ty.max_value()
}

/// One comparison (or list lookup) of each operand, OR-ed together.
fn on_each(operands: &[Operand], parts: &[Pair<'_, Rule>], max: u128, what: &str) -> R<Expr> {
    if let Some(list) = find(parts, Rule::num_list) {
        let values = list_values(&list, max, what)?;
        return Ok(Expr::any_of(
            operands
                .iter()
                .map(|o| Expr::Predicate(Predicate::InList { operand: *o, values: values.clone() }))
                .collect(),
        ));
    }
    let (op, v) = cmp_value(parts, max, what)?;
    Ok(Expr::any_of(operands.iter().map(|o| Expr::cmp(*o, op, v)).collect()))
}

fn fields_of(fs: &[Field]) -> Vec<Operand> {
    fs.iter().map(|f| Operand::Field(*f)).collect()
}

fn proto_is(p: u8) -> Expr {
    Expr::cmp(Operand::Field(Field::Proto), CmpOp::Eq, u128::from(p))
}

fn parse_ip(s: &str) -> Option<u128> {
    s.parse::<std::net::IpAddr>().ok().map(ip_to_u128)
}

/// `::ffff:0:0`: the /96 block where weir keeps IPv4 addresses.
const V4_MAPPED: u128 = 0xffff << 32;

/// An IPv6 prefix shorter than /96 that contains the IPv4-mapped block,
/// minus that block: IPv6 networks never match IPv4 flows (as in nfdump,
/// where the families live in different fields). The rest of the prefix is
/// the siblings of the block's ancestors, one prefix per level.
fn without_v4_block(n: Net, len: u32) -> Vec<Net> {
    if len >= 96 || V4_MAPPED & n.mask != n.net {
        return vec![n];
    }
    (len..96)
        .map(|l| {
            let mask = u128::MAX << (127 - l);
            Net { net: (V4_MAPPED ^ (1u128 << (127 - l))) & mask, mask }
        })
        .collect()
}

/// Parses `A.B.C.D/len`, `v6::/len`, an abbreviated `10.0.0/24`, or (with
/// `allow_host`) a plain address as a host. An IPv6 network that would
/// cover IPv4 addresses (`::/0`) leaves them out.
fn parse_net(s: &str, at: usize, allow_host: bool) -> R<Vec<Net>> {
    parse_one_net(s, at, allow_host).map(|(n, v6_len)| match v6_len {
        Some(len) => without_v4_block(n, len),
        None => vec![n],
    })
}

/// One network and, for an IPv6 prefix, its length.
fn parse_one_net(s: &str, at: usize, allow_host: bool) -> R<(Net, Option<u32>)> {
    let Some((addr, len)) = s.split_once('/') else {
        if allow_host {
            return match parse_ip(s) {
                Some(a) => Ok((Net::host(a), None)),
                None => err(at, format!("Can not parse/lookup {s} to an IP address")),
            };
        }
        return err(at, format!("Network {s} needs a prefix length '/len' or a netmask"));
    };
    let len: u32 =
        len.parse().map_err(|_| SemErr { pos: at, msg: format!("Bad prefix in {s}") })?;
    if !addr.contains(':') {
        let octets = addr.split('.').count();
        let full = if (2..4).contains(&octets) {
            let mut a = addr.to_string();
            for _ in octets..4 {
                a.push_str(".0");
            }
            a
        } else {
            addr.to_string()
        };
        let Ok(v4) = full.parse::<std::net::Ipv4Addr>() else {
            return err(at, format!("Can not parse/lookup {addr} to an IP address"));
        };
        if len > 32 {
            return err(at, format!("Prefix {len} out of range for IPv4 address"));
        }
        return Ok((Net::prefix(ip_to_u128(v4.into()), 96 + len), None));
    }
    let Ok(v6) = addr.parse::<std::net::Ipv6Addr>() else {
        return err(at, format!("Can not parse/lookup {addr} to an IP address"));
    };
    if len > 128 {
        return err(at, format!("Prefix {len} out of range for IPv6 address"));
    }
    Ok((Net::prefix(ip_to_u128(v6.into()), len), Some(len)))
}

fn parse_mac(s: &str, at: usize) -> R<u128> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() == 6 {
        let mut v: u128 = 0;
        for p in &parts {
            match u8::from_str_radix(p, 16) {
                Ok(b) if !p.is_empty() && p.len() <= 2 => v = v << 8 | u128::from(b),
                _ => return err(at, format!("Invalid MAC address: {s}")),
            }
        }
        return Ok(v);
    }
    err(at, format!("Invalid MAC address: {s}"))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD[Thh[:mm[:ss[.mmm]]]]` (UTC) as milliseconds since the epoch.
fn parse_time(s: &str, at: usize) -> R<u128> {
    let bad = || SemErr {
        pos: at,
        msg: format!("Invalid time '{s}': expected YYYY-MM-DDThh:mm:ss[.mmm][Z] (UTC)"),
    };
    // Times are UTC; an explicit `Z` says so.
    let s = s.strip_suffix(['Z', 'z']).unwrap_or(s);
    let (date, time) = match s.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let dp: Vec<&str> = date.split('-').collect();
    if dp.len() != 3 || dp[0].len() != 4 {
        return Err(bad());
    }
    let num = |x: &str, lo: u32, hi: u32| -> R<u32> {
        if x.is_empty() || x.len() > 2 || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let v: u32 = x.parse().map_err(|_| bad())?;
        if v < lo || v > hi { Err(bad()) } else { Ok(v) }
    };
    let year: i64 = dp[0].parse().map_err(|_| bad())?;
    let month = num(dp[1], 1, 12)?;
    let day = num(dp[2], 1, 31)?;
    let (mut h, mut mi, mut sec, mut ms) = (0u32, 0u32, 0u32, 0u32);
    if let Some(t) = time {
        let (hms, frac) = match t.split_once('.') {
            Some((a, f)) => (a, Some(f)),
            None => (t, None),
        };
        let tp: Vec<&str> = hms.split(':').collect();
        if tp.len() > 3 {
            return Err(bad());
        }
        h = num(tp[0], 0, 23)?;
        if let Some(x) = tp.get(1) {
            mi = num(x, 0, 59)?;
        }
        if let Some(x) = tp.get(2) {
            sec = num(x, 0, 60)?;
        }
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 3 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let v: u32 = f.parse().map_err(|_| bad())?;
            ms = v * 10u32.pow(3 - f.len() as u32);
        }
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec);
    let millis = secs * 1000 + i64::from(ms);
    u128::try_from(millis).map_err(|_| bad())
}

// ---------------------------------------------------------------- terms

fn addr_fields(qual: Option<Pair<'_, Rule>>) -> Vec<Field> {
    let Some(q) = qual else { return vec![Field::SrcAddr, Field::DstAddr] };
    match q.into_inner().next().map(|p| p.as_rule()) {
        Some(Rule::kw_src) => vec![Field::SrcAddr],
        Some(Rule::kw_dst) => vec![Field::DstAddr],
        Some(Rule::bgp_next) => vec![Field::BgpNextHop],
        Some(Rule::kw_next) => vec![Field::NextHop],
        _ => vec![Field::ExporterAddr],
    }
}

/// `src`/`dst`/none → the matching fields of a pair.
fn sided(parts: &[Pair<'_, Rule>], src: Field, dst: Field) -> Vec<Field> {
    match find(parts, Rule::side).and_then(|s| s.into_inner().next()).map(|p| p.as_rule()) {
        Some(Rule::kw_src) => vec![src],
        Some(Rule::kw_dst) => vec![dst],
        _ => vec![src, dst],
    }
}

fn term(p: Pair<'_, Rule>) -> R<Expr> {
    let rule = p.as_rule();
    let parts: Vec<Pair<'_, Rule>> = p.clone().into_inner().collect();
    match rule {
        Rule::any_term => Ok(Expr::Any),
        Rule::family_term => {
            let v6 = has(&parts, Rule::kw_ipv6);
            Ok(Expr::Or(vec![
                Expr::Predicate(Predicate::Family { field: Field::SrcAddr, v6 }),
                Expr::Predicate(Predicate::Family { field: Field::DstAddr, v6 }),
            ]))
        }
        Rule::ident_term => {
            let s = find(&parts, Rule::string).expect("string");
            let id = unquote(s.as_str());
            if id.is_empty()
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return err(pos(&s), format!("Invalid ident: {id}"));
            }
            Ok(Expr::Predicate(Predicate::Ident(id.to_string())))
        }
        Rule::engine_term => {
            let f = if has(&parts, Rule::engine_type_kw) || has(&parts, Rule::kw_type) {
                Field::EngineType
            } else {
                Field::EngineId
            };
            on_each(&[Operand::Field(f)], &parts, 255, "Engine value")
        }
        Rule::exporter_id_term => {
            on_each(&[Operand::Field(Field::ExporterId)], &parts, 0xffff, "Exporter id")
        }
        Rule::obs_term => on_each(
            &[Operand::Field(Field::ObsDomain)],
            &parts,
            field_max(Field::ObsDomain),
            "Observation domain id",
        ),
        Rule::proto_term => {
            if let Some(n) = find(&parts, Rule::number) {
                let v = check_max(number(&n)?, 255, "Protocol number", pos(&n))?;
                return Ok(Expr::cmp(Operand::Field(Field::Proto), CmpOp::Eq, v));
            }
            let s = find(&parts, Rule::string).expect("string");
            let name = unquote(s.as_str());
            match proto_by_name(name) {
                Some(v) if !name.is_empty() => Ok(proto_is(v)),
                _ => err(pos(&s), format!("Unknown protocol: {name}")),
            }
        }
        Rule::icmp_term => {
            let code = has(&parts, Rule::icmp_code_kw) || has(&parts, Rule::kw_code);
            let operand = if code { Operand::IcmpCode } else { Operand::IcmpType };
            let what = if code { "ICMP code" } else { "ICMP type" };
            let test = on_each(&[operand], &parts, 255, what)?;
            Ok(Expr::and(Expr::Or(vec![proto_is(1), proto_is(58)]), test))
        }
        Rule::port_term => on_each(
            &fields_of(&sided(&parts, Field::SrcPort, Field::DstPort)),
            &parts,
            0xffff,
            "Port number",
        ),
        Rule::addr_list_term => {
            let fields = addr_fields(find(&parts, Rule::addr_qual));
            let list = find(&parts, Rule::addr_list).expect("list");
            let mut nets = Vec::new();
            for a in list.into_inner() {
                nets.extend(parse_net(a.as_str(), pos(&a), true)?);
            }
            nets.dedup();
            Ok(Expr::any_of(
                fields
                    .into_iter()
                    .map(|field| Expr::Predicate(Predicate::InNets { field, nets: nets.clone() }))
                    .collect(),
            ))
        }
        Rule::addr_term => {
            let fields = addr_fields(find(&parts, Rule::addr_qual));
            let s = find(&parts, Rule::string).expect("string");
            let text = unquote(s.as_str());
            let Some(a) = parse_ip(text) else {
                return err(pos(&s), format!("Can not parse/lookup {text} to an IP address"));
            };
            Ok(Expr::any_of(
                fields.iter().map(|f| Expr::cmp(Operand::Field(*f), CmpOp::Eq, a)).collect(),
            ))
        }
        Rule::net_term => {
            let fields = addr_fields(find(&parts, Rule::addr_qual));
            let addrs: Vec<_> = parts.iter().filter(|c| c.as_rule() == Rule::address).collect();
            let nets = if addrs.len() == 2 {
                let (a, m) = (addrs[0], addrs[1]);
                let ip = a.as_str().parse::<std::net::Ipv4Addr>();
                let mask = m.as_str().parse::<std::net::Ipv4Addr>();
                let Ok(ip) = ip else {
                    return err(
                        pos(a),
                        format!("Can not parse/lookup {} to an IPv4 address", a.as_str()),
                    );
                };
                let Ok(mask) = mask else {
                    return err(pos(m), format!("Invalid netmask: {}", m.as_str()));
                };
                let mask = (u128::MAX << 32) | u128::from(u32::from(mask));
                let addr = ip_to_u128(ip.into());
                vec![Net { net: addr & mask, mask }]
            } else {
                parse_net(addrs[0].as_str(), pos(addrs[0]), false)?
            };
            Ok(Expr::any_of(
                fields
                    .into_iter()
                    .map(|field| Expr::Predicate(Predicate::InNets { field, nets: nets.clone() }))
                    .collect(),
            ))
        }
        Rule::flags_term => {
            let flags = Operand::Field(Field::TcpFlags);
            let test = if let Some(letters) = find(&parts, Rule::flag_letters) {
                let mut mask: u128 = 0;
                for c in letters.as_str().chars() {
                    mask |= match c.to_ascii_uppercase() {
                        'F' => 1,
                        'S' => 2,
                        'R' => 4,
                        'P' => 8,
                        'A' => 16,
                        'U' => 32,
                        'E' => 64,
                        'C' => 128,
                        _ => 63, // X: all of FSRPAU
                    };
                }
                if has(&parts, Rule::flag_exact) {
                    Expr::cmp(flags, CmpOp::Eq, mask)
                } else {
                    Expr::Predicate(Predicate::AllBits { operand: flags, mask })
                }
            } else {
                on_each(&[flags], &parts, 255, "Flags value")?
            };
            Ok(Expr::and(proto_is(6), test))
        }
        Rule::tos_term => {
            let f = match find(&parts, Rule::side).and_then(|s| s.into_inner().next()) {
                Some(s) if s.as_rule() == Rule::kw_dst => Field::DstTos,
                _ => Field::SrcTos,
            };
            on_each(&[Operand::Field(f)], &parts, 255, "Tos value")
        }
        Rule::counter_term => {
            let out = has(&parts, Rule::kw_out);
            let f = match (has(&parts, Rule::kw_packets), out) {
                (true, false) => Field::Packets,
                (true, true) => Field::OutPackets,
                (false, false) => Field::Bytes,
                (false, true) => Field::OutBytes,
            };
            on_each(&[Operand::Field(f)], &parts, field_max(f), "Counter value")
        }
        Rule::rate_term => {
            let kw = parts.first().map(|p| p.as_rule());
            let operand = match kw {
                Some(Rule::kw_flows) => Operand::Field(Field::Flows),
                Some(Rule::kw_duration) => Operand::Duration,
                Some(Rule::kw_pps) => Operand::Pps,
                Some(Rule::kw_bps) => Operand::Bps,
                _ => Operand::Bpp,
            };
            on_each(&[operand], &parts, u128::from(u64::MAX), "Value")
        }
        Rule::as_term => {
            let qual = find(&parts, Rule::as_qual).and_then(|q| q.into_inner().next());
            let ops = match qual.map(|q| q.as_rule()) {
                Some(Rule::kw_src) => vec![Operand::FieldOrZero(Field::SrcAs)],
                Some(Rule::kw_dst) => vec![Operand::FieldOrZero(Field::DstAs)],
                Some(Rule::kw_prev) => vec![Operand::Field(Field::PrevAs)],
                Some(Rule::kw_next) => vec![Operand::Field(Field::NextAs)],
                _ => vec![Operand::FieldOrZero(Field::SrcAs), Operand::FieldOrZero(Field::DstAs)],
            };
            on_each(&ops, &parts, u128::from(u32::MAX), "AS number")
        }
        Rule::if_term => {
            let fs = if has(&parts, Rule::kw_in) {
                vec![Field::InputIf]
            } else if has(&parts, Rule::kw_out) {
                vec![Field::OutputIf]
            } else {
                vec![Field::InputIf, Field::OutputIf]
            };
            on_each(&fields_of(&fs), &parts, u128::from(u32::MAX), "Interface number")
        }
        Rule::mask_term => on_each(
            &fields_of(&sided(&parts, Field::SrcMask, Field::DstMask)),
            &parts,
            255,
            "Mask value",
        ),
        Rule::vlan_term => on_each(
            &fields_of(&sided(&parts, Field::SrcVlan, Field::DstVlan)),
            &parts,
            0xffff,
            "VLAN id",
        ),
        Rule::mac_term => {
            let dir_in = has(&parts, Rule::kw_in);
            let dir_out = has(&parts, Rule::kw_out);
            let side =
                find(&parts, Rule::side).and_then(|s| s.into_inner().next()).map(|s| s.as_rule());
            let all = [
                (true, true, Field::InSrcMac),
                (true, false, Field::InDstMac),
                (false, true, Field::OutSrcMac),
                (false, false, Field::OutDstMac),
            ];
            let fs: Vec<Field> = all
                .iter()
                .filter(|(is_in, is_src, _)| {
                    (!dir_in || *is_in)
                        && (!dir_out || !*is_in)
                        && match side {
                            Some(Rule::kw_src) => *is_src,
                            Some(Rule::kw_dst) => !*is_src,
                            _ => true,
                        }
                })
                .map(|(_, _, f)| *f)
                .collect();
            let s = find(&parts, Rule::string).expect("mac");
            let mac = parse_mac(unquote(s.as_str()), pos(&s))?;
            Ok(Expr::any_of(
                fs.iter().map(|f| Expr::cmp(Operand::Field(*f), CmpOp::Eq, mac)).collect(),
            ))
        }
        Rule::mpls_term => {
            let sel = &parts[1];
            let s = sel.as_str().to_ascii_lowercase();
            let index = |prefix: &str| -> R<Field> {
                let digits = &s[prefix.len()..];
                match digits.parse::<usize>() {
                    Ok(n) if (1..=10).contains(&n) => Ok(MPLS_FIELDS[n - 1]),
                    _ => err(pos(sel), format!("MPLS index {digits} out of range (1..10)")),
                }
            };
            match sel.as_rule() {
                Rule::mpls_label => {
                    on_each(&[Operand::MplsLabel(index("label")?)], &parts, 0xfffff, "MPLS label")
                }
                Rule::mpls_exp => {
                    on_each(&[Operand::MplsExp(index("exp")?)], &parts, 7, "MPLS exp")
                }
                Rule::mpls_eos => on_each(&[Operand::MplsEos], &parts, 0xfffff, "MPLS label"),
                _ => {
                    let ops: Vec<Operand> =
                        MPLS_FIELDS.iter().map(|f| Operand::MplsLabel(*f)).collect();
                    on_each(&ops, &parts, 0xfffff, "MPLS label")
                }
            }
        }
        Rule::flowdir_term => {
            let v = if let Some(n) = find(&parts, Rule::number) {
                check_max(number(&n)?, 255, "Flow direction", pos(&n))?
            } else {
                let w = find(&parts, Rule::dir_word).expect("dir");
                u128::from(w.as_str().eq_ignore_ascii_case("egress"))
            };
            Ok(Expr::cmp(Operand::Field(Field::Direction), CmpOp::Eq, v))
        }
        Rule::fwdstat_term => {
            if let Some(s) = find(&parts, Rule::string) {
                let name = unquote(s.as_str());
                return match fwd_status_by_name(name) {
                    Some(v) => {
                        Ok(Expr::cmp(Operand::Field(Field::FwdStatus), CmpOp::Eq, u128::from(v)))
                    }
                    None => err(pos(&s), format!("Unknown forwarding status: {name}")),
                };
            }
            on_each(&[Operand::Field(Field::FwdStatus)], &parts, 255, "Forwarding status")
        }
        Rule::seen_term => {
            let f = if has(&parts, Rule::kw_first) { Field::First } else { Field::Last };
            let s = find(&parts, Rule::string).expect("time");
            let t = parse_time(unquote(s.as_str()), pos(&s))?;
            Ok(Expr::cmp(Operand::Field(f), cmp_op(find(&parts, Rule::cmp)), t))
        }
        other => err(pos(&p), format!("internal: unexpected rule {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(parse_time("2024-07-11T09:15:10.009", 0).ok(), Some(1_720_689_310_009));
        assert_eq!(parse_time("2024-07-11T09", 0).ok(), Some(1_720_688_400_000));
    }
}
