//! Sources and their open slots: which directory a datagram's flows go to,
//! the slot file being written for each source, and handing full slots to
//! the finisher thread so that decoding never waits for fsync.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use weir_decode::DatagramInfo;
use weir_record::{BatchBuilder, ExporterStats, FlowRecord, ip_to_u128};
use weir_store::{Creator, OnExists, SlotMeta, SlotWriter, StoreError, WriterOptions, slot_path};

use crate::config::CollectConfig;
use crate::headers::{HeaderCapture, HeaderStats};

/// Which source a datagram belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum SourceId {
    /// The only source (`-w`, `-I`).
    Single,
    /// Fixed source number i (`-n`).
    Fixed(usize),
    /// One per exporter (`-M`).
    Dynamic(IpAddr),
}

/// Directory and ident of a source.
#[derive(Debug, Clone)]
pub(crate) struct SourceDef {
    pub(crate) dir: PathBuf,
    pub(crate) ident: String,
}

/// Resolves exporters to sources.
pub(crate) struct Sources {
    cfg: CollectConfig,
}

impl Sources {
    pub(crate) fn new(cfg: &CollectConfig) -> Sources {
        Sources { cfg: cfg.clone() }
    }

    /// The source of a datagram from `ip`; `None` = not allowed (fixed
    /// sources are an allow-list).
    pub(crate) fn resolve(&self, ip: IpAddr) -> Option<SourceId> {
        if !self.cfg.sources.is_empty() {
            return self
                .cfg
                .sources
                .iter()
                .position(|s| s.exporters.iter().any(|c| c.contains(ip)))
                .map(SourceId::Fixed);
        }
        Some(if self.cfg.dynamic { SourceId::Dynamic(ip) } else { SourceId::Single })
    }

    /// Every source known before any datagram arrives.
    pub(crate) fn fixed(&self) -> Vec<SourceId> {
        if !self.cfg.sources.is_empty() {
            (0..self.cfg.sources.len()).map(SourceId::Fixed).collect()
        } else if self.cfg.dynamic {
            Vec::new()
        } else {
            vec![SourceId::Single]
        }
    }

    pub(crate) fn def(&self, id: &SourceId) -> SourceDef {
        match id {
            SourceId::Single => {
                SourceDef { dir: self.cfg.dir.clone(), ident: self.cfg.ident.clone() }
            }
            SourceId::Fixed(i) => {
                let s = &self.cfg.sources[*i];
                let dir =
                    if s.dir.is_absolute() { s.dir.clone() } else { self.cfg.dir.join(&s.dir) };
                SourceDef { dir, ident: s.ident.clone() }
            }
            SourceId::Dynamic(ip) => {
                let name = ip.to_string().replace(['.', ':'], "-");
                SourceDef { dir: self.cfg.dir.join(&name), ident: name }
            }
        }
    }

    /// Directories (and the ident of their files) to search for
    /// unfinished slots at start-up. Dynamic sources are found under the
    /// base directory; their ident is their directory name.
    pub(crate) fn dirs(&self) -> Vec<(PathBuf, String)> {
        let mut v: Vec<(PathBuf, String)> =
            self.fixed().iter().map(|s| self.def(s)).map(|d| (d.dir, d.ident)).collect();
        if self.cfg.dynamic
            && let Ok(rd) = std::fs::read_dir(&self.cfg.dir)
        {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    let name = e.file_name().to_string_lossy().to_string();
                    v.push((p, name));
                }
            }
        }
        v.sort();
        v.dedup_by(|a, b| a.0 == b.0);
        v
    }
}

/// Key of an exporter in a slot's footer table.
type ExporterKey = (IpAddr, u16, u32);

/// The file being written for one source and slot.
pub(crate) struct OpenSlot {
    pub(crate) start_s: i64,
    writer: SlotWriter,
    exporters: BTreeMap<ExporterKey, ExporterStats>,
    /// Flows that could not be written (disk errors).
    lost: u64,
    error: Option<StoreError>,
    /// sFlow sampled headers of the slot (`--sflow-pcap`), created with the
    /// first header.
    headers: Option<HeaderCapture>,
    /// The header capture could not be created: headers are counted as
    /// lost until the next slot.
    headers_failed: bool,
}

impl OpenSlot {
    pub(crate) fn create(
        def: &SourceDef,
        cfg: &CollectConfig,
        start_s: i64,
    ) -> Result<OpenSlot, StoreError> {
        let path = slot_path(&def.dir, cfg.layout, start_s, cfg.slot_secs);
        let meta = SlotMeta {
            slot_start_s: start_s,
            slot_len_s: cfg.slot_secs,
            ident: def.ident.clone(),
            creator: Creator::Collect,
        };
        let opts = WriterOptions {
            compression: cfg.compression,
            on_exists: OnExists::NextSeq,
            ..Default::default()
        };
        let writer = SlotWriter::create(&path, meta, opts)?;
        Ok(OpenSlot {
            start_s,
            writer,
            exporters: BTreeMap::new(),
            lost: 0,
            error: None,
            headers: None,
            headers_failed: false,
        })
    }

