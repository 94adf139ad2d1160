//! sFlow v5: flow samples (raw packet headers, sampled IPv4/IPv6, extended
//! switch/router/gateway records) and counter samples.
//!
//! CONTRACT with `lib.rs`: as in `netflow/mod.rs`. The account key's
//! exporter is the sFlow *agent address* and the domain the sub-agent id.
//!
//! # Wire format (sFlow v5, XDR: big-endian, every field 4-byte aligned)
//!
//! ```text
//! datagram   version=5 | agent type (1 v4, 2 v6) | agent (4|16) | sub-agent
//!            | sequence | uptime ms | sample count | samples...
//! sample     enterprise<<12|format (u32) | length (u32) | data[length]
//!   1 flow             seq | source (type<<24|index) | rate | pool | drops
//!                      | input | output | record count | records...
//!   3 expanded flow    seq | source type | source index | rate | pool | drops
//!                      | input format | input | output format | output | count | records...
//!   2 counters         seq | source (type<<24|index) | record count | records...
//!   4 expanded counters seq | source type | source index | record count | records...
//! record     enterprise<<12|format | length | data[length]
//! ```
//!
//! # What becomes of a flow sample
//!
//! Each flow sample is **one** flow, as in sfcapd: `first = last =
//! received` = the time the datagram arrived, `packets = 1`, `bytes` = the
//! sampled frame length (raw header record; else the length of a sampled
//! IPv4/IPv6 or Ethernet record), `sampling_rate` = the sample's rate, so
//! that [`crate::SamplingPolicy::Scale`] stores `packets = rate` and
//! `bytes = rate × frame length` like nfdump. The key fields come from the
//! first raw packet header record (decoded by [`crate::packet`]); a sampled
//! IPv4/IPv6 record fills them only when no raw header gave an IP layer.
//! A sample whose frame is not IP (ARP, ...) is still stored, without
//! addresses and with protocol 0, as sfcapd does.
//!
//! * `input_if` / `output_if`: the interface value. In the compact
//!   format the top two bits are the format and are masked off; like
//!   sfcapd we then store the 30-bit value whatever the format, so
//!   `0x3FFFFFFF` means "the agent itself" (format 0), and for format 2
//!   (several output interfaces) the value is the number of interfaces.
//!   The expanded format's value is stored as sent.
//! * `obs_domain` = the sub-agent id (the account's domain); the source id
//!   index of the sample is usually the input ifIndex and is not stored.
//! * `flow_version` = `0x85`.
//! * Extended switch (1001): `src_vlan` / `dst_vlan` (these override the
//!   VLAN tag of the header). Extended router (1002): `next_hop`,
//!   `src_mask`, `dst_mask`. Extended gateway (1003): `bgp_next_hop`,
//!   `src_as`, `prev_as` = the source peer AS, and from the destination AS
//!   path: `next_as` = its first AS and `dst_as` = its last AS (both left
//!   unset when the path is empty, i.e. the destination is local).
//! * Sampled IPv4/IPv6 records (3, 4) carry ICMP type and code in their
//!   port fields (as agents fill them); they are stored nfdump-style,
//!   `dst_port = type << 8 | code`, `src_port = 0`.
//!
//! Counter samples with a generic interface record (format 1) become
//! [`crate::Event::Counters`]; other counter records, discard samples
//! (format 5) and enterprise-specific samples/records are skipped by their
//! length.
//!
//! # Sequence numbers
//!
//! The datagram sequence is checked per account (agent, sub-agent). Flow
//! and counter samples have sequence numbers of their own per data
//! source; they are tracked per (agent, sub-agent, source id, kind) in a
//! map bounded by [`MAX_SAMPLE_SOURCES`], and their gaps are added to the
//! same `sequence_failures`.

mod counters;
mod flow;
pub(crate) mod read;

use crate::hash::FastMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{
    AccountKey, Accounts, Datagram, DatagramInfo, DecodeError, DecoderConfig, Emit, ErrorKind,
    Event, HeaderInfo, Protocol, Sink,
};
use read::{Problem, Reader};

