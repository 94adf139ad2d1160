//! Wire decoders: NetFlow v1/v5/v7/v9, IPFIX and sFlow v5 datagrams into
//! [`FlowRecord`]s, plus the capture reading (`pcap`, `pcapng`, Ethernet to
//! UDP) that `weir decode` and `weir collect -f` need, and the walk to the
//! raw packet headers sFlow samples carry ([`sampled`]) that `weir
//! sflow2pcap` and the collector's header capture write out.
//!
//! The design decision: decoding is **pure**. A [`Decoder`] is given a UDP
//! payload, the address it came from and the time it was received, and
//! hands flows and events to a [`Sink`]. It opens no socket, reads no clock
//! and spawns no thread, so the collector, `weir decode`, the tests and the
//! fuzzers all drive exactly the same code. State that must outlive a
//! datagram — templates, sampler tables, sequence numbers — lives in the
//! `Decoder`, bounded per exporter.
//!
//! Nothing from the network can panic this crate or make it allocate
//! without bound: every length is checked against the bytes that are there,
//! errors name the exporter and the byte offset, and a bad set is skipped
//! while the good sets of the same datagram are still decoded.
//!
//! ```
//! use weir_decode::{Datagram, Decoder, DecoderConfig, Sink};
//! use weir_record::FlowRecord;
//!
//! struct Count(usize);
//! impl Sink for Count {
//!     fn flow(&mut self, _f: &FlowRecord) { self.0 += 1 }
//! }
//!
//! // A NetFlow v5 header announcing 0 records.
//! let mut v5 = vec![0u8; 24];
//! v5[1] = 5;
//! let mut dec = Decoder::new(DecoderConfig::default());
//! let dg = Datagram { exporter: "192.0.2.1:2055".parse().unwrap(), received_ms: 1_709_532_000_000, payload: &v5 };
//! let mut sink = Count(0);
//! let info = dec.decode(&dg, &mut sink).unwrap();
//! assert_eq!((info.protocol.code(), sink.0), (5, 0));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod account;
mod error;
mod event;
pub mod hash;
mod netflow;
pub mod packet;
pub mod pcap;
pub mod sampled;
mod sflow;

pub use account::{Account, AccountKey, Accounts, MAX_ACCOUNTS, OVERFLOW_DOMAIN};
pub use error::{DecodeError, ErrorKind};
pub use event::{CounterSample, Event, HeaderInfo, OptionsRecord, TemplateField, TemplateInfo};

use std::net::{IpAddr, SocketAddr};

use weir_record::{BatchBuilder, FlowRecord, ip_to_u128};

/// One received UDP payload.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Source address and port of the datagram.
    pub exporter: SocketAddr,
    /// When it was received, ms since the epoch (the collector's clock).
    pub received_ms: u64,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// Export protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// NetFlow v1.
    V1,
    /// NetFlow v5.
    V5,
    /// NetFlow v7 (Catalyst).
    V7,
    /// NetFlow v9.
    V9,
    /// IPFIX (NetFlow v10).
    Ipfix,
    /// sFlow v5.
    Sflow5,
}

impl Protocol {
    /// The value stored in `flow_version` and the exporter table:
    /// 1, 5, 7, 9, 10, or 0x85 for sFlow v5 (nfdump's `0x80 | version`).
    pub fn code(self) -> u16 {
        match self {
            Protocol::V1 => 1,
            Protocol::V5 => 5,
            Protocol::V7 => 7,
            Protocol::V9 => 9,
            Protocol::Ipfix => 10,
            Protocol::Sflow5 => 0x85,
        }
    }

    /// Display name (`netflow v5`, `ipfix`, `sflow v5`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V1 => "netflow v1",
            Protocol::V5 => "netflow v5",
            Protocol::V7 => "netflow v7",
            Protocol::V9 => "netflow v9",
            Protocol::Ipfix => "ipfix",
            Protocol::Sflow5 => "sflow v5",
        }
    }
}

