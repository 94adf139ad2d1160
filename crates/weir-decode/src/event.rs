//! Everything besides flows that a decoder reports: headers, templates,
//! options records, sFlow counter samples and errors.

use std::net::{IpAddr, SocketAddr};

use crate::{DecodeError, Protocol};

/// Header facts of one datagram (for `weir decode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Source of the datagram.
    pub exporter: SocketAddr,
    /// Protocol.
    pub protocol: Protocol,
    /// Record / sample count the header announces (IPFIX: 0, it has none).
    pub count: u32,
    /// Exporter uptime in ms (v1-v9, sFlow), else 0.
    pub sys_uptime_ms: u32,
    /// Export time, seconds since the epoch (sFlow: 0, it has none).
    pub unix_secs: u32,
    /// Sequence number as the protocol defines it.
    pub sequence: u32,
    /// v9 source id / IPFIX observation domain / sFlow sub-agent.
    pub domain: u32,
    /// sFlow agent address.
    pub agent: Option<IpAddr>,
    /// v5/v7 engine type and id, v5 sampling interval field (raw).
    pub engine: Option<(u8, u8, u16)>,
}

/// One field of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateField {
    /// Information element id (without the enterprise bit).
    pub id: u16,
    /// Enterprise number, 0 for IANA elements.
    pub enterprise: u32,
    /// Length in bytes, 0xffff for IPFIX variable length.
    pub length: u16,
}

/// A template or options template as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInfo {
    /// Source of the datagram.
    pub exporter: SocketAddr,
    /// v9 or IPFIX.
    pub protocol: Protocol,
    /// Source id / observation domain.
    pub domain: u32,
    /// Template id (256 and up).
    pub template_id: u16,
    /// Whether this is an options template.
    pub options: bool,
    /// Scope fields at the start of `fields` (options templates).
    pub scope_fields: u16,
    /// The fields, in order.
    pub fields: Vec<TemplateField>,
}

/// One options data record, decoded to (field, raw value bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsRecord {
    /// Source of the datagram.
    pub exporter: SocketAddr,
    /// Source id / observation domain.
    pub domain: u32,
    /// Template id.
    pub template_id: u16,
    /// Values in template order (numbers are big-endian as on the wire).
    pub values: Vec<(TemplateField, Vec<u8>)>,
}

/// sFlow generic interface counters (counter record 1) of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct CounterSample {
    /// Agent address.
    pub agent: Option<IpAddr>,
    /// Sub-agent id.
    pub sub_agent: u32,
    /// Sample sequence number.
    pub sequence: u32,
    /// Source id (type << 24 | index).
    pub source_id: u32,
    /// When the datagram was received (ms).
    pub received_ms: u64,
    pub if_index: u32,
    pub if_type: u32,
    pub if_speed: u64,
    pub if_direction: u32,
    pub if_status: u32,
    pub in_octets: u64,
    pub in_ucast: u32,
    pub in_mcast: u32,
    pub in_bcast: u32,
    pub in_discards: u32,
    pub in_errors: u32,
    pub in_unknown_protos: u32,
    pub out_octets: u64,
    pub out_ucast: u32,
    pub out_mcast: u32,
    pub out_bcast: u32,
    pub out_discards: u32,
    pub out_errors: u32,
    pub promiscuous: u32,
}

/// Something other than a flow.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A datagram header.
    Header(&'a HeaderInfo),
    /// A template was added or replaced.
    Template(&'a TemplateInfo),
    /// A template was withdrawn (IPFIX) or expired.
    TemplateWithdrawn {
        /// Source of the datagram.
        exporter: SocketAddr,
        /// Observation domain.
        domain: u32,
        /// Template id.
        template_id: u16,
    },
    /// An options data record (samplers, interface names, ...).
    Options(&'a OptionsRecord),
    /// An sFlow counter sample (generic interface counters).
    Counters(&'a CounterSample),
    /// A problem; the rest of the datagram was still decoded where safe.
    Error(&'a DecodeError),
}
