//! Output formats (`-o`) and nfdump's `fmt:` / `csv:` tokens.

use weir_query::AggKey;
use weir_record::Field;

/// One `fmt:`/`csv:` token weir can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Token {
    Nfv,
    Cnt,
    Idt,
    Eng,
    Exp,
    Ts,
    Tsr,
    Tsg,
    Te,
    Ter,
    Teg,
    Tr,
    Trr,
    Trg,
    Td,
    Tds,
    Pkt,
    Ipkt,
    Byt,
    Ibyt,
    Sp,
    Dp,
    It,
    Ic,
    Pr,
    Flg,
    Fwd,
    Tos,
    Stos,
    Bps,
    Pps,
    Bpp,
    Sa,
    Da,
    Sap,
    Dap,
    In,
    Out,
    Smk,
    Dmk,
    Dir,
    Dtos,
    End,
    Sn,
    Dn,
    Opkt,
    Obyt,
    Fl,
    Svln,
    Dvln,
    Sas,
    Das,
    Nhb,
    Nh,
    Ra,
    /// `%mpls1`..`%mpls10` (index 0..9).
    Mpls(u8),
    MplsAll,
    Ismc,
    Odmc,
    Idmc,
    Osmc,
    Nas,
    Pas,
    Odid,
    /// `%n`: a newline.
    Newline,
}

/// One entry of the token table: token, what it prints, the fmt header,
/// the csv header (`None` = not allowed in `csv:`), whether it is an
/// address column (widened with full IPv6).
struct TokenInfo {
    name: &'static str,
    token: Token,
    header: &'static str,
    csv: Option<&'static str>,
    address: bool,
}

macro_rules! t {
    ($name:literal, $tok:expr, $hdr:literal, $csv:literal) => {
        TokenInfo { name: $name, token: $tok, header: $hdr, csv: Some($csv), address: false }
    };
    ($name:literal, $tok:expr, $hdr:literal, $csv:literal, addr) => {
        TokenInfo { name: $name, token: $tok, header: $hdr, csv: Some($csv), address: true }
    };
    ($name:literal, $tok:expr, $hdr:literal, none, addr) => {
        TokenInfo { name: $name, token: $tok, header: $hdr, csv: None, address: true }
    };
}

