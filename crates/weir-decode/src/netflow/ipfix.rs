//! IPFIX (RFC 7011): message header and (options) template sets.
//!
//! Header (16 bytes): version 10, message length, export time (s),
//! sequence number (data records sent before this message, per
//! observation domain: next expected = seq + data records in this
//! message), observation domain id. Bytes after the message length are
//! ignored (some exporters pad datagrams); a length beyond the datagram is
//! reported and the bytes that are there are still walked.
//!
//! Set 2 holds templates, 3 options templates (with a scope field count),
//! 4-255 are reserved (skipped), 256+ are data. Field specifiers with the
//! enterprise bit carry a 4-byte enterprise number. Field count 0 withdraws
//! a template; template id 2 (in set 2) or 3 (in set 3) with count 0
//! withdraws all templates or all options templates of the domain.

use super::message::{Header, Parsed};
use super::template::MAX_FIELDS;
use super::{be16, be32};
use crate::{ErrorKind, Protocol, TemplateField};

pub(super) const TEMPLATE_SET: u16 = 2;
pub(super) const OPTIONS_SET: u16 = 3;

pub(super) fn header(p: &[u8]) -> Result<Header, ErrorKind> {
    if p.len() < 16 {
        return Err(ErrorKind::Truncated { what: "ipfix message header", need: 16, have: p.len() });
    }
    let length = usize::from(be16(p, 2).unwrap_or(0));
    if length < 16 {
        return Err(ErrorKind::BadLength { what: "ipfix message", length });
    }
    let length_error = (length > p.len()).then_some(ErrorKind::Truncated {
        what: "ipfix message",
        need: length,
        have: p.len(),
    });
    let g = |o| be32(p, o).unwrap_or(0);
    Ok(Header {
        protocol: Protocol::Ipfix,
        count: 0,
        sys_uptime: None,
        unix_secs: g(4),
        sequence: g(8),
        domain: g(12),
        body: 16,
        end: length.min(p.len()),
        length_error,
    })
}

/// Parses a template (`options == false`) or options template set body.
/// Stops at the first record that cannot be framed and reports it.
pub(super) fn template_set(body: &[u8], base: usize, options: bool, out: &mut Vec<Parsed>) {
    let mut pos = 0usize;
    let rest = |pos: usize| body.len() - pos;
    while rest(pos) >= 4 {
        let start = pos;
        let id = be16(body, pos).unwrap_or(0);
        let count = usize::from(be16(body, pos + 2).unwrap_or(0));
        if count == 0 {
            match id {
                0 => return, // padding
                TEMPLATE_SET if !options => out.push(Parsed::WithdrawAll { options: false }),
                OPTIONS_SET if options => out.push(Parsed::WithdrawAll { options: true }),
                256.. => out.push(Parsed::Withdraw(id)),
                _ => out.push(Parsed::Error(
                    base + start,
                    ErrorKind::BadTemplate(format!("withdrawal of template id {id}")),
                )),
            }
            pos += 4;
            continue;
        }
        let mut scope_fields = 0u16;
        pos += 4;
        if options {
            match be16(body, pos) {
                Some(s) => scope_fields = s,
                None => {
                    out.push(Parsed::Error(
                        base + start,
                        ErrorKind::Truncated {
                            what: "ipfix options template",
                            need: 6,
                            have: rest(start),
                        },
                    ));
                    return;
                }
            }
            pos += 2;
        }
        let mut fields = Vec::with_capacity(count.min(MAX_FIELDS));
        for _ in 0..count {
            let (Some(raw), Some(length)) = (be16(body, pos), be16(body, pos + 2)) else {
                out.push(Parsed::Error(
                    base + start,
                    ErrorKind::Truncated {
                        what: "ipfix template field",
                        need: pos + 4 - start,
                        have: rest(start),
                    },
                ));
                return;
            };
            pos += 4;
            let enterprise = if raw & 0x8000 != 0 {
                let Some(e) = be32(body, pos) else {
                    out.push(Parsed::Error(
                        base + start,
                        ErrorKind::Truncated {
                            what: "ipfix enterprise number",
                            need: pos + 4 - start,
                            have: rest(start),
                        },
                    ));
                    return;
                };
                pos += 4;
                e
            } else {
                0
            };
            if fields.len() < MAX_FIELDS + 1 {
                fields.push(TemplateField { id: raw & 0x7fff, enterprise, length });
            }
        }
        if id < 256 {
            out.push(Parsed::Error(
                base + start,
                ErrorKind::BadTemplate(format!("template id {id} is below 256")),
            ));
            continue;
        }
        // A scope count of 0 breaks RFC 7011 but is harmless: accepted.
        if usize::from(scope_fields) > count {
            out.push(Parsed::Error(
                base + start,
                ErrorKind::BadTemplate(format!(
                    "options template {id}: scope field count {scope_fields} of {count}"
                )),
            ));
            continue;
        }
        out.push(Parsed::Template { id, options, scope_fields, fields, offset: base + start });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        let mut p = vec![0u8; 20];
        p[1] = 10;
        p[3] = 20;
        let h = header(&p).unwrap();
        assert_eq!((h.end, h.length_error.is_none()), (20, true));
        p[3] = 30;
        let h = header(&p).unwrap();
        assert_eq!((h.end, h.length_error.is_some()), (20, true));
        p[3] = 15;
        assert!(header(&p).is_err());
        assert!(header(&p[..15]).is_err());
    }

    #[test]
    fn templates_enterprise_withdrawals() {
        let b = [
            1, 0, 0, 2, // template 256, 2 fields
            0x80, 1, 0, 8, 0, 0, 0x72, 0x79, // reverse octetDeltaCount
            0, 8, 0, 4, // sourceIPv4Address
            0, 2, 0, 0, // withdraw all
            1, 1, 0, 0, // withdraw 257
            0, 0, // padding
        ];
        let mut out = Vec::new();
        template_set(&b, 20, false, &mut out);
        assert_eq!(out.len(), 3, "{out:?}");
        match &out[0] {
            Parsed::Template { fields, .. } => {
                assert_eq!(fields[0], TemplateField { id: 1, enterprise: 29305, length: 8 });
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(out[1], Parsed::WithdrawAll { options: false }));
        assert!(matches!(out[2], Parsed::Withdraw(257)));
        let mut out = Vec::new();
        template_set(&b[..10], 20, false, &mut out);
        assert!(matches!(out[0], Parsed::Error(20, ErrorKind::Truncated { .. })));
    }

    #[test]
    fn options_template_scope_count() {
        let b = [1, 0, 0, 1, 0, 2, 0, 34, 0, 4];
        let mut out = Vec::new();
        template_set(&b, 0, true, &mut out);
        assert!(matches!(out[0], Parsed::Error(0, ErrorKind::BadTemplate(_))));
        let b = [1, 0, 0, 1, 0, 1, 0, 34, 0, 4];
        let mut out = Vec::new();
        template_set(&b, 0, true, &mut out);
        assert!(matches!(out[0], Parsed::Template { scope_fields: 1, .. }));
    }
}