/// What decoded flows and events go to.
pub trait Sink {
    /// One decoded flow (sampling already applied per [`SamplingPolicy`]).
    fn flow(&mut self, flow: &FlowRecord);
    /// Templates, options records, counter samples, errors, headers.
    fn event(&mut self, _event: &Event<'_>) {}
    /// A column builder decoders may append flows to directly instead of
    /// calling [`Sink::flow`] (skipping the row; v9/IPFIX data sets of
    /// simple templates do), and how many rows they may append before
    /// calling [`Sink::batch_done`]. A row appended holds exactly the
    /// values [`Sink::flow`] would have been given. `None` (the default):
    /// every flow goes to [`Sink::flow`].
    fn batch(&mut self) -> Option<(&mut BatchBuilder, usize)> {
        None
    }
    /// Called after rows were appended to the builder of [`Sink::batch`].
    fn batch_done(&mut self) {}
}

/// How packet and byte counters of sampled flows are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SamplingPolicy {
    /// Multiply counters by the exporter's sampling rate (nfcapd's default).
    #[default]
    Scale,
    /// Keep the counters as exported; the rate is still stored per flow.
    Raw,
    /// Ignore what exporters announce; use this rate (and scale by it).
    Force(u32),
}

/// Bounds of the template cache, per exporter (address + domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateLimits {
    /// Templates kept per exporter and domain.
    pub max_templates: usize,
    /// Bytes of template definitions kept per exporter and domain.
    pub max_bytes: usize,
    /// A template not refreshed for this long is dropped (ms).
    pub ttl_ms: u64,
}

impl Default for TemplateLimits {
    fn default() -> Self {
        // A busy router exports a few dozen templates; 1 024 leaves room for
        // the largest NSEL/IPFIX exporters while bounding a hostile one to
        // well under a megabyte. RFC 7011 suggests refreshing templates every
        // few minutes over UDP; an hour without one means the exporter is gone.
        TemplateLimits { max_templates: 1024, max_bytes: 1 << 20, ttl_ms: 3_600_000 }
    }
}

/// Decoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecoderConfig {
    /// What to do with sampled counters.
    pub sampling: SamplingPolicy,
    /// Template cache bounds.
    pub templates: TemplateLimits,
}

/// What the decoder learned from one datagram's header, beyond its flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramInfo {
    /// Protocol of the datagram.
    pub protocol: Protocol,
    /// v9 source id, IPFIX observation domain, sFlow sub-agent id (else 0).
    pub domain: u32,
    /// The exporter as the protocol names it (sFlow agent address), else the
    /// datagram's source address.
    pub exporter: IpAddr,
    /// Flows handed to the sink.
    pub flows: u64,
    /// Packets in those flows (after sampling).
    pub packets: u64,
    /// Bytes in those flows (after sampling).
    pub bytes: u64,
    /// Largest sampling rate among those flows (0: none announced).
    pub sampling_rate: u32,
    /// Data sets skipped because their template is unknown.
    pub unknown_template_sets: u64,
    /// Sequence numbers missed before this datagram (v5 flows, v9 packets,
    /// IPFIX records, sFlow datagrams and samples).
    pub sequence_failures: u64,
    /// Problems in parts of the datagram; the rest was decoded.
    pub errors: Vec<DecodeError>,
}

/// Decodes datagrams of every supported protocol, keeping per-exporter
/// state (templates, samplers, sequence numbers, counters).
#[derive(Debug, Default)]
pub struct Decoder {
    cfg: DecoderConfig,
    accounts: Accounts,
    netflow: netflow::NetflowState,
    sflow: sflow::SflowState,
}

impl Decoder {
    /// A decoder with no state yet.
    pub fn new(cfg: DecoderConfig) -> Decoder {
        Decoder { cfg, ..Decoder::default() }
    }

