//! Per-exporter accounting: everything received, lost or malformed.

use std::collections::BTreeMap;
use std::net::IpAddr;

use weir_record::{ExporterStats, ip_to_u128};

use crate::hash::FastMap;
use crate::{Datagram, DatagramInfo, DecodeError, Protocol};

/// Who an account belongs to: exporter address, protocol, domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey {
    /// Exporter (sFlow: agent) address.
    pub exporter: IpAddr,
    /// Protocol; `None` for datagrams whose protocol could not be told.
    pub protocol: Option<Protocol>,
    /// Source id / observation domain / sub-agent.
    pub domain: u32,
}

/// Counters of one exporter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// sysid: small number stored in each flow's `exporter_id`.
    pub sysid: u16,
    /// Datagrams received (decodable or not).
    pub datagrams: u64,
    /// UDP payload bytes received.
    pub payload_bytes: u64,
    /// Flows decoded.
    pub flows: u64,
    /// Packets in those flows (after sampling).
    pub packets: u64,
    /// Bytes in those flows (after sampling).
    pub bytes: u64,
    /// Sequence numbers missed.
    pub sequence_failures: u64,
    /// Data sets whose template was unknown.
    pub unknown_template_sets: u64,
    /// Decode errors by kind name.
    pub errors: BTreeMap<&'static str, u64>,
    /// Last sampling rate seen from this exporter (0 = none).
    pub sampling_rate: u32,
    /// First and last datagram (ms).
    pub first_ms: u64,
    /// Last datagram (ms).
    pub last_ms: u64,
    /// Next expected sequence number (per the protocol's rule).
    pub(crate) next_sequence: Option<u32>,
}

impl Account {
    /// All decode errors.
    pub fn decode_errors(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The footer form of these counters.
    pub fn stats(&self, key: &AccountKey) -> ExporterStats {
        ExporterStats {
            addr: ip_to_u128(key.exporter),
            sysid: self.sysid,
            version: key.protocol.map_or(0, |p| p.code()),
            domain: key.domain,
            datagrams: self.datagrams,
            flows: self.flows,
            packets: self.packets,
            bytes: self.bytes,
            sequence_failures: self.sequence_failures,
            decode_errors: self.decode_errors(),
            unknown_template_sets: self.unknown_template_sets,
            sampling_rate: self.sampling_rate,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            dropped: 0,
        }
    }
}

/// Most accounts kept. Hostile or broken exporters can invent a new
/// observation domain in every datagram; past this many accounts, new keys
/// share one overflow account per exporter address and protocol (domain
/// [`OVERFLOW_DOMAIN`]), so memory stays bounded and nothing goes uncounted.
/// Real deployments have a few hundred exporter/domain pairs.
pub const MAX_ACCOUNTS: usize = 16_384;

/// Domain of the overflow account of an exporter (see [`MAX_ACCOUNTS`]).
pub const OVERFLOW_DOMAIN: u32 = u32::MAX;

/// All accounts, with sysids handed out in order of first appearance.
///
/// Kept in a vector in that order with a hash index, and the last key
/// looked up remembered: every datagram looks its account up three or four
/// times, almost always the same one as the datagram before.
#[derive(Debug, Default)]
pub struct Accounts {
    accounts: Vec<(AccountKey, Account)>,
    index: FastMap<AccountKey, usize>,
    last: Option<(AccountKey, usize)>,
}

impl Accounts {
    /// The account of `key`, created (with the next sysid) if new; once
    /// [`MAX_ACCOUNTS`] exist, new keys land in their exporter's overflow
    /// account.
    pub fn entry(&mut self, key: AccountKey) -> &mut Account {
        let at = match self.last {
            Some((k, at)) if k == key => at,
            _ => {
                let at = self.find_or_add(key);
                self.last = Some((key, at));
                at
            }
        };
        &mut self.accounts[at].1
    }

    #[cold]
    fn find_or_add(&mut self, key: AccountKey) -> usize {
        if let Some(&at) = self.index.get(&key) {
            return at;
        }
        let key = if self.accounts.len() >= MAX_ACCOUNTS {
            let over = AccountKey { domain: OVERFLOW_DOMAIN, ..key };
            if let Some(&at) = self.index.get(&over) {
                return at;
            }
            over
        } else {
            key
        };
        // sysids are u16; the overflow accounts beyond that share the last.
        let sysid = (self.accounts.len() + 1).min(u16::MAX as usize) as u16;
        self.accounts.push((key, Account { sysid, ..Default::default() }));
        self.index.insert(key, self.accounts.len() - 1);
        self.accounts.len() - 1
    }

