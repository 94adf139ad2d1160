//! NetFlow v1/v5/v7, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) encoders:
//! [`FlowRecord`]s in, UDP payloads out.
//!
//! - [`LegacyEncoder`] writes v1/v5/v7 datagrams (fixed records), splitting
//!   flows over as many datagrams as the version's record limit needs and
//!   numbering them with the right `flow_sequence` (flows sent before).
//! - [`TemplateEncoder`] writes v9 or IPFIX messages for a set of
//!   [`Template`]s you choose (which elements, which lengths), with
//!   template sets, data sets, sampler options records, and correct
//!   sequence numbers (v9: datagrams sent before; IPFIX: data records sent
//!   before, per observation domain).
//!
//! Times: the exporter "booted" at `boot_ms` (ms since the epoch); sysUptime
//! values are ms since then. So that times survive a decode exactly, v9
//! headers carry the uptime of the whole second of `unix_secs`, and v5/v7
//! headers carry the export time's milliseconds in `unix_nsecs`.
//!
//! ```
//! use weir_encode::netflow::{Template, TemplateEncoder, TemplateProtocol};
//! use weir_record::FlowRecord;
//!
//! let mut enc = TemplateEncoder::new(TemplateProtocol::Ipfix, 7, 1_700_000_000_000);
//! enc.add_template(Template::ipv4(256, TemplateProtocol::Ipfix));
//! let flow = FlowRecord { proto: 6, packets: 1, bytes: 60, ..Default::default() };
//! let msgs = enc.data(256, &[flow], 1_700_000_100_000, true);
//! assert_eq!(msgs.len(), 1);
//! assert_eq!(&msgs[0][..2], &[0, 10]); // IPFIX version
//! ```

use std::net::Ipv6Addr;

use weir_record::{FlowRecord, is_ipv4_mapped};

/// NetFlow v1, v5 or v7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyVersion {
    /// v1: 16-byte header, 48-byte records, at most 24 per datagram.
    V1,
    /// v5: 24-byte header, 48-byte records, at most 30 per datagram.
    V5,
    /// v7: 24-byte header, 52-byte records, at most 28 per datagram.
    V7,
}

impl LegacyVersion {
    /// (version number, header length, record length, records per datagram).
    fn layout(self) -> (u16, usize, usize, usize) {
        match self {
            LegacyVersion::V1 => (1, 16, 48, 24),
            LegacyVersion::V5 => (5, 24, 48, 30),
            LegacyVersion::V7 => (7, 24, 52, 28),
        }
    }
}

/// The low 32 bits of an IPv4-mapped address (0 for IPv6 or absent).
fn v4_of(a: Option<u128>) -> u32 {
    match a {
        Some(v) if is_ipv4_mapped(v) => v as u32,
        _ => 0,
    }
}

/// Encoder of NetFlow v1/v5/v7 datagrams for one exporter.
#[derive(Debug, Clone)]
pub struct LegacyEncoder {
    /// Version written.
    pub version: LegacyVersion,
    /// When the exporter booted (ms since the epoch).
    pub boot_ms: u64,
    /// v5 header engine type (v5 only; records of v1/v7 carry none).
    pub engine_type: u8,
    /// v5 header engine id.
    pub engine_id: u8,
    /// v5 header sampling field: mode in the top 2 bits, interval in the
    /// low 14.
    pub sampling: u16,
    sequence: u32,
}

impl LegacyEncoder {
    /// An encoder whose exporter booted at `boot_ms`.
    pub fn new(version: LegacyVersion, boot_ms: u64) -> LegacyEncoder {
        LegacyEncoder { version, boot_ms, engine_type: 0, engine_id: 0, sampling: 0, sequence: 0 }
    }

    /// Records that fit in one datagram.
    pub fn max_records(&self) -> usize {
        self.version.layout().3
    }

    /// Flows sent so far (the next datagram's `flow_sequence`).
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// Encodes `flows` as datagrams exported at `export_ms`. Fields the
    /// version cannot carry are dropped; 32-bit counters and 16-bit
    /// interfaces/AS numbers are truncated.
    pub fn encode(&mut self, flows: &[FlowRecord], export_ms: u64) -> Vec<Vec<u8>> {
        let (_, hlen, rlen, max) = self.version.layout();
        flows
            .chunks(max)
            .map(|chunk| {
                let mut p = Vec::with_capacity(hlen + rlen * chunk.len());
                self.encode_into(chunk, export_ms, &mut p);
                p
            })
            .collect()
    }