/// Data sources whose sample sequence numbers are remembered. A large
/// switch has a few hundred ports, each a flow and a counter source, and a
/// collector sees a few hundred agents at most; 65 536 sources keep the
/// map under ~3 MiB. When it is full it is cleared: the next sample of
/// each source is then treated as its first (no gap counted).
pub(crate) const MAX_SAMPLE_SOURCES: usize = 65_536;

/// Sample format numbers (enterprise 0).
const FLOW_SAMPLE: u32 = 1;
const COUNTERS_SAMPLE: u32 = 2;
const EXPANDED_FLOW_SAMPLE: u32 = 3;
const EXPANDED_COUNTERS_SAMPLE: u32 = 4;

/// Identifies one stream of sample sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SourceKey {
    agent: IpAddr,
    sub_agent: u32,
    /// `type << 32 | index`.
    source: u64,
    counters: bool,
}

/// Sequence state per agent and source.
#[derive(Debug, Default)]
pub(crate) struct SflowState {
    next_sample_seq: FastMap<SourceKey, u32>,
}

/// Facts of the datagram header every sample needs.
pub(super) struct Ctx {
    pub(super) agent: IpAddr,
    pub(super) sub_agent: u32,
    pub(super) received_ms: u64,
}

impl SflowState {
    /// Checks a sample sequence number; returns how many were missed.
    fn sample_sequence(&mut self, key: SourceKey, seq: u32) -> u64 {
        if self.next_sample_seq.len() >= MAX_SAMPLE_SOURCES
            && !self.next_sample_seq.contains_key(&key)
        {
            self.next_sample_seq.clear();
        }
        let next = seq.wrapping_add(1);
        match self.next_sample_seq.insert(key, next) {
            Some(expect) if expect != seq => {
                let gap = seq.wrapping_sub(expect);
                // Backwards (restart, reordering) is not a loss.
                if gap < u32::MAX / 2 { u64::from(gap) } else { 0 }
            }
            _ => 0,
        }
    }

    /// One sFlow v5 datagram.
    pub(crate) fn decode(
        &mut self,
        dg: &Datagram<'_>,
        cfg: &DecoderConfig,
        acc: &mut Accounts,
        sink: &mut dyn Sink,
    ) -> Result<DatagramInfo, DecodeError> {
        let mut rd = Reader::new(dg.payload, 0);
        let hdr =
            parse_header(&mut rd).map_err(|p| DecodeError::new(dg.exporter, p.offset, p.kind))?;
        let key = AccountKey {
            exporter: hdr.agent,
            protocol: Some(Protocol::Sflow5),
            domain: hdr.sub_agent,
        };
        let sysid = acc.entry(key).sysid;
        let mut sequence_failures = acc.sequence(key, hdr.sequence, hdr.sequence.wrapping_add(1));
        sink.event(&Event::Header(&HeaderInfo {
            exporter: dg.exporter,
            protocol: Protocol::Sflow5,
            count: hdr.samples,
            sys_uptime_ms: hdr.uptime_ms,
            unix_secs: 0,
            sequence: hdr.sequence,
            domain: hdr.sub_agent,
            agent: Some(hdr.agent),
            engine: None,
        }));

        let ctx = Ctx { agent: hdr.agent, sub_agent: hdr.sub_agent, received_ms: dg.received_ms };
        let mut emit = Emit::new(sink, cfg.sampling, hdr.agent, sysid);
        let mut errors = Vec::new();
        let mut last_rate = None;
        let mut report = |emit: &mut Emit<'_>, p: Problem| {
            let e = DecodeError::new(dg.exporter, p.offset, p.kind);
            emit.event(&Event::Error(&e));
            errors.push(e);
        };