/// The tokens weir prints, in nfdump's `formatTable` order, with nfdump
/// 1.7.8's fmt headers (`output_fmt.c`) and csv headers (`output_csv.c`).
const TOKENS: &[TokenInfo] = &[
    t!("%nfv", Token::Nfv, "Ver", "version"),
    t!("%cnt", Token::Cnt, "Count", "count"),
    t!("%idt", Token::Idt, "Ident       ", "Ident"),
    t!("%eng", Token::Eng, " engine", "engine"),
    t!("%exp", Token::Exp, "Exp ID", "exporterID"),
    t!("%tfs", Token::Ts, "Date first seen        ", "firstSeen"),
    t!("%ts", Token::Ts, "Date first seen        ", "firstSeen"),
    t!("%tsr", Token::Tsr, "First seen raw", "firstSeen"),
    t!("%tsg", Token::Tsg, "First seen GMT         ", "firstSeen"),
    t!("%te", Token::Te, "Date last seen         ", "lastSeen"),
    t!("%ter", Token::Ter, "Last seen raw ", "lastSeen"),
    t!("%teg", Token::Teg, "Last seen GMT          ", "lastSeen"),
    t!("%tr", Token::Tr, "Date flow received     ", "received"),
    t!("%trr", Token::Trr, "Received raw  ", "received"),
    t!("%trg", Token::Trg, "Date flow received GMT ", "received"),
    t!("%td", Token::Td, "Duration        ", "duration"),
    t!("%tds", Token::Tds, "Duration        ", "duration"),
    t!("%pkt", Token::Pkt, " Packets", "packets"),
    t!("%ipkt", Token::Ipkt, "  In Pkt", "inPackets"),
    t!("%byt", Token::Byt, "   Bytes", "bytes"),
    t!("%ibyt", Token::Ibyt, " In Byte", "inBytes"),
    t!("%sp", Token::Sp, "Src Pt", "srcPort"),
    t!("%dp", Token::Dp, "Dst Pt", "dstPort"),
    t!("%it", Token::It, "ICMP-T", "icmpTYpe"),
    t!("%ic", Token::Ic, "ICMP-C", "icmpCode"),
    t!("%pr", Token::Pr, "Proto", "proto"),
    t!("%flg", Token::Flg, "   Flags", "flags"),
    t!("%fwd", Token::Fwd, "Fwd", "fwdStatus"),
    t!("%tos", Token::Tos, " Tos", "tos"),
    t!("%stos", Token::Stos, "STos", "srcTos"),
    t!("%bps", Token::Bps, "     bps", "bps"),
    t!("%pps", Token::Pps, "     pps", "pps"),
    t!("%bpp", Token::Bpp, "   Bpp", "bpp"),
    t!("%sa", Token::Sa, "     Src IP Addr", "srcAddr", addr),
    t!("%da", Token::Da, "     Dst IP Addr", "dstAddr", addr),
    t!("%sap", Token::Sap, "     Src IP Addr:Port ", none, addr),
    t!("%dap", Token::Dap, "     Dst IP Addr:Port ", none, addr),
    t!("%in", Token::In, " Input", "input"),
    t!("%out", Token::Out, "Output", "output"),
    t!("%smk", Token::Smk, "SMask", "srcMask"),
    t!("%dmk", Token::Dmk, "DMask", "dstMask"),
    t!("%dir", Token::Dir, "Dir", "direction"),
    t!("%dtos", Token::Dtos, "DTos", "dstTos"),
    t!("%end", Token::End, "End", "endReason"),
    t!("%sn", Token::Sn, "        Src Network", "srcNet", addr),
    t!("%dn", Token::Dn, "        Dst Network", "dstNet", addr),
    t!("%opkt", Token::Opkt, " Out Pkt", "outPackets"),
    t!("%obyt", Token::Obyt, "Out Byte", "outBytes"),
    t!("%fl", Token::Fl, "Flows", "flows"),
    t!("%svln", Token::Svln, "SVlan", "srcVlan"),
    t!("%dvln", Token::Dvln, "DVlan", "dstVlan"),
    t!("%sas", Token::Sas, "Src AS", "srcAS"),
    t!("%das", Token::Das, "Dst AS", "dstAS"),
    t!("%nhb", Token::Nhb, " BGP next-hop IP", "bgpNextIP", addr),
    t!("%nh", Token::Nh, "     Next-hop IP", "nextIP", addr),
    t!("%ra", Token::Ra, "       Router IP", "routerIP", addr),
    t!("%mpls1", Token::Mpls(0), " MPLS lbl 1 ", "mplsLabel1"),
    t!("%mpls2", Token::Mpls(1), " MPLS lbl 2 ", "mplsLabel2"),
    t!("%mpls3", Token::Mpls(2), " MPLS lbl 3 ", "mplsLabel3"),
    t!("%mpls4", Token::Mpls(3), " MPLS lbl 4 ", "mplsLabel4"),
    t!("%mpls5", Token::Mpls(4), " MPLS lbl 5 ", "mplsLabel5"),
    t!("%mpls6", Token::Mpls(5), " MPLS lbl 6 ", "mplsLabel6"),
    t!("%mpls7", Token::Mpls(6), " MPLS lbl 7 ", "mplsLabel7"),
    t!("%mpls8", Token::Mpls(7), " MPLS lbl 8 ", "mplsLabel8"),
    t!("%mpls9", Token::Mpls(8), " MPLS lbl 9 ", "mplsLabel9"),
    t!("%mpls10", Token::Mpls(9), " MPLS lbl 10", "mplsLabel10"),
    t!(
        "%mpls",
        Token::MplsAll,
        "                                               MPLS labels 1-10                                                                   ",
        "mplsLabel1-10"
    ),
    t!("%ismc", Token::Ismc, "  In src MAC Addr", "inSrcMac"),
    t!("%odmc", Token::Odmc, " Out dst MAC Addr", "outDstMac"),
    t!("%idmc", Token::Idmc, "  In dst MAC Addr", "inDstMac"),
    t!("%osmc", Token::Osmc, " Out src MAC Addr", "outSrcMac"),
    t!("%nas", Token::Nas, "Next AS", "nextAS"),
    t!("%pas", Token::Pas, "Prev AS", "prevAS"),
    t!("%odid", Token::Odid, "obsDomainID", "obsDomainID"),
    TokenInfo { name: "%n", token: Token::Newline, header: "", csv: None, address: false },
];