    /// Writes **one** datagram into `out` (cleared first) holding the first
    /// [`max_records`](Self::max_records) flows of `flows` at most, and
    /// returns how many it took. The buffer-reusing form of
    /// [`encode`](Self::encode) for senders; an empty `flows` gives a
    /// header-only datagram.
    pub fn encode_into(
        &mut self,
        flows: &[FlowRecord],
        export_ms: u64,
        out: &mut Vec<u8>,
    ) -> usize {
        let (version, _, _, max) = self.version.layout();
        let chunk = &flows[..flows.len().min(max)];
        let uptime = export_ms.saturating_sub(self.boot_ms) as u32;
        let p = out;
        p.clear();
        p.extend_from_slice(&version.to_be_bytes());
        p.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        p.extend_from_slice(&uptime.to_be_bytes());
        p.extend_from_slice(&((export_ms / 1000) as u32).to_be_bytes());
        p.extend_from_slice(&(((export_ms % 1000) * 1_000_000) as u32).to_be_bytes());
        if self.version != LegacyVersion::V1 {
            p.extend_from_slice(&self.sequence.to_be_bytes());
            if self.version == LegacyVersion::V5 {
                p.extend_from_slice(&[self.engine_type, self.engine_id]);
                p.extend_from_slice(&self.sampling.to_be_bytes());
            } else {
                p.extend_from_slice(&[0; 4]);
            }
        }
        for f in chunk {
            self.record(f, p);
        }
        self.sequence = self.sequence.wrapping_add(chunk.len() as u32);
        chunk.len()
    }

    fn record(&self, f: &FlowRecord, p: &mut Vec<u8>) {
        let up = |t: u64| (t.saturating_sub(self.boot_ms) as u32).to_be_bytes();
        p.extend_from_slice(&v4_of(f.src_addr).to_be_bytes());
        p.extend_from_slice(&v4_of(f.dst_addr).to_be_bytes());
        p.extend_from_slice(&v4_of(f.next_hop).to_be_bytes());
        p.extend_from_slice(&(f.input_if.unwrap_or(0) as u16).to_be_bytes());
        p.extend_from_slice(&(f.output_if.unwrap_or(0) as u16).to_be_bytes());
        p.extend_from_slice(&(f.packets as u32).to_be_bytes());
        p.extend_from_slice(&(f.bytes as u32).to_be_bytes());
        p.extend_from_slice(&up(f.first));
        p.extend_from_slice(&up(f.last));
        p.extend_from_slice(&f.src_port.to_be_bytes());
        p.extend_from_slice(&f.dst_port.to_be_bytes());
        match self.version {
            LegacyVersion::V1 => {
                p.extend_from_slice(&[0, 0, f.proto, f.src_tos, f.tcp_flags]);
                p.extend_from_slice(&[0; 7]);
            }
            LegacyVersion::V5 | LegacyVersion::V7 => {
                p.extend_from_slice(&[0, f.tcp_flags, f.proto, f.src_tos]);
                p.extend_from_slice(&(f.src_as.unwrap_or(0) as u16).to_be_bytes());
                p.extend_from_slice(&(f.dst_as.unwrap_or(0) as u16).to_be_bytes());
                p.extend_from_slice(&[f.src_mask.unwrap_or(0), f.dst_mask.unwrap_or(0), 0, 0]);
                if self.version == LegacyVersion::V7 {
                    p.extend_from_slice(&[0; 4]); // router_sc
                }
            }
        }
    }
}

/// NetFlow v9 or IPFIX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateProtocol {
    /// NetFlow v9 (RFC 3954).
    V9,
    /// IPFIX (RFC 7011).
    Ipfix,
}

/// One field of a template: information element, length, enterprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Information element id (v9 field type).
    pub id: u16,
    /// Length in bytes (IPFIX: 0xffff for variable length, written with a
    /// 1-byte length prefix).
    pub length: u16,
    /// Enterprise number (IPFIX; 0 = IANA).
    pub enterprise: u32,
}

