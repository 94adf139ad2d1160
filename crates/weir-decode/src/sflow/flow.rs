//! Flow samples (formats 1 and 3) and their flow records.

use weir_record::{FlowRecord, ip_to_u128};

use super::Ctx;
use super::read::{Problem, Reader};
use crate::packet::{self, Headers};
use crate::{ErrorKind, Protocol};

/// Flow record formats (enterprise 0).
const RAW_HEADER: u32 = 1;
const SAMPLED_ETHERNET: u32 = 2;
const SAMPLED_IPV4: u32 = 3;
const SAMPLED_IPV6: u32 = 4;
const EXTENDED_SWITCH: u32 = 1001;
const EXTENDED_ROUTER: u32 = 1002;
const EXTENDED_GATEWAY: u32 = 1003;

/// Raw header protocols decoded (sFlow `header_protocol`).
const HEADER_ETHERNET: u32 = 1;
const HEADER_IPV4: u32 = 11;
const HEADER_IPV6: u32 = 12;

/// Value bits of a compact (format 1) interface field.
const IF_VALUE_MASK: u32 = 0x3fff_ffff;

/// A decoded flow sample.
pub(super) struct FlowSample {
    pub(super) sequence: u32,
    /// `type << 32 | index`.
    pub(super) source: u64,
    pub(super) rec: FlowRecord,
}

/// A sampled IPv4/IPv6 record (formats 3 and 4).
#[derive(Clone, Copy)]
struct SampledIp {
    length: u32,
    src: u128,
    dst: u128,
    proto: u8,
    src_port: u16,
    dst_port: u16,
    tcp_flags: u8,
    tos: u8,
}

/// Decodes the body of a flow sample into one flow record.
pub(super) fn decode(mut rd: Reader<'_>, expanded: bool, ctx: &Ctx) -> Result<FlowSample, Problem> {
    const WHAT: &str = "sFlow flow sample";
    let sequence = rd.u32(WHAT)?;
    let source = if expanded {
        let ty = rd.u32(WHAT)?;
        u64::from(ty) << 32 | u64::from(rd.u32(WHAT)?)
    } else {
        let s = rd.u32(WHAT)?;
        u64::from(s >> 24) << 32 | u64::from(s & 0x00ff_ffff)
    };
    let rate = rd.u32(WHAT)?;
    let _pool = rd.u32(WHAT)?;
    let _drops = rd.u32(WHAT)?;
    let (input, output) = if expanded {
        let (_, input) = (rd.u32(WHAT)?, rd.u32(WHAT)?);
        let (_, output) = (rd.u32(WHAT)?, rd.u32(WHAT)?);
        (input, output)
    } else {
        (rd.u32(WHAT)? & IF_VALUE_MASK, rd.u32(WHAT)? & IF_VALUE_MASK)
    };
    let records = rd.u32(WHAT)?;

    let t = ctx.received_ms;
    let mut rec = FlowRecord {
        first: t,
        last: t,
        received: t,
        packets: 1,
        input_if: Some(input),
        output_if: Some(output),
        sampling_rate: (rate != 0).then_some(rate),
        flow_version: Some(Protocol::Sflow5.code() as u8),
        obs_domain: Some(ctx.sub_agent),
        ..FlowRecord::default()
    };

    let mut header: Option<(Headers, u32)> = None;
    let mut sampled_ip: Option<SampledIp> = None;
    let mut eth_len: Option<u32> = None;
    let mut switch_vlans: Option<(u32, u32)> = None;
    // Each record takes at least 8 bytes: the loop is bounded by the sample.
    for _ in 0..records {
        let format = rd.u32("sFlow flow record header")?;
        let at = rd.offset();
        let len = rd.u32("sFlow flow record header")? as usize;
        if len > rd.remaining() {
            return Err(Problem::new(
                at,
                ErrorKind::BadLength { what: "sFlow flow record", length: len },
            ));
        }
        let mut r = rd.sub("sFlow flow record", len)?;
        match format {
            RAW_HEADER if header.is_none() => header = Some(raw_header(&mut r)?),
            SAMPLED_ETHERNET => {
                const W: &str = "sFlow sampled Ethernet record";
                eth_len = Some(r.u32(W)?);
                let src = r.bytes(W, 8)?;
                let dst = r.bytes(W, 8)?;
                rec.in_src_mac = Some(mac(src));
                rec.in_dst_mac = Some(mac(dst));
            }
            SAMPLED_IPV4 => sampled_ip = Some(sampled_ipv4(&mut r)?),
            SAMPLED_IPV6 => sampled_ip = Some(sampled_ipv6(&mut r)?),
            EXTENDED_SWITCH => {
                const W: &str = "sFlow extended switch record";
                let src_vlan = r.u32(W)?;
                let _src_priority = r.u32(W)?;
                let dst_vlan = r.u32(W)?;
                switch_vlans = Some((src_vlan, dst_vlan));
            }
            EXTENDED_ROUTER => {
                const W: &str = "sFlow extended router record";
                rec.next_hop = r.address(W)?.map(ip_to_u128);
                rec.src_mask = Some(mask(r.u32(W)?));
                rec.dst_mask = Some(mask(r.u32(W)?));
            }
            EXTENDED_GATEWAY => gateway(&mut r, &mut rec)?,
            _ => {} // other records, enterprise records: skipped by length
        }
    }

    match &header {
        Some((h, frame_length)) => {
            h.fill(&mut rec);
            rec.bytes = u64::from(*frame_length);
        }
        None => {
            if let Some(l) = sampled_ip.map(|s| s.length).or(eth_len) {
                rec.bytes = u64::from(l);
            }
        }
    }
    if let Some(s) = sampled_ip
        && header.is_none_or(|(h, _)| h.ip.is_none())
    {
        rec.src_addr = Some(s.src);
        rec.dst_addr = Some(s.dst);
        rec.proto = s.proto;
        rec.src_port = s.src_port;
        rec.dst_port = s.dst_port;
        rec.tcp_flags = s.tcp_flags;
        rec.src_tos = s.tos;
    }
    if let Some((src, dst)) = switch_vlans {
        rec.src_vlan = Some(vlan(src));
        rec.dst_vlan = Some(vlan(dst));
    }
    Ok(FlowSample { sequence, source, rec })
}

