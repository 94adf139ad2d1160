//! The set walk shared by NetFlow v9 and IPFIX.
//!
//! Sets are walked by their length fields. A set whose length is impossible
//! (below 4, or beyond the message) ends the walk with an error: nothing
//! after it can be framed. Template sets are applied as they come; a data
//! set whose template is unknown is held and decoded after the last set if
//! the message defined the template meanwhile (exporters that send data
//! before template in one message lose nothing); otherwise it counts in
//! `unknown_template_sets`. Bytes after the last set that cannot hold a set
//! header (< 4) are ignored, as is record padding at the end of a set
//! (fewer bytes left than the shortest record of the template).

use weir_record::FlowRecord;

use super::fast::{Plan, SetContext};
use super::ie::{Clock, Scratch};
use super::template::{Domain, DomainKey, DomainTable, Lookup, Options, Template, VARLEN};
use super::{be16, ipfix, sampling, v9};
use crate::{
    AccountKey, Accounts, Datagram, DatagramInfo, DecodeError, DecoderConfig, Emit, ErrorKind,
    Event, HeaderInfo, OptionsRecord, Protocol, SamplingPolicy, Sink, TemplateField, TemplateInfo,
};

/// Which of the two template protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    V9,
    Ipfix,
}

/// The parts of a message header the walk needs.
#[derive(Debug)]
pub(super) struct Header {
    pub protocol: Protocol,
    pub count: u32,
    pub sys_uptime: Option<u32>,
    pub unix_secs: u32,
    pub sequence: u32,
    pub domain: u32,
    /// Offset of the first set.
    pub body: usize,
    /// End of the message (≤ payload length).
    pub end: usize,
    /// The message claims more bytes than the datagram has.
    pub length_error: Option<ErrorKind>,
}

/// One item of a template set.
#[derive(Debug)]
pub(super) enum Parsed {
    Template {
        id: u16,
        options: bool,
        scope_fields: u16,
        fields: Vec<TemplateField>,
        offset: usize,
    },
    Withdraw(u16),
    WithdrawAll {
        options: bool,
    },
    Error(usize, ErrorKind),
}

/// State of one message being decoded.
struct Run<'a, 's> {
    dg: &'a Datagram<'a>,
    cfg: &'a DecoderConfig,
    protocol: Protocol,
    domain: u32,
    clock: Clock,
    emit: Emit<'s>,
    errors: Vec<DecodeError>,
    unknown_sets: u64,
    records: u64,
    last_rate: Option<u32>,
}

