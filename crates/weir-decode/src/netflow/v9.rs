//! NetFlow v9 (RFC 3954): header and template / options template flowsets.
//!
//! Header (20 bytes): version 9, count (records of all kinds; not used to
//! walk, the flowset lengths are), sysUptime (ms), unix_secs, package
//! sequence (next expected = seq + 1, per exporter and source id), source
//! id. Flowset 0 holds templates, 1 options templates, 2-255 are reserved
//! (skipped), 256+ are data. A template with a field count of 0 is an
//! error (v9 has no withdrawal; it is skipped); options template scope fields are scope *types*, not field types,
//! and set nothing in a flow.

use super::be16;
use super::be32;
use super::message::{Header, Parsed};
use super::template::MAX_FIELDS;
use crate::{ErrorKind, Protocol, TemplateField};

pub(super) const TEMPLATE_SET: u16 = 0;
pub(super) const OPTIONS_SET: u16 = 1;

pub(super) fn header(p: &[u8]) -> Result<Header, ErrorKind> {
    if p.len() < 20 {
        return Err(ErrorKind::Truncated { what: "netflow v9 header", need: 20, have: p.len() });
    }
    let g = |o| be32(p, o).unwrap_or(0);
    Ok(Header {
        protocol: Protocol::V9,
        count: u32::from(be16(p, 2).unwrap_or(0)),
        sys_uptime: Some(g(4)),
        unix_secs: g(8),
        sequence: g(12),
        domain: g(16),
        body: 20,
        end: p.len(),
        length_error: None,
    })
}

/// Parses a template (`options == false`) or options template flowset body
/// (after the 4-byte set header). `base` is the body's offset in the
/// datagram. Stops at the first malformed record (the rest of the set
/// cannot be framed) and reports it.
pub(super) fn template_set(body: &[u8], base: usize, options: bool, out: &mut Vec<Parsed>) {
    let mut pos = 0usize;
    let rest = |pos: usize| body.len() - pos;
    loop {
        let start = pos;
        let need_hdr = if options { 6 } else { 4 };
        if rest(pos) < need_hdr {
            return; // padding
        }
        let id = be16(body, pos).unwrap_or(0);
        let n1 = be16(body, pos + 2).unwrap_or(0);
        let (scope_fields, nfields, hlen) = if options {
            let scope_len = usize::from(n1);
            let opt_len = usize::from(be16(body, pos + 4).unwrap_or(0));
            if id == 0 && scope_len == 0 && opt_len == 0 {
                return; // padding
            }
            if !scope_len.is_multiple_of(4) || !opt_len.is_multiple_of(4) {
                out.push(Parsed::Error(
                    base + start,
                    ErrorKind::BadTemplate(format!(
                        "options template {id}: scope length {scope_len} / options length \
                         {opt_len} not a multiple of 4"
                    )),
                ));
                return;
            }
            ((scope_len / 4) as u16, scope_len / 4 + opt_len / 4, 6)
        } else {
            if n1 == 0 {
                if id == 0 {
                    return; // padding
                }
                // RFC 3954 has no withdrawal; a field count of 0 is invalid.
                out.push(Parsed::Error(
                    base + start,
                    ErrorKind::BadTemplate(format!("template {id}: field count 0")),
                ));
                pos += 4;
                continue;
            }
            (0, usize::from(n1), 4)
        };
        let need = hlen + nfields * 4;
        if rest(pos) < need {
            out.push(Parsed::Error(
                base + start,
                ErrorKind::Truncated {
                    what: if options { "v9 options template" } else { "v9 template" },
                    need,
                    have: rest(pos),
                },
            ));
            return;
        }
        pos += need;
        if id < 256 {
            out.push(Parsed::Error(
                base + start,
                ErrorKind::BadTemplate(format!("template id {id} is below 256")),
            ));
            continue;
        }
        if nfields > MAX_FIELDS {
            out.push(Parsed::Error(
                base + start,
                ErrorKind::BadTemplate(format!("template {id}: {nfields} fields")),
            ));
            continue;
        }
        let fields = (0..nfields)
            .map(|i| {
                let o = start + hlen + i * 4;
                TemplateField {
                    id: be16(body, o).unwrap_or(0),
                    enterprise: 0,
                    length: be16(body, o + 2).unwrap_or(0),
                }
            })
            .collect();
        out.push(Parsed::Template { id, options, scope_fields, fields, offset: base + start });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_withdrawal_padding_and_truncation() {
        // template 256 (2 fields), "withdrawal" of 300 (an error), padding
        let b = [1, 0, 0, 2, 0, 8, 0, 4, 0, 12, 0, 4, 1, 44, 0, 0, 0, 0];
        let mut out = Vec::new();
        template_set(&b, 24, false, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(matches!(&out[0], Parsed::Template { id: 256, fields, .. } if fields.len() == 2));
        assert!(matches!(out[1], Parsed::Error(36, ErrorKind::BadTemplate(_))));
        let mut out = Vec::new();
        template_set(&b[..10], 24, false, &mut out);
        assert!(matches!(out[0], Parsed::Error(24, ErrorKind::Truncated { .. })));
    }

    #[test]
    fn options_template() {
        // id 257, scope 4 bytes (1 field), options 8 bytes (2 fields), pad 2
        let b = [1, 1, 0, 4, 0, 8, 0, 1, 0, 4, 0, 34, 0, 4, 0, 35, 0, 1, 0, 0];
        let mut out = Vec::new();
        template_set(&b, 0, true, &mut out);
        assert_eq!(out.len(), 1);
        assert!(
            matches!(&out[0], Parsed::Template { id: 257, scope_fields: 1, fields, options: true, .. } if fields.len() == 3)
        );
        let mut out = Vec::new();
        template_set(&[1, 1, 0, 3, 0, 8], 0, true, &mut out);
        assert!(matches!(out[0], Parsed::Error(0, ErrorKind::BadTemplate(_))));
    }
}