        // Every sample takes at least 8 bytes, so a hostile count cannot
        // make this loop run longer than the datagram allows.
        for n in 0..hdr.samples {
            if rd.remaining() < 8 {
                let p = Problem::new(
                    rd.offset(),
                    ErrorKind::Invalid(format!(
                        "sFlow datagram announces {} samples, holds {n}",
                        hdr.samples
                    )),
                );
                report(&mut emit, p);
                break;
            }
            let (format, body) = match sample_frame(&mut rd) {
                Ok(v) => v,
                Err(p) => {
                    report(&mut emit, p);
                    break;
                }
            };
            if format >> 12 != 0 {
                continue; // enterprise-specific sample
            }
            let res = match format {
                FLOW_SAMPLE | EXPANDED_FLOW_SAMPLE => {
                    let expanded = format == EXPANDED_FLOW_SAMPLE;
                    flow::decode(body, expanded, &ctx).map(|mut s| {
                        sequence_failures +=
                            self.sample_sequence(source_key(&ctx, s.source, false), s.sequence);
                        if let Some(r) = s.rec.sampling_rate {
                            last_rate = Some(r);
                        }
                        emit.flow(&mut s.rec);
                    })
                }
                COUNTERS_SAMPLE | EXPANDED_COUNTERS_SAMPLE => {
                    let expanded = format == EXPANDED_COUNTERS_SAMPLE;
                    counters::decode(body, expanded, &ctx, &mut emit).map(|(source, seq)| {
                        sequence_failures +=
                            self.sample_sequence(source_key(&ctx, source, true), seq);
                    })
                }
                _ => Ok(()), // discard samples (5) and formats of later versions
            };
            if let Err(p) = res {
                report(&mut emit, p);
            }
        }
        if let Some(rate) = last_rate {
            acc.entry(key).sampling_rate = rate;
        }
        Ok(DatagramInfo {
            protocol: Protocol::Sflow5,
            domain: hdr.sub_agent,
            exporter: hdr.agent,
            flows: emit.flows,
            packets: emit.packets,
            sampling_rate: emit.sampling_rate,
            bytes: emit.bytes,
            unknown_template_sets: 0,
            sequence_failures,
            errors,
        })
    }
}

fn source_key(ctx: &Ctx, source: u64, counters: bool) -> SourceKey {
    SourceKey { agent: ctx.agent, sub_agent: ctx.sub_agent, source, counters }
}

/// The datagram header.
pub(crate) struct Header {
    pub(crate) agent: IpAddr,
    pub(crate) sub_agent: u32,
    pub(crate) sequence: u32,
    pub(crate) uptime_ms: u32,
    pub(crate) samples: u32,
}

pub(crate) fn parse_header(rd: &mut Reader<'_>) -> Result<Header, Problem> {
    const WHAT: &str = "sFlow datagram header";
    let version = rd.u32(WHAT)?;
    if version != 5 {
        return Err(Problem::new(0, ErrorKind::UnsupportedVersion(version)));
    }
    let at = rd.offset();
    let agent: IpAddr = match rd.u32(WHAT)? {
        1 => {
            let s = rd.bytes(WHAT, 4)?;
            Ipv4Addr::new(s[0], s[1], s[2], s[3]).into()
        }
        2 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(rd.bytes(WHAT, 16)?);
            Ipv6Addr::from(a).into()
        }
        t => {
            return Err(Problem::new(
                at,
                ErrorKind::Invalid(format!("sFlow agent address type {t}")),
            ));
        }
    };
    Ok(Header {
        agent,
        sub_agent: rd.u32(WHAT)?,
        sequence: rd.u32(WHAT)?,
        uptime_ms: rd.u32(WHAT)?,
        samples: rd.u32(WHAT)?,
    })
}

/// Reads a sample's format and length and returns its body.
pub(crate) fn sample_frame<'a>(rd: &mut Reader<'a>) -> Result<(u32, Reader<'a>), Problem> {
    let format = rd.u32("sFlow sample header")?;
    let at = rd.offset();
    let len = rd.u32("sFlow sample header")? as usize;
    if len > rd.remaining() {
        return Err(Problem::new(at, ErrorKind::BadLength { what: "sFlow sample", length: len }));
    }
    Ok((format, rd.sub("sFlow sample", len)?))
}

#[cfg(test)]
mod tests;