/// nfdump 1.7.8 tokens for data weir does not store (geo, NSEL/NAT,
/// latency, payload, JA3/JA4, VRF, pflog, TTL, …).
const UNSUPPORTED: &[&str] = &[
    "%lbl", "%gsa", "%gda", "%gsap", "%gdap", "%gra", "%bfd", "%inam", "%onam", "%cl", "%sl",
    "%al", "%tevt", "%msec", "%evt", "%nfc", "%xevt", "%xsa", "%xda", "%xsap", "%xdap", "%nsa",
    "%nda", "%nsap", "%ndap", "%xsp", "%xdp", "%nsp", "%ndp", "%iacl", "%eacl", "%uname",
    "%pbstart", "%pbend", "%pbstep", "%pbsize", "%nbid", "%nbnam", "%ipl", "%opl", "%opid", "%vrf",
    "%ivrf", "%ivrfnam", "%evrf", "%evrfnam", "%pfifn", "%pfact", "%pfrea", "%pfdir", "%pfrule",
    "%flid", "%isid", "%osid", "%nats", "%ja3", "%ja4", "%sni", "%tls", "%sc", "%dc", "%sloc",
    "%dloc", "%sasn", "%dasn", "%stor", "%dtor", "%ttl", "%minttl", "%maxttl", "%frag", "%eth",
    "%nevt", "%sgt",
];

/// nfdump's predefined fmt formats.
const FORMAT_LINE: &str = "%ts %td %pr %sap -> %dap %pkt %byt %fl";
const FORMAT_LONG: &str = "%ts %td %pr %sap -> %dap %flg %tos %pkt %byt %fl";
const FORMAT_EXTENDED: &str = "%ts %td %pr %sap -> %dap %flg %tos %pkt %byt %pps %bps %bpp %fl";
const FORMAT_BILINE: &str = "%ts %td %pr %sap <-> %dap %opkt %ipkt %obyt %ibyt %fl";
const FORMAT_BILONG: &str = "%ts %td %pr %sap <-> %dap %flg %tos %opkt %ipkt %obyt %ibyt %fl";
const FORMAT_CSV: &str = "%ts,%td,%pr,%sa,%sp,%da,%dp,%pkt,%byt,%fl";

/// Predefined formats that `%name` embeds in `fmt:`/`csv:` strings.
const PREDEFINED: &[(&str, &str)] = &[
    ("line", FORMAT_LINE),
    ("long", FORMAT_LONG),
    ("extended", FORMAT_EXTENDED),
    ("biline", FORMAT_BILINE),
    ("bilong", FORMAT_BILONG),
    ("csv", FORMAT_CSV),
];

/// Format names `-o` accepts (for error messages).
const FORMAT_NAMES: &str = "raw, line, long, extended, biline, bilong, line6, long6, extended6, \
     biline6, bilong6, json, ndjson, csv, null, fmt:<tokens>, csv:<tokens>";