    /// Writes one flow; a write error is kept (and later flows counted as
    /// lost) instead of stopping the collector.
    pub(crate) fn push(&mut self, f: &FlowRecord) {
        if self.error.is_some() {
            self.lost += 1;
            return;
        }
        if let Err(e) = self.writer.push(f) {
            tracing::error!(error = %e, "cannot write flows; they are counted as dropped until the next slot");
            self.error = Some(e);
            self.lost += 1;
        }
    }

    /// The writer's column builder, for decoders that append rows to it
    /// directly, and how many rows fit before the block is full; `None`
    /// after a write error (flows then go through `push` and are counted).
    pub(crate) fn batch(&mut self) -> Option<(&mut BatchBuilder, usize)> {
        if self.error.is_some() {
            return None;
        }
        let room = self.writer.room();
        (room > 0).then(|| (self.writer.builder_mut(), room))
    }

    /// Writes the block once rows appended through `batch` filled it.
    pub(crate) fn batch_done(&mut self) {
        let pending = self.writer.buffered_rows() as u64;
        if self.error.is_none()
            && let Err(e) = self.writer.flush_if_full()
        {
            tracing::error!(error = %e, "cannot write flows; they are counted as dropped until the next slot");
            self.lost += pending;
            self.error = Some(e);
        }
    }

