//! NetFlow v1/v5/v7 (fixed records) and v9/IPFIX (templates).
//!
//! CONTRACT with `lib.rs` (do not change the signatures without updating
//! the dispatch in `Decoder::decode`): each `decode_*` function
//! 1. parses the header (errors at offset 0 are `Err`: nothing usable),
//! 2. finds the account with `acc.entry(AccountKey{..}).sysid`, checks the
//!    sequence number with `acc.sequence(key, seq, next_expected)`,
//! 3. emits every flow through `crate::Emit` (sampling policy, exporter
//!    address, sysid and counting happen there) and every template, options
//!    record, header and error as an [`Event`](crate::Event),
//! 4. returns a [`DatagramInfo`] with `flows/packets/bytes` from the `Emit`
//!    and the set-level errors; `Decoder::decode` does the accounting.
//!
//! Layout of this module:
//! - `legacy`: v1/v5/v7 (fixed 48/48/52-byte records);
//! - `message`: the set walk shared by v9 and IPFIX (data sets, deferred
//!   data sets, options records, sequence), with `v9` and `ipfix` holding
//!   what differs (headers, template record formats);
//! - `template`: the template cache, per exporter address + protocol +
//!   domain, bounded by [`TemplateLimits`](crate::TemplateLimits) and a TTL;
//! - `ie`: information elements → [`FlowRecord`](weir_record::FlowRecord)
//!   fields, and the time conversions;
//! - `sampling`: sampler tables learnt from options records.
//!
//! Decisions worth knowing (all documented where implemented):
//! - A data set whose template is not known yet is held until the end of the
//!   message and decoded then if a later set of the same message defined
//!   the template (several exporters send data before template). Only if it
//!   is still unknown is it counted in `unknown_template_sets`; such sets
//!   are not errors (nothing is wrong with the datagram) and are not
//!   reported as `Event::Error`.
//! - Times: see `ie::Times::resolve`.
//! - v1/v5/v7 have no domain: their account domain is 0.

mod fast;
mod ie;
mod ipfix;
mod legacy;
mod message;
mod sampling;
mod template;
mod v9;

use crate::{Accounts, Datagram, DatagramInfo, DecodeError, DecoderConfig, Sink};

use template::DomainTable;

/// Templates, samplers and option state of all NetFlow/IPFIX exporters.
#[derive(Debug, Default)]
pub(crate) struct NetflowState {
    domains: DomainTable,
}

impl NetflowState {
    /// NetFlow v1, v5 and v7.
    pub(crate) fn decode_legacy(
        &mut self,
        dg: &Datagram<'_>,
        cfg: &DecoderConfig,
        acc: &mut Accounts,
        sink: &mut dyn Sink,
    ) -> Result<DatagramInfo, DecodeError> {
        legacy::decode(dg, cfg, acc, sink)
    }

    /// NetFlow v9.
    pub(crate) fn decode_v9(
        &mut self,
        dg: &Datagram<'_>,
        cfg: &DecoderConfig,
        acc: &mut Accounts,
        sink: &mut dyn Sink,
    ) -> Result<DatagramInfo, DecodeError> {
        message::decode(message::Dialect::V9, &mut self.domains, dg, cfg, acc, sink)
    }

    /// IPFIX.
    pub(crate) fn decode_ipfix(
        &mut self,
        dg: &Datagram<'_>,
        cfg: &DecoderConfig,
        acc: &mut Accounts,
        sink: &mut dyn Sink,
    ) -> Result<DatagramInfo, DecodeError> {
        message::decode(message::Dialect::Ipfix, &mut self.domains, dg, cfg, acc, sink)
    }
}

/// Big-endian `u16` at `off`, if the bytes are there.
#[inline]
fn be16(b: &[u8], off: usize) -> Option<u16> {
    let s: [u8; 2] = b.get(off..off.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_be_bytes(s))
}

/// Big-endian `u32` at `off`, if the bytes are there.
#[inline]
fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(s))
}

/// A big-endian unsigned number of any length (reduced-size encoding);
/// only the low 64 bits of longer values are kept (callers check lengths).
#[inline]
fn be_uint(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x))
}