/// Why an output format was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// `-o NAME` with a name nfdump does not know.
    #[error("unknown output format '{0}'; known formats: {FORMAT_NAMES}")]
    UnknownFormat(String),
    /// A `%token` nfdump does not know.
    #[error("output format parse error at: {token}; available format elements: {allowed}")]
    UnknownToken {
        /// The token as written.
        token: String,
        /// The tokens allowed in this kind of format.
        allowed: String,
    },
    /// A token nfdump knows but weir has no data for.
    #[error("output format token {0} is not supported by weir (weir does not store that data)")]
    NotSupported(String),
    /// A token nfdump does not allow in `csv:` (composite tokens such as `%sap`).
    #[error("output format parse error at: {token}; available csv format elements: {allowed}")]
    NotInCsv {
        /// The token.
        token: String,
        /// The tokens `csv:` allows.
        allowed: String,
    },
    /// A `csv:` string that is not `%tok,%tok,…`.
    #[error("{0}")]
    CsvSyntax(String),
    /// A named format weir does not implement (`gline`, `nsel`, …).
    #[error("output format '{0}' is not supported by weir")]
    FormatNotSupported(String),
}

/// An item of a compiled fmt format: literal text or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// Literal text copied to the output.
    Lit(String),
    /// A token.
    Tok(Token),
}

/// What a [`Format`] prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Column formats: `line`, `long`, …, `fmt:`.
    Fmt(Vec<Item>),
    /// `csv` and `csv:`.
    Csv(Vec<Token>),
    /// `raw`.
    Raw,
    /// `json`: an array of pretty-printed objects.
    Json,
    /// `ndjson`: one compact object per line.
    NdJson,
    /// `null`: summary only.
    Null,
}

/// A parsed `-o` output format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub(crate) kind: Kind,
    /// A `…6` name (`line6`): full IPv6 addresses.
    pub(crate) full_ipv6: bool,
    /// The bidirectional formats print `<->`.
    name: String,
}

impl Default for Format {
    fn default() -> Format {
        Format::parse("line").expect("line is a valid format")
    }
}

impl Format {
    /// Parses a `-o` argument: `line` (default), `long`, `extended`,
    /// `biline`, `bilong` (each also with a `6` suffix for full IPv6),
    /// `raw`, `csv`, `json`, `ndjson`, `null`, `fmt:%…`, `csv:%…` or a bare
    /// `%…` format. Names are case-insensitive.
    pub fn parse(spec: &str) -> Result<Format, FormatError> {
        let lower = spec.to_ascii_lowercase();
        if lower.starts_with("fmt:") {
            let items = parse_fmt(&spec[4..])?;
            return Ok(Format { kind: Kind::Fmt(items), full_ipv6: false, name: "fmt".into() });
        }
        if lower.starts_with("csv:") {
            let toks = parse_csv(&spec[4..])?;
            return Ok(Format { kind: Kind::Csv(toks), full_ipv6: false, name: "csv".into() });
        }
        if spec.starts_with('%') {
            let items = parse_fmt(spec)?;
            return Ok(Format { kind: Kind::Fmt(items), full_ipv6: false, name: "fmt".into() });
        }
        let (base, full_ipv6) = match lower.strip_suffix('6') {
            Some(b) if lower.len() >= 2 => (b.to_string(), true),
            _ => (lower.clone(), false),
        };
        let kind = match base.as_str() {
            "line" => Kind::Fmt(parse_fmt(FORMAT_LINE)?),
            "long" => Kind::Fmt(parse_fmt(FORMAT_LONG)?),
            "extended" => Kind::Fmt(parse_fmt(FORMAT_EXTENDED)?),
            "biline" => Kind::Fmt(parse_fmt(FORMAT_BILINE)?),
            "bilong" => Kind::Fmt(parse_fmt(FORMAT_BILONG)?),
            "csv" => Kind::Csv(parse_csv(FORMAT_CSV)?),
            "raw" => Kind::Raw,
            "json" => Kind::Json,
            "ndjson" => Kind::NdJson,
            "null" => Kind::Null,
            "gline" | "glong" | "nsel" | "nat" | "nel" | "csv-fast" | "pipe" => {
                return Err(FormatError::FormatNotSupported(spec.to_string()));
            }
            _ => return Err(FormatError::UnknownFormat(spec.to_string())),
        };
        Ok(Format { kind, full_ipv6, name: base })
    }