impl Field {
    /// An IANA element.
    pub const fn new(id: u16, length: u16) -> Field {
        Field { id, length, enterprise: 0 }
    }

    /// An enterprise-specific element (IPFIX only).
    pub const fn enterprise(id: u16, length: u16, enterprise: u32) -> Field {
        Field { id, length, enterprise }
    }
}

/// A data template: its id and fields. Which [`FlowRecord`] field each
/// element carries is given in [`TemplateEncoder`]'s documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Template id (256 and up).
    pub id: u16,
    /// Fields in order.
    pub fields: Vec<Field>,
}

/// Start/end time elements for a protocol: v9 uses sysUptime (22/21),
/// IPFIX flowStart/EndMilliseconds (152/153).
fn time_fields(p: TemplateProtocol) -> [Field; 2] {
    match p {
        TemplateProtocol::V9 => [Field::new(22, 4), Field::new(21, 4)],
        TemplateProtocol::Ipfix => [Field::new(152, 8), Field::new(153, 8)],
    }
}

impl Template {
    /// A typical IPv4 template: addresses, ports, protocol, flags, ToS,
    /// 64-bit counters, interfaces, AS numbers, masks, next hop, times.
    pub fn ipv4(id: u16, p: TemplateProtocol) -> Template {
        let mut fields = vec![Field::new(8, 4), Field::new(12, 4)];
        fields.extend(Template::family_neutral_fields());
        fields.extend([Field::new(9, 1), Field::new(13, 1), Field::new(15, 4)]);
        fields.extend(time_fields(p));
        Template { id, fields }
    }

    /// Ports, protocol, flags, ToS, 64-bit counters, interfaces and AS
    /// numbers: the part of [`Template::ipv4`] and [`Template::ipv6`] that
    /// does not depend on the address family.
    fn family_neutral_fields() -> [Field; 11] {
        [
            Field::new(7, 2),
            Field::new(11, 2),
            Field::new(4, 1),
            Field::new(6, 1),
            Field::new(5, 1),
            Field::new(2, 8),
            Field::new(1, 8),
            Field::new(10, 4),
            Field::new(14, 4),
            Field::new(16, 4),
            Field::new(17, 4),
        ]
    }

    /// The IPv6 counterpart of [`Template::ipv4`].
    pub fn ipv6(id: u16, p: TemplateProtocol) -> Template {
        let mut fields = vec![Field::new(27, 16), Field::new(28, 16)];
        fields.extend(Template::family_neutral_fields());
        fields.extend([Field::new(29, 1), Field::new(30, 1), Field::new(62, 16)]);
        fields.extend(time_fields(p));
        Template { id, fields }
    }

    /// Every element the encoder knows, IPv4 flavour: [`Template::ipv4`]
    /// plus ICMP type/code, post ToS, out counters, flow count, next/prev
    /// AS, BGP next hop, VLANs, the four MACs, ten MPLS labels, direction,
    /// forwarding status, engine type/id, sampling interval and end reason.
    pub fn full_ipv4(id: u16, p: TemplateProtocol) -> Template {
        let mut t = Template::ipv4(id, p);
        t.fields.extend(Template::extra_fields());
        t.fields.push(Field::new(18, 4));
        t.fields.push(Field::new(32, 2));
        t
    }

    /// Every element the encoder knows, IPv6 flavour.
    pub fn full_ipv6(id: u16, p: TemplateProtocol) -> Template {
        let mut t = Template::ipv6(id, p);
        t.fields.extend(Template::extra_fields());
        t.fields.push(Field::new(63, 16));
        t.fields.push(Field::new(139, 2));
        t
    }

    fn extra_fields() -> Vec<Field> {
        let mut f = vec![
            Field::new(55, 1),
            Field::new(24, 8),
            Field::new(23, 8),
            Field::new(3, 8),
            Field::new(128, 4),
            Field::new(129, 4),
            Field::new(58, 2),
            Field::new(59, 2),
            Field::new(56, 6),
            Field::new(80, 6),
            Field::new(81, 6),
            Field::new(57, 6),
        ];
        f.extend((70..80).map(|id| Field::new(id, 3)));
        f.extend([
            Field::new(61, 1),
            Field::new(89, 1),
            Field::new(38, 1),
            Field::new(39, 1),
            Field::new(34, 4),
            Field::new(136, 1),
        ]);
        f
    }
}