pub(super) fn decode(
    dialect: Dialect,
    table: &mut DomainTable,
    dg: &Datagram<'_>,
    cfg: &DecoderConfig,
    acc: &mut Accounts,
    sink: &mut dyn Sink,
) -> Result<DatagramInfo, DecodeError> {
    let p = dg.payload;
    let ipfix = dialect == Dialect::Ipfix;
    let hdr = if ipfix { ipfix::header(p) } else { v9::header(p) }
        .map_err(|k| DecodeError::new(dg.exporter, 0, k))?;
    let exporter = dg.exporter.ip();
    let key = AccountKey { exporter, protocol: Some(hdr.protocol), domain: hdr.domain };
    let sysid = acc.entry(key).sysid;
    let header = HeaderInfo {
        exporter: dg.exporter,
        protocol: hdr.protocol,
        count: hdr.count,
        sys_uptime_ms: hdr.sys_uptime.unwrap_or(0),
        unix_secs: hdr.unix_secs,
        sequence: hdr.sequence,
        domain: hdr.domain,
        agent: None,
        engine: None,
    };
    let now = dg.received_ms;
    let ttl = cfg.templates.ttl_ms;
    let mut run = Run {
        dg,
        cfg,
        protocol: hdr.protocol,
        domain: hdr.domain,
        clock: Clock {
            export_ms: u64::from(hdr.unix_secs) * 1000,
            sys_uptime: hdr.sys_uptime,
            sys_init_ms: None,
            received_ms: now,
        },
        emit: Emit::new(sink, cfg.sampling, exporter, sysid),
        errors: Vec::new(),
        unknown_sets: 0,
        records: 0,
        last_rate: None,
    };
    run.emit.event(&Event::Header(&header));
    if let Some(k) = hdr.length_error {
        run.error(2, k);
    }

    let mut dom = table.domain(DomainKey { addr: exporter, ipfix, domain: hdr.domain }, now, ttl);
    if let Some(d) = dom.as_deref() {
        run.clock.sys_init_ms = d.options.sys_init_ms;
    }
    let (tset, oset) = if ipfix {
        (ipfix::TEMPLATE_SET, ipfix::OPTIONS_SET)
    } else {
        (v9::TEMPLATE_SET, v9::OPTIONS_SET)
    };
    let mut deferred: Vec<(usize, u16)> = Vec::new();
    let mut parsed = Vec::new();
    let mut off = hdr.body;
    while hdr.end.saturating_sub(off) >= 4 {
        let id = be16(p, off).unwrap_or(0);
        let len = usize::from(be16(p, off + 2).unwrap_or(0));
        if len < 4 {
            // Zero bytes to the end: padding (seen from Cisco ACI), not an error.
            if p.get(off..hdr.end).is_some_and(|rest| rest.iter().all(|&b| b == 0)) {
                break;
            }
            run.error(off + 2, ErrorKind::BadLength { what: "set", length: len });
            break;
        }
        let Some(body) = p.get(off + 4..off + len) else {
            let have = p.len() - off;
            run.error(off, ErrorKind::Truncated { what: "set", need: len, have });
            break;
        };
        let mut last = false;
        if off + len > hdr.end {
            // The set runs past the message length but not past the
            // datagram: the length field is wrong (seen in the wild), the
            // set is used and is the last one walked.
            run.error(2, ErrorKind::BadLength { what: "message", length: hdr.end });
            last = true;
        }
        if id == tset || id == oset {
            if ipfix {
                ipfix::template_set(body, off + 4, id == oset, &mut parsed);
            } else {
                v9::template_set(body, off + 4, id == oset, &mut parsed);
            }
            run.templates(&mut parsed, dom.as_deref_mut(), ipfix);
        } else if id >= 256 {
            match dom.as_deref_mut() {
                None => run.unknown_sets += 1,
                Some(d) => match d.templates.lookup(id, now, ttl) {
                    Lookup::Found(t) => run.data_set(t, &mut d.options, body, off + 4),
                    Lookup::Expired => {
                        run.withdrawn(id);
                        deferred.push((off, id));
                    }
                    Lookup::Missing => deferred.push((off, id)),
                },
            }
        }
        // 2-255 (v9) / 4-255 (IPFIX) are reserved: skipped.
        off += len;
        if last {
            break;
        }
    }
    for (off, id) in deferred {
        let set = dom.as_deref_mut().and_then(|d| {
            let body = p.get(off + 4..off + usize::from(be16(p, off + 2)?))?;
            Some((d, body))
        });
        match set {
            Some((d, body)) => match d.templates.get(id) {
                Some(t) => run.data_set(t, &mut d.options, body, off + 4),
                None => run.unknown_sets += 1,
            },
            None => run.unknown_sets += 1,
        }
    }

    let next = if ipfix {
        hdr.sequence.wrapping_add(run.records as u32)
    } else {
        hdr.sequence.wrapping_add(1)
    };
    let sequence_failures = acc.sequence(key, hdr.sequence, next);
    if let Some(r) = run.last_rate {
        acc.entry(key).sampling_rate = r;
    }
    Ok(DatagramInfo {
        protocol: hdr.protocol,
        domain: hdr.domain,
        exporter,
        flows: run.emit.flows,
        packets: run.emit.packets,
        sampling_rate: run.emit.sampling_rate,
        bytes: run.emit.bytes,
        unknown_template_sets: run.unknown_sets,
        sequence_failures,
        errors: run.errors,
    })
}

impl Run<'_, '_> {
    #[cold]
    fn error(&mut self, offset: usize, kind: ErrorKind) {
        let e = DecodeError::new(self.dg.exporter, offset, kind);
        self.emit.event(&Event::Error(&e));
        self.errors.push(e);
    }

    fn withdrawn(&mut self, template_id: u16) {
        self.emit.event(&Event::TemplateWithdrawn {
            exporter: self.dg.exporter,
            domain: self.domain,
            template_id,
        });
    }