    /// The format nfdump builds for `-A keys` when no `-o` is given
    /// (`csv = false`: `fmt:%ts %td  <key> <key>  %pkt %byt %bps %bpp %fl`)
    /// or with `-o csv` (`csv:%ts,%td,<key>,<key>,%pkt,%byt,%bps,%bpp,%fl`).
    /// Each key prints with its registry token; prefix keys (`srcip4/24`)
    /// print as `%sa`/`%da`, `srcnet`/`dstnet` as `%sn`/`%dn`.
    pub fn aggregation(keys: &[AggKey], csv: bool) -> Format {
        let mut toks: Vec<&'static str> = Vec::new();
        for k in keys {
            let t = match k {
                AggKey::Field(f) => f.info().token,
                AggKey::Prefix { field, .. } => field.info().token,
                AggKey::SrcNet => "%sn",
                AggKey::DstNet => "%dn",
            };
            if !t.is_empty() && lookup(t).is_some() && !toks.contains(&t) {
                toks.push(t);
            }
        }
        let spec = if csv {
            let mut s = String::from("%ts,%td,");
            for t in &toks {
                s.push_str(t);
                s.push(',');
            }
            s.push_str("%pkt,%byt,%bps,%bpp,%fl");
            return Format {
                kind: Kind::Csv(parse_csv(&s).expect("valid csv tokens")),
                full_ipv6: false,
                name: "csv".into(),
            };
        } else {
            let mut s = String::from("%ts %td  ");
            for t in &toks {
                s.push_str(t);
                s.push(' ');
            }
            s.push_str(" %pkt %byt %bps %bpp %fl");
            s
        };
        Format {
            kind: Kind::Fmt(parse_fmt(&spec).expect("valid fmt tokens")),
            full_ipv6: false,
            name: "fmt".into(),
        }
    }

    /// The format's name (`line`, `csv`, `fmt` for custom formats, …).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is `-o null` (no records printed).
    pub fn is_null(&self) -> bool {
        self.kind == Kind::Null
    }

    /// Whether this is a csv format (`csv`, `csv:`).
    pub fn is_csv(&self) -> bool {
        matches!(self.kind, Kind::Csv(_))
    }

    /// Whether this is `json` or `ndjson`.
    pub fn is_json(&self) -> bool {
        matches!(self.kind, Kind::Json | Kind::NdJson)
    }

    /// The record columns this format prints.
    pub fn columns(&self) -> Option<Vec<Field>> {
        let mut out: Vec<Field> = Vec::new();
        let mut add = |fs: &[Field]| {
            for f in fs {
                if !out.contains(f) {
                    out.push(*f);
                }
            }
        };
        match &self.kind {
            Kind::Null => return None,
            Kind::Raw | Kind::Json | Kind::NdJson => add(Field::ALL),
            Kind::Fmt(items) => {
                for i in items {
                    if let Item::Tok(t) = i {
                        add(t.fields());
                    }
                }
            }
            Kind::Csv(toks) => {
                for t in toks {
                    add(t.fields());
                }
            }
        }
        Some(out)
    }
}

