//! Counter samples (formats 2 and 4): generic interface counters become
//! [`CounterSample`] events; other counter records are skipped.

use super::Ctx;
use super::read::{Problem, Reader};
use crate::{CounterSample, Emit, ErrorKind, Event};

/// Generic interface counters record format.
const GENERIC_INTERFACE: u32 = 1;

/// Decodes the body of a counter sample, emits an event per generic
/// interface record, and returns the sample's source (`type << 32 |
/// index`) and sequence number.
pub(super) fn decode(
    mut rd: Reader<'_>,
    expanded: bool,
    ctx: &Ctx,
    emit: &mut Emit<'_>,
) -> Result<(u64, u32), Problem> {
    const WHAT: &str = "sFlow counters sample";
    let sequence = rd.u32(WHAT)?;
    let (ty, index) = if expanded {
        (rd.u32(WHAT)?, rd.u32(WHAT)?)
    } else {
        let s = rd.u32(WHAT)?;
        (s >> 24, s & 0x00ff_ffff)
    };
    let records = rd.u32(WHAT)?;
    let base = CounterSample {
        agent: Some(ctx.agent),
        sub_agent: ctx.sub_agent,
        sequence,
        source_id: event_source_id(ty, index),
        received_ms: ctx.received_ms,
        ..CounterSample::default()
    };
    // Each record takes at least 8 bytes: the loop is bounded by the sample.
    for _ in 0..records {
        let format = rd.u32("sFlow counter record header")?;
        let at = rd.offset();
        let len = rd.u32("sFlow counter record header")? as usize;
        if len > rd.remaining() {
            return Err(Problem::new(
                at,
                ErrorKind::BadLength { what: "sFlow counter record", length: len },
            ));
        }
        let mut r = rd.sub("sFlow counter record", len)?;
        if format == GENERIC_INTERFACE {
            let c = generic(&mut r, base)?;
            emit.event(&Event::Counters(&c));
        }
    }
    Ok((u64::from(ty) << 32 | u64::from(index), sequence))
}

/// [`CounterSample::source_id`] is `type << 24 | index`. The expanded
/// format has a 32-bit index; for type 0 (ifIndex, nearly all samples) the
/// whole index is kept, since the type bits are 0 anyway. Other types keep
/// the low 24 bits of the index.
pub(super) fn event_source_id(ty: u32, index: u32) -> u32 {
    if ty == 0 { index } else { (ty & 0xff) << 24 | (index & 0x00ff_ffff) }
}

fn generic(r: &mut Reader<'_>, base: CounterSample) -> Result<CounterSample, Problem> {
    const W: &str = "sFlow generic interface counters";
    Ok(CounterSample {
        if_index: r.u32(W)?,
        if_type: r.u32(W)?,
        if_speed: r.u64(W)?,
        if_direction: r.u32(W)?,
        if_status: r.u32(W)?,
        in_octets: r.u64(W)?,
        in_ucast: r.u32(W)?,
        in_mcast: r.u32(W)?,
        in_bcast: r.u32(W)?,
        in_discards: r.u32(W)?,
        in_errors: r.u32(W)?,
        in_unknown_protos: r.u32(W)?,
        out_octets: r.u64(W)?,
        out_ucast: r.u32(W)?,
        out_mcast: r.u32(W)?,
        out_bcast: r.u32(W)?,
        out_discards: r.u32(W)?,
        out_errors: r.u32(W)?,
        promiscuous: r.u32(W)?,
        ..base
    })
}