/// Id of the sampler options template written by
/// [`TemplateEncoder::sampler_options`].
pub const SAMPLER_OPTIONS_TEMPLATE: u16 = 4095;

/// Encoder of NetFlow v9 or IPFIX messages for one exporter domain.
///
/// Element → [`FlowRecord`] field (the inverse of weir's decoder):
/// 1/2 bytes/packets, 3 flows, 4 proto, 5 src_tos, 6 tcp_flags, 7/11
/// ports, 8/12 and 27/28 addresses, 9/13 and 29/30 masks, 10/14
/// interfaces, 15/62 next hop, 16/17 AS, 18/63 BGP next hop, 21/22
/// last/first as sysUptime (v9: since `boot_ms`), 23/24 out
/// bytes/packets, 32/139 ICMP type/code (from dst_port), 34 sampling
/// rate, 38/39 engine, 55 dst_tos, 56/80/81/57 in src/in dst/out src/out
/// dst MAC, 58/59 VLANs, 61 direction, 70-79 MPLS labels, 89 forwarding
/// status, 128/129 next/prev AS, 136 end reason, 150/151 seconds, 152/153
/// ms, 154/155 µs and 156/157 ns (NTP format), 158/159 µs before export.
/// Any other element is written as zeros. Absent optional fields are
/// written as 0.
#[derive(Debug, Clone)]
pub struct TemplateEncoder {
    /// v9 or IPFIX.
    pub protocol: TemplateProtocol,
    /// v9 source id / IPFIX observation domain.
    pub domain: u32,
    /// When the exporter booted (ms since the epoch).
    pub boot_ms: u64,
    /// Largest datagram written (default 1400 bytes); data is split over
    /// several messages to stay below it.
    pub max_datagram: usize,
    templates: Vec<Template>,
    datagrams: u32,
    records: u32,
}

fn put_uint(out: &mut Vec<u8>, v: u64, len: usize) {
    let b = v.to_be_bytes();
    if len <= 8 {
        out.extend_from_slice(&b[8 - len..]);
    } else {
        out.resize(out.len() + len - 8, 0);
        out.extend_from_slice(&b);
    }
}

fn to_ntp(ms: u64) -> u64 {
    let secs = ms / 1000 + 2_208_988_800;
    let frac = ((ms % 1000) << 32).div_ceil(1000);
    (secs << 32) | frac
}

impl TemplateEncoder {
    /// An encoder for `domain` of an exporter that booted at `boot_ms`.
    pub fn new(protocol: TemplateProtocol, domain: u32, boot_ms: u64) -> TemplateEncoder {
        TemplateEncoder {
            protocol,
            domain,
            boot_ms,
            max_datagram: 1400,
            templates: Vec::new(),
            datagrams: 0,
            records: 0,
        }
    }

    /// Adds (or replaces) a template.
    pub fn add_template(&mut self, t: Template) {
        self.templates.retain(|x| x.id != t.id);
        self.templates.push(t);
    }

    /// The templates added so far.
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// The next message's sequence number (v9: datagrams sent; IPFIX:
    /// data records sent).
    pub fn sequence(&self) -> u32 {
        match self.protocol {
            TemplateProtocol::V9 => self.datagrams,
            TemplateProtocol::Ipfix => self.records,
        }
    }

    fn ipfix(&self) -> bool {
        self.protocol == TemplateProtocol::Ipfix
    }

    /// Starts a message: header with the count / length patched by `finish`.
    fn start(&self, export_ms: u64) -> Vec<u8> {
        let mut p = Vec::with_capacity(self.max_datagram);
        self.start_into(export_ms, &mut p);
        p
    }