    /// Per-exporter counters so far.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Mutable counters (the collector adds its own drops).
    pub fn accounts_mut(&mut self) -> &mut Accounts {
        &mut self.accounts
    }

    /// Decodes one datagram. `Err` means nothing in it could be used (and
    /// was counted as a decode error of its exporter); set-level problems
    /// are in [`DatagramInfo::errors`].
    pub fn decode(
        &mut self,
        dg: &Datagram<'_>,
        sink: &mut dyn Sink,
    ) -> Result<DatagramInfo, DecodeError> {
        let p = dg.payload;
        let err = |kind| DecodeError::new(dg.exporter, 0, kind);
        let (cfg, acc) = (&self.cfg, &mut self.accounts);
        let result = if p.len() < 4 {
            Err(err(ErrorKind::Truncated { what: "export header", need: 4, have: p.len() }))
        } else {
            match u16::from_be_bytes([p[0], p[1]]) {
                1 | 5 | 7 => self.netflow.decode_legacy(dg, cfg, acc, sink),
                9 => self.netflow.decode_v9(dg, cfg, acc, sink),
                10 => self.netflow.decode_ipfix(dg, cfg, acc, sink),
                0 => match u32::from_be_bytes([p[0], p[1], p[2], p[3]]) {
                    5 => self.sflow.decode(dg, cfg, acc, sink),
                    v => Err(err(ErrorKind::UnsupportedVersion(v))),
                },
                v => Err(err(ErrorKind::UnsupportedVersion(u32::from(v)))),
            }
        };
        if let Ok(info) = &result {
            self.accounts.datagram_done(dg, info);
        }
        if let Err(e) = &result {
            self.accounts.datagram_failed(dg, e);
            sink.event(&Event::Error(e));
        }
        result
    }
}

/// Hands flows to a sink after the decoder-wide steps: sampling policy,
/// exporter address, sysid and counting. Protocol modules emit through it.
pub(crate) struct Emit<'s> {
    pub(crate) sink: &'s mut dyn Sink,
    pub(crate) policy: SamplingPolicy,
    pub(crate) exporter_addr: u128,
    pub(crate) sysid: u16,
    pub(crate) flows: u64,
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) sampling_rate: u32,
}

impl<'s> Emit<'s> {
    pub(crate) fn new(
        sink: &'s mut dyn Sink,
        policy: SamplingPolicy,
        exporter: IpAddr,
        sysid: u16,
    ) -> Self {
        Emit {
            sink,
            policy,
            exporter_addr: ip_to_u128(exporter),
            sysid,
            flows: 0,
            packets: 0,
            bytes: 0,
            sampling_rate: 0,
        }
    }

    /// Finishes a flow record and passes it on.
    pub(crate) fn flow(&mut self, rec: &mut FlowRecord) {
        let rate = match self.policy {
            SamplingPolicy::Force(r) => {
                rec.sampling_rate = Some(r);
                r
            }
            SamplingPolicy::Scale => rec.sampling_rate.unwrap_or(1),
            SamplingPolicy::Raw => 1,
        };
        if rate > 1 {
            rec.packets = rec.packets.saturating_mul(u64::from(rate));
            rec.bytes = rec.bytes.saturating_mul(u64::from(rate));
            rec.out_packets = rec.out_packets.map(|v| v.saturating_mul(u64::from(rate)));
            rec.out_bytes = rec.out_bytes.map(|v| v.saturating_mul(u64::from(rate)));
        }
        self.sampling_rate = self.sampling_rate.max(rec.sampling_rate.unwrap_or(0));
        rec.exporter_addr = Some(self.exporter_addr);
        rec.exporter_id = Some(self.sysid);
        self.flows += 1;
        self.packets = self.packets.saturating_add(rec.packets);
        self.bytes = self.bytes.saturating_add(rec.bytes);
        self.sink.flow(rec);
    }

    /// Passes an event on.
    pub(crate) fn event(&mut self, e: &Event<'_>) {
        self.sink.event(e);
    }
}
