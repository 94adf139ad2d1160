//! Sampling rates of v9/IPFIX flows.
//!
//! Exporters announce rates three ways, all handled:
//! - in an options record with a sampler id (48 `samplerId` / v9
//!   FLOW_SAMPLER_ID, 302 `selectorId`) and an interval (34
//!   `samplingInterval`, 50 `samplerRandomInterval`, 305/306
//!   `samplingPacketInterval`/`samplingPacketSpace`): the domain's sampler
//!   table maps that id to the rate;
//! - in an options record with an interval but no sampler id: the rate of
//!   the whole domain (exporter-wide);
//! - in the data record itself (34/50/305/306), or a sampler id there that
//!   is looked up in the table.
//!
//! A data record's rate is its own interval, else its sampler's, else the
//! domain-wide one. Rates are stored per flow (`sampling_rate`, only when
//! above 1); scaling counters is `Emit`'s job.

use super::ie::Scratch;
use super::template::{MAX_SAMPLERS, Options};

/// Learns what an options record says; the rate it announced, if any.
pub(super) fn learn(opts: &mut Options, s: &Scratch) -> Option<u32> {
    if let Some(init) = s.sys_init_ms {
        opts.sys_init_ms = Some(init);
    }
    let rate = s.own_rate()?;
    match s.sampler_id {
        Some(id) => {
            if opts.samplers.len() < MAX_SAMPLERS || opts.samplers.contains_key(&id) {
                opts.samplers.insert(id, rate);
            }
        }
        None => opts.default_rate = Some(rate),
    }
    Some(rate)
}

/// The rate of a data record.
pub(super) fn rate_of(opts: &Options, s: &Scratch) -> Option<u32> {
    s.own_rate()
        .or_else(|| s.sampler_id.and_then(|id| opts.samplers.get(&id).copied()))
        .or(opts.default_rate)
}

#[cfg(test)]
mod tests {
    use super::super::ie::Act;
    use super::*;

    #[test]
    fn table_and_default() {
        let mut o = Options::default();
        let mut s = Scratch::default();
        s.apply(Act::SamplerId, &[3]);
        s.apply(Act::SamplingInterval, &[0, 100]);
        assert_eq!(learn(&mut o, &s), Some(100));
        let mut s = Scratch::default();
        s.apply(Act::PacketInterval, &[1]);
        s.apply(Act::PacketSpace, &[0, 0, 0, 9]);
        assert_eq!(learn(&mut o, &s), Some(10));
        let mut d = Scratch::default();
        d.apply(Act::SamplerId, &[3]);
        assert_eq!(rate_of(&o, &d), Some(100));
        d.apply(Act::SamplerId, &[4]);
        assert_eq!(rate_of(&o, &d), Some(10));
        d.apply(Act::SamplingInterval, &[7]);
        assert_eq!(rate_of(&o, &d), Some(7));
    }
}