    /// Every account, in key order (exporter address, protocol, domain).
    pub fn iter(&self) -> impl Iterator<Item = (&AccountKey, &Account)> {
        let mut all: Vec<_> = self.accounts.iter().map(|(k, a)| (k, a)).collect();
        all.sort_unstable_by_key(|&(k, _)| k);
        all.into_iter()
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether nothing was received yet.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Counts a datagram nothing could be used from.
    pub(crate) fn datagram_failed(&mut self, dg: &Datagram<'_>, e: &DecodeError) {
        let key = AccountKey { exporter: dg.exporter.ip(), protocol: None, domain: 0 };
        let a = self.entry(key);
        a.datagrams += 1;
        a.payload_bytes += dg.payload.len() as u64;
        *a.errors.entry(e.kind.name()).or_default() += 1;
        a.touch(dg.received_ms);
    }

    /// Counts a decoded datagram: flows, errors, sequence.
    pub(crate) fn datagram_done(&mut self, dg: &Datagram<'_>, info: &DatagramInfo) {
        let (packets, bytes) = (info.packets, info.bytes);
        let key = AccountKey {
            exporter: info.exporter,
            protocol: Some(info.protocol),
            domain: info.domain,
        };
        let a = self.entry(key);
        a.datagrams += 1;
        a.payload_bytes += dg.payload.len() as u64;
        a.flows += info.flows;
        a.packets = a.packets.saturating_add(packets);
        a.bytes = a.bytes.saturating_add(bytes);
        a.unknown_template_sets += info.unknown_template_sets;
        a.sequence_failures += info.sequence_failures;
        if info.sampling_rate > 0 {
            a.sampling_rate = info.sampling_rate;
        }
        for e in &info.errors {
            *a.errors.entry(e.kind.name()).or_default() += 1;
        }
        a.touch(dg.received_ms);
    }

    /// Checks a sequence number against the expected one and sets the next
    /// expected value. Returns how many were missed (0 on the first datagram
    /// and when the exporter restarted, i.e. the number went backwards).
    pub(crate) fn sequence(&mut self, key: AccountKey, seq: u32, next: u32) -> u64 {
        let a = self.entry(key);
        let missed = match a.next_sequence {
            Some(expect) if seq != expect => {
                let gap = seq.wrapping_sub(expect);
                // A jump backwards (restart, reordering) is not a loss.
                if gap < u32::MAX / 2 { u64::from(gap) } else { 0 }
            }
            _ => 0,
        };
        a.next_sequence = Some(next);
        missed
    }
}

impl Account {
    fn touch(&mut self, t: u64) {
        if self.first_ms == 0 || t < self.first_ms {
            self.first_ms = t;
        }
        self.last_ms = self.last_ms.max(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternating_exporters_keep_their_own_accounts_listed_in_key_order() {
        let mut acc = Accounts::default();
        let key = |ip: &str, domain| AccountKey {
            exporter: ip.parse().unwrap(),
            protocol: Some(Protocol::V9),
            domain,
        };
        let (b, a, a2) = (key("192.0.2.9", 0), key("192.0.2.1", 0), key("192.0.2.1", 7));
        for (i, k) in [b, b, a, b, a2, a, a].iter().enumerate() {
            acc.entry(*k).flows += 1 << i;
        }
        let got: Vec<_> = acc.iter().map(|(k, a)| (*k, a.sysid, a.flows)).collect();
        assert_eq!(got, vec![(a, 2, 4 | 32 | 64), (a2, 3, 16), (b, 1, 1 | 2 | 8)]);
    }

    #[test]
    fn accounts_stay_bounded_under_random_domains() {
        let mut acc = Accounts::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for d in 0..(MAX_ACCOUNTS as u32 + 5_000) {
            acc.entry(AccountKey { exporter: ip, protocol: Some(Protocol::Ipfix), domain: d })
                .datagrams += 1;
        }
        assert_eq!(acc.len(), MAX_ACCOUNTS + 1, "one overflow account on top");
        let total: u64 = acc.iter().map(|(_, a)| a.datagrams).sum();
        assert_eq!(total, MAX_ACCOUNTS as u64 + 5_000, "nothing goes uncounted");
        let over =
            AccountKey { exporter: ip, protocol: Some(Protocol::Ipfix), domain: OVERFLOW_DOMAIN };
        assert_eq!(acc.iter().find(|(k, _)| **k == over).unwrap().1.datagrams, 5_000);
    }
}