    /// Keeps the sampled packet headers of an sFlow datagram.
    pub(crate) fn sampled_headers(
        &mut self,
        payload: &[u8],
        received_ms: u64,
        stats: &HeaderStats,
    ) {
        if self.headers.is_none() && !self.headers_failed {
            match HeaderCapture::create(self.writer.temp_path()) {
                Ok(h) => self.headers = Some(h),
                Err(e) => {
                    tracing::error!(slot = %self.writer.temp_path().display(), error = %e, "cannot create the sampled-header capture; headers are counted as lost until the next slot");
                    self.headers_failed = true;
                }
            }
        }
        match self.headers.as_mut() {
            Some(h) => h.datagram(payload, received_ms, stats),
            None => {
                let n =
                    weir_decode::sampled::sampled_headers(payload, |_| {}).map_or(0, |w| w.headers);
                stats.lost.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Writes buffered rows as a block (bounds what a crash can lose).
    pub(crate) fn cut_block(&mut self) {
        if let Some(h) = self.headers.as_mut() {
            h.flush();
        }
        if self.error.is_none()
            && self.writer.buffered_rows() > 0
            && let Err(e) = self.writer.cut_block()
        {
            tracing::error!(error = %e, "cannot write flows; they are counted as dropped until the next slot");
            self.lost += self.writer.buffered_rows() as u64;
            self.error = Some(e);
        }
    }

    /// Adds a decoded datagram to the footer counters of its exporter.
    pub(crate) fn account(&mut self, info: &DatagramInfo, sysid: u16, received_ms: u64) {
        let e = self.exporter(info.exporter, info.protocol.code(), info.domain, sysid);
        e.datagrams += 1;
        e.flows += info.flows;
        e.packets = e.packets.saturating_add(info.packets);
        e.bytes = e.bytes.saturating_add(info.bytes);
        e.sequence_failures += info.sequence_failures;
        e.decode_errors += info.errors.len() as u64;
        e.unknown_template_sets += info.unknown_template_sets;
        e.sampling_rate = e.sampling_rate.max(info.sampling_rate);
        touch(e, received_ms);
        self.writer.add_sequence_failures(info.sequence_failures);
    }

    /// Counts a datagram nothing could be decoded from.
    pub(crate) fn account_failed(&mut self, ip: IpAddr, received_ms: u64) {
        let e = self.exporter(ip, 0, 0, 0);
        e.datagrams += 1;
        e.decode_errors += 1;
        touch(e, received_ms);
    }

    /// Counts datagrams the receive queue dropped.
    pub(crate) fn account_dropped(&mut self, ip: IpAddr, n: u64) {
        if let Some(e) = self.exporters.values_mut().find(|e| e.addr == ip_to_u128(ip)) {
            e.dropped += n;
        } else {
            self.exporter(ip, 0, 0, 0).dropped += n;
        }
    }

    fn exporter(
        &mut self,
        ip: IpAddr,
        version: u16,
        domain: u32,
        sysid: u16,
    ) -> &mut ExporterStats {
        // Domains come from the wire: past the bound, new ones share the
        // exporter's overflow entry (as the decoder's accounts do).
        let domain = if self.exporters.len() >= weir_decode::MAX_ACCOUNTS
            && !self.exporters.contains_key(&(ip, version, domain))
        {
            weir_decode::OVERFLOW_DOMAIN
        } else {
            domain
        };
        self.exporters.entry((ip, version, domain)).or_insert_with(|| ExporterStats {
            addr: ip_to_u128(ip),
            sysid,
            version,
            domain,
            ..Default::default()
        })
    }
}

fn touch(e: &mut ExporterStats, t: u64) {
    if e.first_ms == 0 || t < e.first_ms {
        e.first_ms = t;
    }
    e.last_ms = e.last_ms.max(t);
}

/// Counters the finisher shares with the metrics endpoint.
#[derive(Debug, Default)]
pub(crate) struct FinishStats {
    pub(crate) files_written: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    pub(crate) flows_lost: AtomicU64,
    pub(crate) last_rotation_ms: AtomicU64,
    pub(crate) last_rotation_micros: AtomicU64,
    /// sFlow sampled headers kept (`--sflow-pcap`).
    pub(crate) headers: HeaderStats,
}

/// A slot handed over for finalizing.
pub(crate) struct Finished {
    pub(crate) slot: OpenSlot,
    pub(crate) def: SourceDef,
}

/// Starts the finisher: footer, fsync, publish, after-rotation command.
pub(crate) fn spawn_finisher(
    rx: Receiver<Finished>,
    after_rotate: Option<String>,
    stats: Arc<FinishStats>,
    published: Arc<Mutex<Vec<PathBuf>>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("finisher".into()).spawn(move || {
        let mut children: Vec<std::process::Child> = Vec::new();
        for Finished { mut slot, def } in rx {
            let t0 = Instant::now();
            let rows = slot.writer.rows();
            slot.writer.set_exporters(std::mem::take(&mut slot.exporters).into_values().collect());
            if slot.lost > 0 {
                stats.flows_lost.fetch_add(slot.lost, Ordering::Relaxed);
            }
            match slot.writer.finish() {
                Ok(path) => {
                    let us = t0.elapsed().as_micros() as u64;
                    stats.files_written.fetch_add(1, Ordering::Relaxed);
                    stats.last_rotation_ms.store(crate::listen::now_ms(), Ordering::Relaxed);
                    stats.last_rotation_micros.store(us, Ordering::Relaxed);
                    tracing::info!(file = %path.display(), flows = rows, lost = slot.lost, micros = us, "slot written");
                    if let Some(h) = slot.headers.take() {
                        match h.publish(&path) {
                            Ok(p) => tracing::info!(file = %p.display(), "sampled headers written"),
                            Err(e) => tracing::error!(slot = %path.display(), error = %e, "sampled headers could not be published"),
                        }
                    }
                    if let Some(cmd) = &after_rotate {
                        match run_after(cmd, &path, &def, slot.start_s) {
                            Ok(c) => children.push(c),
                            Err(e) => tracing::warn!(command = %cmd, error = %e, "after-rotation command failed to start"),
                        }
                    }
                    if let Ok(mut p) = published.lock() {
                        p.push(path);
                    }
                }
                Err(e) => {
                    // A header capture stays behind as a temporary file;
                    // the next start publishes it.
                    stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    stats.flows_lost.fetch_add(rows, Ordering::Relaxed);
                    tracing::error!(error = %e, flows = rows, "slot could not be written");
                }
            }
            children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        }
        for mut c in children {
            let _ = c.wait();
        }
    })
}

/// Runs `-x` with nfcapd's placeholders, split on whitespace, no shell.
fn run_after(
    cmd: &str,
    path: &Path,
    def: &SourceDef,
    start_s: i64,
) -> std::io::Result<std::process::Child> {
    let stamp = weir_store::slot_file_name(start_s, 60);
    let stamp = stamp.trim_start_matches(weir_store::FILE_PREFIX);
    let rel = path.strip_prefix(&def.dir).unwrap_or(path);
    let subst = |w: &str| {
        w.replace("%f", &rel.to_string_lossy())
            .replace("%d", &def.dir.to_string_lossy())
            .replace("%t", stamp)
            .replace("%u", &start_s.to_string())
            .replace("%i", &def.ident)
    };
    let words: Vec<String> = cmd.split_whitespace().map(subst).collect();
    let (prog, args) = words.split_first().ok_or_else(|| std::io::Error::other("empty command"))?;
    std::process::Command::new(prog).args(args).stdin(std::process::Stdio::null()).spawn()
}

/// The open slots of every source (looked up for every datagram: a fast
/// hash, seeded, since `-M` keys come from the network).
#[derive(Default)]
pub(crate) struct OpenSlots {
    pub(crate) open: weir_decode::hash::FastMap<SourceId, (SourceDef, OpenSlot)>,
}

impl OpenSlots {
    /// Hands every open slot to the finisher.
    pub(crate) fn close_all(&mut self, finisher: &Sender<Finished>) {
        for (_, (def, slot)) in self.open.drain() {
            let _ = finisher.send(Finished { slot, def });
        }
    }
}