    /// Applies the items of a template set.
    fn templates(&mut self, parsed: &mut Vec<Parsed>, mut dom: Option<&mut Domain>, ipfix: bool) {
        let now = self.dg.received_ms;
        for item in parsed.drain(..) {
            match item {
                Parsed::Error(off, k) => self.error(off, k),
                Parsed::Template { id, options, scope_fields, fields, offset } => {
                    let Some(d) = dom.as_deref_mut() else {
                        self.error(offset, ErrorKind::TemplateLimit);
                        continue;
                    };
                    let info = TemplateInfo {
                        exporter: self.dg.exporter,
                        protocol: self.protocol,
                        domain: self.domain,
                        template_id: id,
                        options,
                        scope_fields,
                        fields,
                    };
                    if let Some(t) = d.templates.refresh(&info, now) {
                        self.emit.event(&Event::Template(&t.info));
                        continue;
                    }
                    let inserted = Template::compile(info, ipfix, now)
                        .and_then(|t| d.templates.insert(t, &self.cfg.templates, now));
                    match inserted {
                        Ok(t) => self.emit.event(&Event::Template(&t.info)),
                        Err(k) => self.error(offset, k),
                    }
                }
                Parsed::Withdraw(id) => {
                    if let Some(d) = dom.as_deref_mut() {
                        d.templates.remove(id);
                    }
                    self.withdrawn(id);
                }
                Parsed::WithdrawAll { options } => {
                    let ids = dom.as_deref_mut().map(|d| d.templates.remove_all(options));
                    for id in ids.unwrap_or_default() {
                        self.withdrawn(id);
                    }
                }
            }
        }
    }

    /// Decodes the records of one data set (`body` after the set header,
    /// at offset `base` of the datagram).
    fn data_set(&mut self, t: &Template, opts: &mut Options, body: &[u8], base: usize) {
        let mut pos = 0usize;
        if let Some(plan) = &t.fast {
            pos = self.fast_records(plan, opts, body);
        }
        let options = t.info.options;
        while body.len() - pos >= t.min_len {
            let start = pos;
            let mut s = Scratch::default();
            let mut values = Vec::new();
            for (i, &(len, act)) in t.ops.iter().enumerate() {
                let l = if len == VARLEN {
                    let Some(&b) = body.get(pos) else {
                        return self.truncated(base, start, body.len());
                    };
                    pos += 1;
                    if b < 255 {
                        usize::from(b)
                    } else {
                        let Some(l) = be16(body, pos) else {
                            return self.truncated(base, start, body.len());
                        };
                        pos += 2;
                        usize::from(l)
                    }
                } else {
                    usize::from(len)
                };
                let Some(v) = body.get(pos..pos + l) else {
                    return self.truncated(base, start, body.len());
                };
                s.apply(act, v);
                if options && let Some(f) = t.info.fields.get(i) {
                    values.push((*f, v.to_vec()));
                }
                pos += l;
            }
            self.records += 1;
            if options {
                self.options_record(t, opts, &s, values);
            } else {
                self.flow(s, opts);
            }
        }
    }

    /// Appends the records of a simple template's data set straight to the
    /// sink's column builder, if it offers one (see `fast`); returns the
    /// bytes of `body` consumed (the rest goes the general way).
    fn fast_records(&mut self, plan: &Plan, opts: &Options, body: &[u8]) -> usize {
        // As `flow` and `Emit::flow`: simple templates carry no sampling
        // elements, so the domain-wide rate applies.
        let own = opts.default_rate.filter(|&r| r > 1);
        let (stored_rate, scale) = match self.emit.policy {
            SamplingPolicy::Force(r) => (Some(r), r),
            SamplingPolicy::Scale => (own, own.unwrap_or(1)),
            SamplingPolicy::Raw => (own, 1),
        };
        let cx = SetContext {
            clock: self.clock,
            received_ms: self.dg.received_ms,
            flow_version: if self.protocol == Protocol::V9 { 9 } else { 10 },
            domain: self.domain,
            exporter_addr: self.emit.exporter_addr,
            sysid: self.emit.sysid,
            stored_rate,
            scale,
        };
        let mut pos = 0usize;
        while body.len() - pos >= plan.len() {
            let Some((b, room)) = self.emit.sink.batch() else { break };
            let done = plan.decode(&body[pos..], room, &cx, b);
            self.emit.sink.batch_done();
            if done.records == 0 {
                break;
            }
            pos += done.records * plan.len();
            self.records += done.records as u64;
            let e = &mut self.emit;
            e.flows += done.records as u64;
            e.packets = e.packets.saturating_add(done.packets);
            e.bytes = e.bytes.saturating_add(done.bytes);
            e.sampling_rate = e.sampling_rate.max(stored_rate.unwrap_or(0));
            if own.is_some() {
                self.last_rate = own;
            }
        }
        pos
    }

    #[cold]
    fn truncated(&mut self, base: usize, start: usize, len: usize) {
        let what =
            if self.protocol == Protocol::V9 { "v9 data record" } else { "ipfix data record" };
        // `need` is unknown for variable-length records: the bytes that
        // were left are reported.
        self.error(
            base + start,
            ErrorKind::Truncated { what, need: len - start + 1, have: len - start },
        );
    }

