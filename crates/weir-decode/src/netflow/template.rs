//! The template cache: per exporter address, protocol (v9 / IPFIX) and
//! domain (source id / observation domain), as nfcapd keys it (address +
//! domain; the exporter's UDP port is not part of the key, so an exporter
//! that changes its source port keeps its templates).
//!
//! Bounds (nothing here grows with what the network sends):
//! - per domain, at most [`TemplateLimits::max_templates`] templates and
//!   [`TemplateLimits::max_bytes`] bytes of definitions (an estimate of the
//!   memory held: [`Template::cost`]);
//! - a template not refreshed for [`TemplateLimits::ttl_ms`] (by the
//!   received time of the datagrams; no clock is read) is dropped when it
//!   is next looked up, or when space is needed;
//! - at most [`MAX_DOMAINS`] domains in all; when full, domains not heard
//!   from for a TTL are dropped, and if none is, templates of new domains
//!   are refused (`TemplateLimit`);
//! - at most [`MAX_FIELDS`] fields per template and [`MAX_SAMPLERS`]
//!   samplers per domain.

use std::collections::HashMap;
use std::net::IpAddr;

use super::fast::Plan;
use super::ie::{Act, act};
use crate::hash::FastMap;
use crate::{ErrorKind, TemplateField, TemplateInfo, TemplateLimits};

/// Most domains (exporter address + protocol + domain id) kept at once.
pub(super) const MAX_DOMAINS: usize = 4096;
/// Most fields in one template (real ones have at most a few hundred).
pub(super) const MAX_FIELDS: usize = 512;
/// Most samplers remembered per domain.
pub(super) const MAX_SAMPLERS: usize = 1024;
/// IPFIX variable-length marker.
pub(super) const VARLEN: u16 = 0xffff;

/// A compiled template.
#[derive(Debug)]
pub(super) struct Template {
    /// As received (for events).
    pub info: TemplateInfo,
    /// Per field: wire length (or [`VARLEN`]) and action.
    pub ops: Vec<(u16, Act)>,
    /// Shortest possible record (variable-length fields count 1 byte).
    pub min_len: usize,
    /// Column-direct plan of a simple data template (see `fast`).
    pub fast: Option<Plan>,
    /// Received time of the last definition (ms).
    pub refreshed_ms: u64,
}

impl Template {
    /// Compiles a definition. `v9_scope`: the first `info.scope_fields` are
    /// NetFlow v9 scope types (system, interface, ...), not field types.
    pub(super) fn compile(
        info: TemplateInfo,
        ipfix: bool,
        now: u64,
    ) -> Result<Template, ErrorKind> {
        if info.fields.len() > MAX_FIELDS {
            return Err(ErrorKind::BadTemplate(format!(
                "template {}: {} fields (at most {MAX_FIELDS} are accepted)",
                info.template_id,
                info.fields.len()
            )));
        }
        if usize::from(info.scope_fields) > info.fields.len() {
            return Err(ErrorKind::BadTemplate(format!(
                "template {}: {} scope fields but {} fields",
                info.template_id,
                info.scope_fields,
                info.fields.len()
            )));
        }
        let mut min_len = 0usize;
        let mut ops = Vec::with_capacity(info.fields.len());
        for (i, f) in info.fields.iter().enumerate() {
            let var = ipfix && f.length == VARLEN;
            min_len += if var { 1 } else { usize::from(f.length) };
            let mut a = if !ipfix && i < usize::from(info.scope_fields) {
                Act::Skip
            } else {
                act(f.enterprise, f.id)
            };
            // An element repeated in a template is taken from its first
            // occurrence: tunnel templates list the outer header's fields,
            // then the inner header's (as tshark shows them, too).
            if a != Act::Skip && ops.iter().any(|&(_, b)| b == a) {
                a = Act::Skip;
            }
            ops.push((if var { VARLEN } else { f.length }, a));
        }
        if min_len == 0 {
            return Err(ErrorKind::BadTemplate(format!(
                "template {}: records would be 0 bytes long",
                info.template_id
            )));
        }
        let fast = if info.options { None } else { Plan::compile(&ops) };
        Ok(Template { info, ops, min_len, fast, refreshed_ms: now })
    }

    /// Bytes of memory this template holds, as charged to the limit.
    pub(super) fn cost(&self) -> usize {
        64 + self.ops.len()
            * (std::mem::size_of::<TemplateField>() + std::mem::size_of::<(u16, Act)>())
            + self.fast.as_ref().map_or(0, Plan::cost)
    }

    fn expired(&self, now: u64, ttl: u64) -> bool {
        now.saturating_sub(self.refreshed_ms) > ttl
    }
}