fn mac(b: &[u8]) -> u64 {
    b.iter().take(6).fold(0u64, |a, &x| a << 8 | u64::from(x))
}

fn mask(v: u32) -> u8 {
    v.min(128) as u8
}

fn vlan(v: u32) -> u16 {
    (v & 0x0fff) as u16
}

/// Raw packet header record: returns the parsed header and frame length.
fn raw_header(r: &mut Reader<'_>) -> Result<(Headers, u32), Problem> {
    const W: &str = "sFlow raw packet header record";
    let protocol = r.u32(W)?;
    let frame_length = r.u32(W)?;
    let _stripped = r.u32(W)?;
    let at = r.offset();
    let len = r.u32(W)? as usize;
    if len > r.remaining() {
        return Err(Problem::new(
            at,
            ErrorKind::BadLength { what: "sFlow sampled header", length: len },
        ));
    }
    let bytes = r.bytes(W, len)?;
    let h = match protocol {
        HEADER_ETHERNET => packet::parse_ethernet(bytes),
        HEADER_IPV4 => packet::parse_ipv4(bytes),
        HEADER_IPV6 => packet::parse_ipv6(bytes),
        _ => Headers::default(),
    };
    Ok((h, frame_length))
}

fn sampled_ipv4(r: &mut Reader<'_>) -> Result<SampledIp, Problem> {
    const W: &str = "sFlow sampled IPv4 record";
    let length = r.u32(W)?;
    let proto = r.u32(W)?;
    let src = r.bytes(W, 4)?;
    let src =
        0xffff_0000_0000u128 | u128::from(u32::from_be_bytes([src[0], src[1], src[2], src[3]]));
    let dst = r.bytes(W, 4)?;
    let dst =
        0xffff_0000_0000u128 | u128::from(u32::from_be_bytes([dst[0], dst[1], dst[2], dst[3]]));
    sampled_rest(r, W, length, proto, src, dst)
}

fn sampled_ipv6(r: &mut Reader<'_>) -> Result<SampledIp, Problem> {
    const W: &str = "sFlow sampled IPv6 record";
    let length = r.u32(W)?;
    let proto = r.u32(W)?;
    let mut a = [0u8; 16];
    a.copy_from_slice(r.bytes(W, 16)?);
    let src = u128::from_be_bytes(a);
    a.copy_from_slice(r.bytes(W, 16)?);
    let dst = u128::from_be_bytes(a);
    sampled_rest(r, W, length, proto, src, dst)
}

fn sampled_rest(
    r: &mut Reader<'_>,
    w: &'static str,
    length: u32,
    proto: u32,
    src: u128,
    dst: u128,
) -> Result<SampledIp, Problem> {
    let (sp, dp) = (r.u32(w)?, r.u32(w)?);
    let tcp_flags = r.u32(w)?;
    let tos = r.u32(w)?;
    let proto = proto as u8;
    // ICMP as nfdump stores it: type << 8 | code in the destination port.
    let (src_port, dst_port) = if proto == 1 || proto == 58 {
        (0, ((sp & 0xff) << 8 | (dp & 0xff)) as u16)
    } else {
        (sp as u16, dp as u16)
    };
    Ok(SampledIp {
        length,
        src,
        dst,
        proto,
        src_port,
        dst_port,
        tcp_flags: tcp_flags as u8,
        tos: tos as u8,
    })
}

/// Extended gateway record (1003).
fn gateway(r: &mut Reader<'_>, rec: &mut FlowRecord) -> Result<(), Problem> {
    const W: &str = "sFlow extended gateway record";
    rec.bgp_next_hop = r.address(W)?.map(ip_to_u128);
    let _router_as = r.u32(W)?;
    rec.src_as = Some(r.u32(W)?);
    rec.prev_as = Some(r.u32(W)?);
    let segments = r.u32(W)?;
    let (mut first, mut last) = (None, None);
    // Each segment takes at least 8 bytes and each AS 4: bounded by the record.
    for _ in 0..segments {
        let _type = r.u32(W)?;
        let n = r.u32(W)? as usize;
        let at = r.offset();
        if n > r.remaining() / 4 {
            return Err(Problem::new(
                at,
                ErrorKind::BadLength { what: "sFlow AS path segment", length: n },
            ));
        }
        for _ in 0..n {
            let asn = r.u32(W)?;
            first.get_or_insert(asn);
            last = Some(asn);
        }
    }
    rec.next_as = first;
    rec.dst_as = last;
    Ok(())
}