impl Token {
    /// The stored columns this token reads.
    pub fn fields(self) -> &'static [Field] {
        use Field as F;
        match self {
            Token::Nfv => &[F::FlowVersion],
            Token::Cnt | Token::Idt | Token::Newline => &[],
            Token::Eng => &[F::EngineType, F::EngineId],
            Token::Exp => &[F::ExporterId],
            Token::Ts | Token::Tsr | Token::Tsg => &[F::First],
            Token::Te | Token::Ter | Token::Teg => &[F::Last],
            Token::Tr | Token::Trr | Token::Trg => &[F::Received],
            Token::Td | Token::Tds => &[F::First, F::Last],
            Token::Pkt | Token::Ipkt => &[F::Packets],
            Token::Byt | Token::Ibyt => &[F::Bytes],
            Token::Sp => &[F::SrcPort],
            Token::Dp => &[F::DstPort, F::Proto],
            Token::It | Token::Ic => &[F::DstPort],
            Token::Pr => &[F::Proto],
            Token::Flg => &[F::TcpFlags, F::Proto],
            Token::Fwd => &[F::FwdStatus],
            Token::Tos | Token::Stos => &[F::SrcTos],
            Token::Bps => &[F::First, F::Last, F::Bytes],
            Token::Pps => &[F::First, F::Last, F::Packets],
            Token::Bpp => &[F::Packets, F::Bytes],
            Token::Sa => &[F::SrcAddr],
            Token::Da => &[F::DstAddr],
            Token::Sap => &[F::SrcAddr, F::SrcPort],
            Token::Dap => &[F::DstAddr, F::DstPort, F::Proto],
            Token::In => &[F::InputIf],
            Token::Out => &[F::OutputIf],
            Token::Smk => &[F::SrcMask],
            Token::Dmk => &[F::DstMask],
            Token::Dir => &[F::Direction],
            Token::Dtos => &[F::DstTos],
            Token::End => &[F::EndReason],
            Token::Sn => &[F::SrcAddr, F::SrcMask],
            Token::Dn => &[F::DstAddr, F::DstMask],
            Token::Opkt => &[F::OutPackets],
            Token::Obyt => &[F::OutBytes],
            Token::Fl => &[F::Flows],
            Token::Svln => &[F::SrcVlan],
            Token::Dvln => &[F::DstVlan],
            Token::Sas => &[F::SrcAs],
            Token::Das => &[F::DstAs],
            Token::Nhb => &[F::BgpNextHop],
            Token::Nh => &[F::NextHop],
            Token::Ra => &[F::ExporterAddr],
            Token::Mpls(i) => &MPLS_FIELDS[i as usize..i as usize + 1],
            Token::MplsAll => &MPLS_FIELDS,
            Token::Ismc => &[F::InSrcMac],
            Token::Odmc => &[F::OutDstMac],
            Token::Idmc => &[F::InDstMac],
            Token::Osmc => &[F::OutSrcMac],
            Token::Nas => &[F::NextAs],
            Token::Pas => &[F::PrevAs],
            Token::Odid => &[F::ObsDomain],
        }
    }
}

pub(crate) const MPLS_FIELDS: [Field; 10] = [
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

fn allowed_list(csv: bool) -> String {
    TOKENS.iter().filter(|t| !csv || t.csv.is_some()).map(|t| t.name).collect::<Vec<_>>().join(" ")
}

fn lookup(name: &str) -> Option<&'static TokenInfo> {
    TOKENS.iter().find(|t| t.name == name)
}

/// Splits `%name` at `pos` (which holds `%`): the token is `%` plus the
/// alphanumeric run after it, as nfdump's parser delimits tokens.
fn token_at(s: &str, pos: usize) -> &str {
    let rest = &s.as_bytes()[pos + 1..];
    let n = rest.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    &s[pos..pos + 1 + n]
}

/// Expands `%line`, `%long`, … (nfdump's `RecursiveReplace`).
fn expand(spec: &str, depth: usize) -> String {
    if depth > 4 {
        return spec.to_string();
    }
    let mut out = String::with_capacity(spec.len());
    let mut i = 0;
    let b = spec.as_bytes();
    while i < b.len() {
        if b[i] == b'%' {
            let tok = token_at(spec, i);
            let name = &tok[1..];
            // nfdump matches the predefined name and requires the next
            // character not to be a letter; `%line6` is not expanded.
            if lookup(tok).is_none()
                && !UNSUPPORTED.contains(&tok)
                && let Some((_, f)) = PREDEFINED.iter().find(|(n, _)| *n == name)
            {
                out.push_str(&expand(f, depth + 1));
                i += tok.len();
                continue;
            }
            out.push_str(tok);
            i += tok.len();
        } else {
            let start = i;
            while i < b.len() && b[i] != b'%' {
                i += 1;
            }
            out.push_str(&spec[start..i]);
        }
    }
    out
}