/// Options-learnt state of a domain: samplers and the exporter's boot time.
#[derive(Debug, Default)]
pub(super) struct Options {
    /// Sampler id → rate.
    pub samplers: HashMap<u32, u32>,
    /// Rate announced without a sampler id (exporter-wide).
    pub default_rate: Option<u32>,
    /// IPFIX systemInitTimeMilliseconds (IE 160).
    pub sys_init_ms: Option<u64>,
}

/// Templates of one domain.
#[derive(Debug, Default)]
pub(super) struct Templates {
    map: FastMap<u16, Template>,
    bytes: usize,
}

/// What a lookup found.
pub(super) enum Lookup<'a> {
    Found(&'a Template),
    /// It was there but its TTL ran out; it is removed now.
    Expired,
    Missing,
}

impl Templates {
    pub(super) fn lookup(&mut self, id: u16, now: u64, ttl: u64) -> Lookup<'_> {
        let expired = match self.map.get(&id) {
            None => return Lookup::Missing,
            Some(t) => t.expired(now, ttl),
        };
        if expired {
            self.remove(id);
            return Lookup::Expired;
        }
        match self.map.get(&id) {
            Some(t) => Lookup::Found(t),
            None => Lookup::Missing,
        }
    }

    /// Looks up without expiring (for the deferred pass of one message).
    pub(super) fn get(&self, id: u16) -> Option<&Template> {
        self.map.get(&id)
    }

    /// The template held under `info`'s id if `info` defines it again
    /// unchanged (exporters resend their templates every few seconds or
    /// packets): its TTL restarts at `now` instead of it being compiled
    /// again, and it takes `info`'s source (the exporter's port may have
    /// changed). `None` if there is none or the definition differs.
    pub(super) fn refresh(&mut self, info: &TemplateInfo, now: u64) -> Option<&Template> {
        let t = self.map.get_mut(&info.template_id)?;
        let same = t.info.protocol == info.protocol
            && t.info.options == info.options
            && t.info.scope_fields == info.scope_fields
            && t.info.fields == info.fields;
        if !same {
            return None;
        }
        t.refreshed_ms = now;
        t.info.exporter = info.exporter;
        Some(t)
    }

    /// Adds or replaces a template within the limits.
    pub(super) fn insert(
        &mut self,
        t: Template,
        limits: &TemplateLimits,
        now: u64,
    ) -> Result<&Template, ErrorKind> {
        let id = t.info.template_id;
        let cost = t.cost();
        let fits = |s: &Self| {
            let old = s.map.get(&id).map(Template::cost);
            let count = s.map.len() + usize::from(old.is_none());
            let bytes = s.bytes - old.unwrap_or(0) + cost;
            count <= limits.max_templates && bytes <= limits.max_bytes
        };
        if !fits(self) {
            self.sweep(now, limits.ttl_ms);
            if !fits(self) {
                return Err(ErrorKind::TemplateLimit);
            }
        }
        if let Some(old) = self.map.insert(id, t) {
            self.bytes -= old.cost();
        }
        self.bytes += cost;
        self.map.get(&id).ok_or(ErrorKind::TemplateLimit)
    }

    /// Removes a template; whether it was there.
    pub(super) fn remove(&mut self, id: u16) -> bool {
        match self.map.remove(&id) {
            Some(t) => {
                self.bytes -= t.cost();
                true
            }
            None => false,
        }
    }

    /// Removes all (options or non-options) templates; their ids.
    pub(super) fn remove_all(&mut self, options: bool) -> Vec<u16> {
        let mut ids: Vec<u16> = self
            .map
            .values()
            .filter(|t| t.info.options == options)
            .map(|t| t.info.template_id)
            .collect();
        ids.sort_unstable();
        for id in &ids {
            self.remove(*id);
        }
        ids
    }

    fn sweep(&mut self, now: u64, ttl: u64) {
        let dead: Vec<u16> =
            self.map.values().filter(|t| t.expired(now, ttl)).map(|t| t.info.template_id).collect();
        for id in dead {
            self.remove(id);
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// One exporter domain.
#[derive(Debug, Default)]
pub(super) struct Domain {
    pub templates: Templates,
    pub options: Options,
    last_ms: u64,
}

/// Key of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct DomainKey {
    pub addr: IpAddr,
    pub ipfix: bool,
    pub domain: u32,
}

/// All domains.
#[derive(Debug, Default)]
pub(crate) struct DomainTable {
    map: FastMap<DomainKey, Domain>,
}

impl DomainTable {
    /// The domain of `key`, created if there is room (see the module doc).
    pub(super) fn domain(&mut self, key: DomainKey, now: u64, ttl: u64) -> Option<&mut Domain> {
        if !self.map.contains_key(&key) && self.map.len() >= MAX_DOMAINS {
            self.map.retain(|_, d| now.saturating_sub(d.last_ms) <= ttl);
            if self.map.len() >= MAX_DOMAINS {
                return None;
            }
        }
        let d = self.map.entry(key).or_default();
        d.last_ms = d.last_ms.max(now);
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u16, n: usize) -> TemplateInfo {
        TemplateInfo {
            exporter: "192.0.2.1:9".parse().unwrap(),
            protocol: crate::Protocol::Ipfix,
            domain: 0,
            template_id: id,
            options: false,
            scope_fields: 0,
            fields: vec![TemplateField { id: 8, enterprise: 0, length: 4 }; n],
        }
    }

    #[test]
    fn limits_count_bytes_and_ttl() {
        let limits = TemplateLimits { max_templates: 2, max_bytes: 10_000, ttl_ms: 100 };
        let mut t = Templates::default();
        for id in 256..258 {
            t.insert(Template::compile(info(id, 3), true, 0).unwrap(), &limits, 0).unwrap();
        }
        let third = Template::compile(info(258, 3), true, 50).unwrap();
        assert_eq!(t.insert(third, &limits, 50).unwrap_err(), ErrorKind::TemplateLimit);
        // Replacing is fine.
        t.insert(Template::compile(info(257, 4), true, 50).unwrap(), &limits, 50).unwrap();
        // After the TTL of 256 the third one fits (256 is swept).
        let third = Template::compile(info(258, 3), true, 150).unwrap();
        t.insert(third, &limits, 150).unwrap();
        assert_eq!(t.len(), 2);
        assert!(matches!(t.lookup(257, 149, 100), Lookup::Found(_)));
        assert!(matches!(t.lookup(257, 151, 100), Lookup::Expired));
        assert!(matches!(t.lookup(257, 152, 100), Lookup::Missing));
        let small = TemplateLimits { max_templates: 10, max_bytes: 100, ttl_ms: 100 };
        let big = Template::compile(info(300, 20), true, 0).unwrap();
        assert_eq!(t.insert(big, &small, 150).unwrap_err(), ErrorKind::TemplateLimit);
        let all = t.remove_all(false);
        assert_eq!((all, t.bytes()), (vec![258], 0));
    }

    /// A template sent again unchanged restarts its TTL without being
    /// compiled again; a changed one is not a refresh.
    #[test]
    fn unchanged_definitions_refresh() {
        let limits = TemplateLimits { max_templates: 4, max_bytes: 10_000, ttl_ms: 100 };
        let mut t = Templates::default();
        assert!(t.refresh(&info(256, 3), 0).is_none(), "nothing held yet");
        t.insert(Template::compile(info(256, 3), true, 0).unwrap(), &limits, 0).unwrap();
        assert_eq!(t.refresh(&info(256, 3), 90).map(|x| x.refreshed_ms), Some(90));
        let mut moved = info(256, 3);
        moved.exporter = "192.0.2.1:10".parse().unwrap();
        assert_eq!(t.refresh(&moved, 90).map(|x| x.info.exporter), Some(moved.exporter));
        assert!(matches!(t.lookup(256, 150, 100), Lookup::Found(_)), "TTL restarted at 90");
        assert!(t.refresh(&info(256, 4), 95).is_none(), "more fields: a new definition");
        let mut options = info(256, 3);
        options.options = true;
        assert!(t.refresh(&options, 95).is_none(), "an options template now");
        assert!(t.refresh(&info(257, 3), 95).is_none(), "another id");
        assert!(matches!(t.lookup(256, 191, 100), Lookup::Expired));
    }

    #[test]
    fn compile_rejects_empty_and_huge() {
        assert!(Template::compile(info(256, 0), true, 0).is_err());
        assert!(Template::compile(info(256, MAX_FIELDS + 1), true, 0).is_err());
        let mut i = info(256, 1);
        i.fields[0].length = 0;
        assert!(Template::compile(i, false, 0).is_err());
    }

    #[test]
    fn domain_table_is_bounded() {
        let mut d = DomainTable::default();
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..MAX_DOMAINS as u32 {
            assert!(d.domain(DomainKey { addr, ipfix: true, domain: i }, 0, 100).is_some());
        }
        let k = DomainKey { addr, ipfix: true, domain: u32::MAX };
        assert!(d.domain(k, 50, 100).is_none());
        assert!(d.domain(k, 500, 100).is_some());
    }
}