    /// Appends a message header to `p` (count / length patched by `patch`).
    fn start_into(&self, export_ms: u64, p: &mut Vec<u8>) {
        let secs = (export_ms / 1000) as u32;
        if self.ipfix() {
            p.extend_from_slice(&10u16.to_be_bytes());
            p.extend_from_slice(&[0, 0]);
            p.extend_from_slice(&secs.to_be_bytes());
            p.extend_from_slice(&self.records.to_be_bytes());
        } else {
            let uptime = (u64::from(secs) * 1000).saturating_sub(self.boot_ms) as u32;
            p.extend_from_slice(&9u16.to_be_bytes());
            p.extend_from_slice(&[0, 0]);
            p.extend_from_slice(&uptime.to_be_bytes());
            p.extend_from_slice(&secs.to_be_bytes());
            p.extend_from_slice(&self.datagrams.to_be_bytes());
        }
        p.extend_from_slice(&self.domain.to_be_bytes());
    }

    /// Patches the header (v9 record count, IPFIX length) and counts.
    fn finish(&mut self, mut p: Vec<u8>, records: u32, data_records: u32) -> Vec<u8> {
        self.patch(&mut p, records, data_records);
        p
    }

    /// [`finish`](Self::finish) in place.
    fn patch(&mut self, p: &mut [u8], records: u32, data_records: u32) {
        if self.ipfix() {
            let len = p.len() as u16;
            p[2..4].copy_from_slice(&len.to_be_bytes());
        } else {
            p[2..4].copy_from_slice(&(records as u16).to_be_bytes());
        }
        self.datagrams = self.datagrams.wrapping_add(1);
        self.records = self.records.wrapping_add(data_records);
    }