fn check_token(tok: &str, csv: bool) -> Result<&'static TokenInfo, FormatError> {
    match lookup(tok) {
        Some(info) if csv && info.csv.is_none() => {
            Err(FormatError::NotInCsv { token: tok.to_string(), allowed: allowed_list(true) })
        }
        Some(info) => Ok(info),
        None if UNSUPPORTED.contains(&tok) => Err(FormatError::NotSupported(tok.to_string())),
        None => {
            Err(FormatError::UnknownToken { token: tok.to_string(), allowed: allowed_list(csv) })
        }
    }
}

/// Parses a fmt format string into literal text and tokens.
pub(crate) fn parse_fmt(spec: &str) -> Result<Vec<Item>, FormatError> {
    let spec = expand(spec, 0);
    let mut items = Vec::new();
    let mut i = 0;
    let b = spec.as_bytes();
    while i < b.len() {
        if b[i] == b'%' {
            let tok = token_at(&spec, i);
            let info = check_token(tok, false)?;
            items.push(Item::Tok(info.token));
            i += tok.len();
        } else {
            let start = i;
            while i < b.len() && b[i] != b'%' {
                i += 1;
            }
            items.push(Item::Lit(spec[start..i].to_string()));
        }
    }
    Ok(items)
}

/// Parses a csv format string: `%tok` separated by `,` (spaces allowed).
pub(crate) fn parse_csv(spec: &str) -> Result<Vec<Token>, FormatError> {
    let spec = expand(spec, 0);
    let b = spec.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    if i == b.len() {
        return Err(FormatError::CsvSyntax("Empty csv token string".into()));
    }
    let mut toks = Vec::new();
    while i < b.len() {
        if b[i] == b'%' {
            let tok = token_at(&spec, i);
            toks.push(check_token(tok, true)?.token);
            i += tok.len();
        } else {
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i == b.len() {
                break;
            }
            if b[i] != b',' {
                return Err(FormatError::CsvSyntax(format!(
                    "Expected ',' separator, but found {}",
                    b[i] as char
                )));
            }
            i += 1;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i == b.len() || b[i] != b'%' {
                return Err(FormatError::CsvSyntax(format!(
                    "Expected '%' token, but found {}",
                    if i == b.len() { "<end of string>" } else { &spec[i..] }
                )));
            }
        }
    }
    Ok(toks)
}

/// The fmt header line of `items` (nfdump: each token's header text, each
/// literal as that many spaces; address headers get 23 more spaces with
/// full IPv6).
pub(crate) fn fmt_header(items: &[Item], full_ipv6: bool) -> String {
    let mut h = String::new();
    for item in items {
        match item {
            Item::Lit(s) => h.extend(std::iter::repeat_n(' ', s.len())),
            Item::Tok(t) => {
                let info = TOKENS.iter().find(|i| i.token == *t).expect("token in table");
                if full_ipv6 && info.address {
                    h.push_str(&" ".repeat(23));
                }
                h.push_str(info.header);
            }
        }
    }
    h
}