    fn options_record(
        &mut self,
        t: &Template,
        opts: &mut Options,
        s: &Scratch,
        values: Vec<(TemplateField, Vec<u8>)>,
    ) {
        if let Some(rate) = sampling::learn(opts, s)
            && rate > 1
        {
            self.last_rate = Some(rate);
        }
        if self.protocol == Protocol::Ipfix && opts.sys_init_ms.is_some() {
            self.clock.sys_init_ms = opts.sys_init_ms;
        }
        let rec = OptionsRecord {
            exporter: self.dg.exporter,
            domain: self.domain,
            template_id: t.info.template_id,
            values,
        };
        self.emit.event(&Event::Options(&rec));
    }

    #[inline]
    fn flow(&mut self, mut s: Scratch, opts: &Options) {
        s.finish();
        let mut clock = self.clock;
        if self.protocol == Protocol::Ipfix && s.sys_init_ms.is_some() {
            clock.sys_init_ms = s.sys_init_ms;
        }
        let (first, last) = s.times.resolve(&clock);
        let rate = sampling::rate_of(opts, &s);
        let rec: &mut FlowRecord = &mut s.rec;
        rec.first = first;
        rec.last = last;
        rec.received = self.dg.received_ms;
        rec.flow_version = Some(if self.protocol == Protocol::V9 { 9 } else { 10 });
        rec.obs_domain = Some(self.domain);
        if let Some(r) = rate
            && r > 1
        {
            rec.sampling_rate = Some(r);
            self.last_rate = Some(r);
        }
        self.emit.flow(rec);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Datagram, Decoder, Event, Sink};
    use weir_record::FlowRecord;

    #[derive(Default)]
    struct Collect {
        flows: Vec<FlowRecord>,
        withdrawn: usize,
    }
    impl Sink for Collect {
        fn flow(&mut self, f: &FlowRecord) {
            self.flows.push(f.clone());
        }
        fn event(&mut self, e: &Event<'_>) {
            if let Event::TemplateWithdrawn { .. } = e {
                self.withdrawn += 1;
            }
        }
    }

    fn ipfix(sets: &[&[u8]], seq: u32) -> Vec<u8> {
        let mut p = vec![0, 10, 0, 0, 0x65, 0x5f, 0, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 9]);
        for s in sets {
            p.extend_from_slice(s);
        }
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    #[test]
    fn data_before_template_varlen_withdrawal_unknown() {
        // Template 256: protocolIdentifier (1), a variable-length string
        // (interfaceName 82), octetDeltaCount (8).
        let tpl: &[u8] = &[0, 2, 0, 20, 1, 0, 0, 3, 0, 4, 0, 1, 0, 82, 0xff, 0xff, 0, 1, 0, 8];
        // Two records: short varlen (2 bytes) and 3-byte-length form (0 bytes), 1 pad byte.
        let data: &[u8] = &[
            1, 0, 0, 28, 6, 2, b'e', b'0', 0, 0, 0, 0, 0, 0, 0, 9, 17, 255, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 7,
        ];
        let mut dec = Decoder::default();
        let m1 = ipfix(&[data, tpl], 0);
        let mut c = Collect::default();
        let dg =
            Datagram { exporter: "192.0.2.1:4739".parse().unwrap(), received_ms: 5, payload: &m1 };
        let info = dec.decode(&dg, &mut c).unwrap();
        assert_eq!((info.flows, info.unknown_template_sets, info.errors.len()), (2, 0, 0));
        assert_eq!((c.flows[0].proto, c.flows[0].bytes, c.flows[1].bytes), (6, 9, 7));
        assert_eq!(c.flows[0].obs_domain, Some(9));
        // Withdraw all templates, then data for 256 is unknown; the
        // sequence (2 records before) is right.
        let m2 = ipfix(&[&[0, 2, 0, 8, 0, 2, 0, 0], data], 2);
        let dg = Datagram { payload: &m2, ..dg };
        let info = dec.decode(&dg, &mut c).unwrap();
        assert_eq!((info.flows, info.unknown_template_sets, info.sequence_failures), (0, 1, 0));
        assert_eq!(c.withdrawn, 1);
        // A set running past the datagram: error, earlier sets still used.
        let mut m3 = ipfix(&[tpl, data], 2);
        m3.truncate(m3.len() - 3);
        let len = m3.len() as u16;
        m3[2..4].copy_from_slice(&len.to_be_bytes());
        let dg = Datagram { payload: &m3, ..dg };
        let info = dec.decode(&dg, &mut c).unwrap();
        assert_eq!((info.flows, info.errors.len()), (0, 1));
        assert_eq!(info.errors[0].offset, 16 + 20);
    }
}