    /// Appends a template set holding every template; returns the number
    /// of template records.
    fn template_set(&self, p: &mut Vec<u8>) -> u32 {
        let start = p.len();
        p.extend_from_slice(&(if self.ipfix() { 2u16 } else { 0u16 }).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        for t in &self.templates {
            p.extend_from_slice(&t.id.to_be_bytes());
            p.extend_from_slice(&(t.fields.len() as u16).to_be_bytes());
            for f in &t.fields {
                let ent = self.ipfix() && f.enterprise != 0;
                let id = if ent { f.id | 0x8000 } else { f.id };
                p.extend_from_slice(&id.to_be_bytes());
                p.extend_from_slice(&f.length.to_be_bytes());
                if ent {
                    p.extend_from_slice(&f.enterprise.to_be_bytes());
                }
            }
        }
        let len = (p.len() - start) as u16;
        p[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
        self.templates.len() as u32
    }

    /// A message holding only the template set.
    pub fn template_message(&mut self, export_ms: u64) -> Vec<u8> {
        let mut p = self.start(export_ms);
        let n = self.template_set(&mut p);
        self.finish(p, n, 0)
    }

    /// Messages carrying `flows` in data sets of template `template_id`
    /// (which must have been added), exported at `export_ms`; the first
    /// message also carries the template set if `with_templates`.
    ///
    /// # Panics
    /// If the template was not added.
    pub fn data(
        &mut self,
        template_id: u16,
        flows: &[FlowRecord],
        export_ms: u64,
        with_templates: bool,
    ) -> Vec<Vec<u8>> {
        let t =
            self.templates.iter().find(|t| t.id == template_id).expect("template added").clone();
        let mut out = Vec::new();
        let mut rest = flows;
        let mut first = true;
        while first || !rest.is_empty() {
            let mut p = self.start(export_ms);
            let mut records = 0;
            if first && with_templates {
                records += self.template_set(&mut p);
            }
            first = false;
            let set_start = p.len();
            p.extend_from_slice(&template_id.to_be_bytes());
            p.extend_from_slice(&[0, 0]);
            let mut n = 0u32;
            while let Some((f, more)) = rest.split_first() {
                let before = p.len();
                self.record(&t, f, export_ms, &mut p);
                if p.len() > self.max_datagram && n > 0 {
                    p.truncate(before);
                    break;
                }
                n += 1;
                rest = more;
            }
            // Pad the set to a multiple of 4 bytes (both RFCs allow it).
            while !(p.len() - set_start).is_multiple_of(4) {
                p.push(0);
            }
            let len = (p.len() - set_start) as u16;
            p[set_start + 2..set_start + 4].copy_from_slice(&len.to_be_bytes());
            out.push(self.finish(p, records + n, n));
        }
        out
    }

    /// Writes **one** message into `out` (cleared first) holding as many
    /// of `flows`, from the front, as fit into
    /// [`max_datagram`](Self::max_datagram) (at least one), and returns how
    /// many it took. Each flow goes into a data set of the template
    /// `template_of(flow)` returns; consecutive flows of the same template
    /// share a set, so a mixed IPv4/IPv6 stream keeps its order. The
    /// message starts with the template set if `with_templates`. This is
    /// the buffer-reusing form of [`data`](Self::data) for senders; an
    /// empty `flows` gives a message with no data set.
    ///
    /// # Panics
    /// If `template_of` names a template that was not added.
    pub fn encode_into(
        &mut self,
        flows: &[FlowRecord],
        mut template_of: impl FnMut(&FlowRecord) -> u16,
        export_ms: u64,
        with_templates: bool,
        out: &mut Vec<u8>,
    ) -> usize {
        out.clear();
        self.start_into(export_ms, out);
        let p = out;
        let mut records = if with_templates { self.template_set(p) } else { 0 };
        let mut n = 0u32;
        // The open data set: (its start offset, template index).
        let mut set: Option<(usize, usize)> = None;
        let close = |p: &mut Vec<u8>, set_start: usize| {
            // Pad the set to a multiple of 4 bytes (both RFCs allow it).
            while !(p.len() - set_start).is_multiple_of(4) {
                p.push(0);
            }
            let len = (p.len() - set_start) as u16;
            p[set_start + 2..set_start + 4].copy_from_slice(&len.to_be_bytes());
        };
        for f in flows {
            let id = template_of(f);
            let before = p.len();
            let mut opened = None;
            let ti = match set {
                Some((_, ti)) if self.templates[ti].id == id => ti,
                _ => {
                    let ti =
                        self.templates.iter().position(|t| t.id == id).expect("template added");
                    if let Some((start, _)) = set {
                        close(p, start);
                    }
                    opened = Some(p.len());
                    p.extend_from_slice(&id.to_be_bytes());
                    p.extend_from_slice(&[0, 0]);
                    ti
                }
            };
            self.record(&self.templates[ti], f, export_ms, p);
            // Room for the worst-case padding of the set.
            if p.len() + 3 > self.max_datagram && n > 0 {
                p.truncate(before);
                break;
            }
            if let Some(start) = opened {
                set = Some((start, ti));
            }
            n += 1;
        }
        if let Some((start, _)) = set {
            close(p, start);
        }
        records += n;
        self.patch(p, records, n);
        n as usize
    }

    /// A message with an options template (scope: sampler id 48 for v9,
    /// selectorId 302 for IPFIX; option: samplingInterval 34) and one
    /// options record announcing `rate` for `sampler_id`. If `sampler_id`
    /// is `None` the record has no sampler id (an exporter-wide rate: v9
    /// scope is then "system", IPFIX scope observationDomainId).
    pub fn sampler_options(
        &mut self,
        export_ms: u64,
        sampler_id: Option<u32>,
        rate: u32,
    ) -> Vec<u8> {
        let mut p = self.start(export_ms);
        let ipfix = self.ipfix();
        let scope_id: u16 = match (ipfix, sampler_id) {
            (true, Some(_)) => 302,
            (false, Some(_)) => 48,
            (true, None) => 149,
            (false, None) => 1,
        };
        // Options template set.
        let start = p.len();
        p.extend_from_slice(&(if ipfix { 3u16 } else { 1u16 }).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&SAMPLER_OPTIONS_TEMPLATE.to_be_bytes());
        if ipfix {
            p.extend_from_slice(&2u16.to_be_bytes()); // field count
            p.extend_from_slice(&1u16.to_be_bytes()); // scope field count
        } else {
            p.extend_from_slice(&4u16.to_be_bytes()); // scope length (bytes)
            p.extend_from_slice(&4u16.to_be_bytes()); // options length (bytes)
        }
        p.extend_from_slice(&scope_id.to_be_bytes());
        p.extend_from_slice(&4u16.to_be_bytes());
        p.extend_from_slice(&34u16.to_be_bytes());
        p.extend_from_slice(&4u16.to_be_bytes());
        while !(p.len() - start).is_multiple_of(4) {
            p.push(0);
        }
        let len = (p.len() - start) as u16;
        p[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
        // Options data set.
        p.extend_from_slice(&SAMPLER_OPTIONS_TEMPLATE.to_be_bytes());
        p.extend_from_slice(&12u16.to_be_bytes());
        let scope = sampler_id.unwrap_or(if ipfix { self.domain } else { 0 });
        p.extend_from_slice(&scope.to_be_bytes());
        p.extend_from_slice(&rate.to_be_bytes());
        self.finish(p, 2, 1)
    }

    /// Appends one data record of template `t`.
    fn record(&self, t: &Template, f: &FlowRecord, export_ms: u64, p: &mut Vec<u8>) {
        for fld in &t.fields {
            if fld.length == 0xffff {
                p.push(0); // variable length: empty value
                continue;
            }
            let len = usize::from(fld.length);
            if fld.enterprise != 0 {
                p.resize(p.len() + len, 0);
                continue;
            }
            let up = |t: u64| t.saturating_sub(self.boot_ms) & 0xffff_ffff;
            let ip = |a: Option<u128>, p: &mut Vec<u8>| match len {
                4 => put_uint(p, u64::from(v4_of(a)), 4),
                16 => {
                    let v = a.filter(|v| !is_ipv4_mapped(*v)).unwrap_or(0);
                    p.extend_from_slice(&Ipv6Addr::from(v).octets());
                }
                _ => p.resize(p.len() + len, 0),
            };
            let icmp = f.proto == 1 || f.proto == 58;
            let n = |v: u64, p: &mut Vec<u8>| put_uint(p, v, len);
            match fld.id {
                1 => n(f.bytes, p),
                2 => n(f.packets, p),
                3 => n(f.flows.unwrap_or(0), p),
                4 => n(u64::from(f.proto), p),
                5 => n(u64::from(f.src_tos), p),
                6 => n(u64::from(f.tcp_flags), p),
                7 => n(if icmp { 0 } else { u64::from(f.src_port) }, p),
                11 => n(if icmp { 0 } else { u64::from(f.dst_port) }, p),
                8 | 12 | 27 | 28 => {
                    ip(if matches!(fld.id, 8 | 27) { f.src_addr } else { f.dst_addr }, p)
                }
                15 | 62 => ip(f.next_hop, p),
                18 | 63 => ip(f.bgp_next_hop, p),
                9 | 29 => n(u64::from(f.src_mask.unwrap_or(0)), p),
                13 | 30 => n(u64::from(f.dst_mask.unwrap_or(0)), p),
                10 => n(u64::from(f.input_if.unwrap_or(0)), p),
                14 => n(u64::from(f.output_if.unwrap_or(0)), p),
                16 => n(u64::from(f.src_as.unwrap_or(0)), p),
                17 => n(u64::from(f.dst_as.unwrap_or(0)), p),
                21 => n(up(f.last), p),
                22 => n(up(f.first), p),
                23 => n(f.out_bytes.unwrap_or(0), p),
                24 => n(f.out_packets.unwrap_or(0), p),
                32 | 139 => n(if icmp { u64::from(f.dst_port) } else { 0 }, p),
                34 => n(u64::from(f.sampling_rate.unwrap_or(0)), p),
                38 => n(u64::from(f.engine_type.unwrap_or(0)), p),
                39 => n(u64::from(f.engine_id.unwrap_or(0)), p),
                55 => n(u64::from(f.dst_tos.unwrap_or(0)), p),
                56 => n(f.in_src_mac.unwrap_or(0), p),
                57 => n(f.out_dst_mac.unwrap_or(0), p),
                80 => n(f.in_dst_mac.unwrap_or(0), p),
                81 => n(f.out_src_mac.unwrap_or(0), p),
                58 => n(u64::from(f.src_vlan.unwrap_or(0)), p),
                59 => n(u64::from(f.dst_vlan.unwrap_or(0)), p),
                61 => n(u64::from(f.direction.unwrap_or(0)), p),
                70..=79 => {
                    n(u64::from(f.mpls()[usize::from(fld.id - 70)].unwrap_or(0)), p);
                }
                89 => n(u64::from(f.fwd_status.unwrap_or(0)), p),
                128 => n(u64::from(f.next_as.unwrap_or(0)), p),
                129 => n(u64::from(f.prev_as.unwrap_or(0)), p),
                136 => n(u64::from(f.end_reason.unwrap_or(0)), p),
                150 => n(f.first / 1000, p),
                151 => n(f.last / 1000, p),
                152 => n(f.first, p),
                153 => n(f.last, p),
                154 | 156 => n(to_ntp(f.first), p),
                155 | 157 => n(to_ntp(f.last), p),
                158 => n(export_ms.saturating_sub(f.first) * 1000, p),
                159 => n(export_ms.saturating_sub(f.last) * 1000, p),
                _ => p.resize(p.len() + len, 0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_splits_and_sequences() {
        let mut e = LegacyEncoder::new(LegacyVersion::V5, 0);
        let flows = vec![FlowRecord::default(); 31];
        let d = e.encode(&flows, 5_000);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].len(), 24 + 30 * 48);
        assert_eq!(&d[1][16..20], &30u32.to_be_bytes());
        assert_eq!(e.sequence(), 31);
        let mut e = LegacyEncoder::new(LegacyVersion::V7, 0);
        assert_eq!(e.encode(&flows[..1], 0)[0].len(), 24 + 52);
    }

    #[test]
    fn template_messages_have_lengths_and_sequences() {
        let mut e = TemplateEncoder::new(TemplateProtocol::Ipfix, 1, 0);
        e.max_datagram = 200;
        e.add_template(Template::ipv4(256, TemplateProtocol::Ipfix));
        let flows = vec![FlowRecord::default(); 10];
        let msgs = e.data(256, &flows, 1000, true);
        assert!(msgs.len() > 1);
        for m in &msgs {
            assert_eq!(usize::from(u16::from_be_bytes([m[2], m[3]])), m.len());
        }
        assert_eq!(e.sequence(), 10);
        let mut v9 = TemplateEncoder::new(TemplateProtocol::V9, 1, 0);
        v9.add_template(Template::full_ipv6(300, TemplateProtocol::V9));
        let m = v9.data(300, &flows[..2], 1000, true);
        assert_eq!(u16::from_be_bytes([m[0][2], m[0][3]]), 3);
        assert_eq!(v9.sequence(), 1);
    }

    #[test]
    fn encode_into_mixes_templates_in_order() {
        let mut e = TemplateEncoder::new(TemplateProtocol::Ipfix, 1, 0);
        e.add_template(Template::ipv4(256, TemplateProtocol::Ipfix));
        e.add_template(Template::ipv6(257, TemplateProtocol::Ipfix));
        let v4 = FlowRecord { src_addr: Some(0xffff_0a00_0001), ..Default::default() };
        let v6 = FlowRecord { src_addr: Some(1 << 120), ..Default::default() };
        let flows = [v4.clone(), v4.clone(), v6.clone(), v4.clone()];
        let pick = |f: &FlowRecord| if f.src_addr == v6.src_addr { 257 } else { 256 };
        let mut out = Vec::new();
        assert_eq!(e.encode_into(&flows, pick, 1000, true, &mut out), 4);
        assert_eq!(usize::from(u16::from_be_bytes([out[2], out[3]])), out.len());
        // Template set, then data sets 256, 257, 256.
        let mut at = 16;
        let mut ids = Vec::new();
        while at < out.len() {
            ids.push(u16::from_be_bytes([out[at], out[at + 1]]));
            at += usize::from(u16::from_be_bytes([out[at + 2], out[at + 3]]));
        }
        assert_eq!(ids, [2, 256, 257, 256]);
        assert_eq!(e.sequence(), 4);
        // A small datagram takes what fits and at least one record.
        e.max_datagram = 100;
        let many = vec![v4; 10];
        let n = e.encode_into(&many, pick, 1000, false, &mut out);
        assert!((1..10).contains(&n) && out.len() <= 100, "{n} {}", out.len());
        let mut l = LegacyEncoder::new(LegacyVersion::V5, 0);
        assert_eq!(l.encode_into(&many, 0, &mut out), 10);
        assert_eq!(out.len(), 24 + 10 * 48);
    }
}