/// The csv header line of `toks`.
pub(crate) fn csv_header(toks: &[Token]) -> String {
    toks.iter()
        .map(|t| TOKENS.iter().find(|i| i.token == *t).and_then(|i| i.csv).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_formats() {
        for n in ["line", "LONG", "extended", "biline", "bilong", "raw", "json", "ndjson", "null"] {
            Format::parse(n).unwrap();
        }
        assert!(Format::parse("line6").unwrap().full_ipv6);
        assert!(!Format::parse("line").unwrap().full_ipv6);
        assert!(Format::parse("csv").unwrap().is_csv());
        assert!(matches!(Format::parse("bogus"), Err(FormatError::UnknownFormat(_))));
        assert!(matches!(Format::parse("nsel"), Err(FormatError::FormatNotSupported(_))));
    }

    #[test]
    fn line_header_is_nfdumps() {
        let Kind::Fmt(items) = Format::parse("line").unwrap().kind else { panic!() };
        assert_eq!(
            fmt_header(&items, false),
            "Date first seen         Duration         Proto      Src IP Addr:Port          Dst IP Addr:Port   Packets    Bytes Flows"
        );
    }

    #[test]
    fn tokens_delimit_like_nfdump() {
        let items = parse_fmt("%ts%td|%sa:x").unwrap();
        assert_eq!(
            items,
            vec![
                Item::Tok(Token::Ts),
                Item::Tok(Token::Td),
                Item::Lit("|".into()),
                Item::Tok(Token::Sa),
                Item::Lit(":x".into()),
            ]
        );
        assert!(matches!(parse_fmt("%tsx"), Err(FormatError::UnknownToken { .. })));
        assert!(matches!(parse_fmt("%ja3"), Err(FormatError::NotSupported(_))));
        let e = parse_fmt("%bogus").unwrap_err().to_string();
        assert!(e.contains("%bogus") && e.contains("%mpls10"), "{e}");
    }

    #[test]
    fn embedded_formats() {
        let a = parse_fmt("%long %ra").unwrap();
        let mut b = parse_fmt(FORMAT_LONG).unwrap();
        b.push(Item::Lit(" ".into()));
        b.push(Item::Tok(Token::Ra));
        assert_eq!(a, b);
    }

    #[test]
    fn aggregation_format_like_nfdump() {
        use weir_query::AggKey;
        let keys = [
            AggKey::Prefix { field: Field::SrcAddr, ipv6: false, bits: 24 },
            AggKey::Field(Field::DstPort),
        ];
        let Kind::Fmt(items) = Format::aggregation(&keys, false).kind else { panic!() };
        // nfdump 1.7.8's header for `-A srcip4/24,dstport` (reference §1.3).
        assert_eq!(
            fmt_header(&items, false),
            "Date first seen         Duration               Src IP Addr Dst Pt   Packets    Bytes      bps    Bpp Flows"
        );
        let Kind::Csv(toks) = Format::aggregation(&keys, true).kind else { panic!() };
        assert_eq!(
            csv_header(&toks),
            "firstSeen,duration,srcAddr,dstPort,packets,bytes,bps,bpp,flows"
        );
    }

    #[test]
    fn csv_rules() {
        assert_eq!(parse_csv("%ts, %td ,%pr").unwrap(), vec![Token::Ts, Token::Td, Token::Pr]);
        assert!(matches!(parse_csv("%sap"), Err(FormatError::NotInCsv { .. })));
        assert!(matches!(parse_csv("%n"), Err(FormatError::NotInCsv { .. })));
        assert!(matches!(parse_csv("%ts %td"), Err(FormatError::CsvSyntax(_))));
        assert!(matches!(parse_csv("   "), Err(FormatError::CsvSyntax(_))));
        assert!(matches!(parse_csv("%ts,"), Err(FormatError::CsvSyntax(_))));
        assert_eq!(
            csv_header(&parse_csv(FORMAT_CSV).unwrap()),
            "firstSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,packets,bytes,flows"
        );
    }

    #[test]
    fn every_token_has_fields_and_headers() {
        for t in TOKENS {
            let _ = t.token.fields();
            assert!(!t.header.is_empty() || t.token == Token::Newline);
            parse_fmt(t.name).unwrap();
        }
        for u in UNSUPPORTED {
            assert!(lookup(u).is_none());
        }
    }
}
