//! `weir pcap`: captures through the flow cache into slot files, by packet
//! time.

use std::collections::BTreeMap;
use std::path::PathBuf;

use weir_decode::pcap::CaptureError;
use weir_record::FlowRecord;
use weir_store::{
    Creator, OnExists, SlotMeta, SlotWriter, SubdirLayout, WriterOptions, slot_path, slot_start,
};

use crate::cache::{CacheConfig, CacheStats, FlowCache};
use crate::input::{FramesError, read_frames};

/// What to read and where to write.
#[derive(Debug, Clone)]
pub struct PcapOptions {
    /// Capture files (pcap or pcapng, optionally gzip), read in order as
    /// one stream of packets; `-` is stdin.
    pub inputs: Vec<PathBuf>,
    /// Base directory of the slot files.
    pub dir: PathBuf,
    /// Sub-directory layout (nfcapd -S).
    pub layout: SubdirLayout,
    /// Slot length in seconds (nfcapd -t).
    pub slot_secs: u32,
    /// Ident stored in every file.
    pub ident: String,
    /// Slot file writer options.
    pub writer: WriterOptions,
    /// Flow cache settings.
    pub cache: CacheConfig,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct PcapReport {
    /// Slot files written, in order of closing.
    pub files: Vec<PathBuf>,
    /// Flows written.
    pub flows: u64,
    /// Frames read from the captures.
    pub frames: u64,
    /// The flow cache's counters (packets, drops by reason, flow ends).
    pub cache: CacheStats,
    /// Captures that were damaged (the frames before the damage were used)
    /// or not captures at all.
    pub capture_errors: Vec<(PathBuf, CaptureError)>,
    /// First and last packet time (ms since the epoch; 0 if none).
    pub first_ms: u64,
    /// See `first_ms`.
    pub last_ms: u64,
}

/// Errors that stop a run: unreadable input, or slot files that cannot be
/// written.
#[derive(Debug)]
pub enum PcapError {
    /// A capture could not be read.
    Input(crate::InputError),
    /// A slot file could not be written.
    Store(weir_store::StoreError),
}

impl std::fmt::Display for PcapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PcapError::Input(e) => e.fmt(f),
            PcapError::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PcapError {}

impl From<weir_store::StoreError> for PcapError {
    fn from(e: weir_store::StoreError) -> Self {
        PcapError::Store(e)
    }
}

/// Reads the captures through a [`FlowCache`] into slot files: a flow goes
/// into the slot of the packet time at which it ended (its `received`
/// time); flows still open at the end go into the slot of their last
/// packet.
pub fn pcap_to_slots(opts: &PcapOptions) -> Result<PcapReport, PcapError> {
    let mut cache = FlowCache::new(opts.cache);
    let mut out = Slots {
        opts,
        open: BTreeMap::new(),
        report: PcapReport::default(),
        // A flow still in the cache has its last packet no longer than the
        // inactive timeout (+ one sweep) before the clock: its slot must
        // stay open until then.
        horizon_ms: opts.cache.inactive_ms.min(opts.cache.active_ms) + 11_000,
        min_start: i64::MIN,
    };
    let mut buf: Vec<FlowRecord> = Vec::with_capacity(4096);
    for path in &opts.inputs {
        let damage = read_frames(path, |f| {
            out.report.frames += 1;
            let ms = f.ts_ns / 1_000_000;
            if out.report.first_ms == 0 || ms < out.report.first_ms {
                out.report.first_ms = ms;
            }
            out.report.last_ms = out.report.last_ms.max(ms);
            cache.packet(f.ts_ns, f.linktype, f.orig_len, f.data, &mut buf);
            if !buf.is_empty() {
                out.write(&buf)?;
                buf.clear();
                out.close_before(cache.clock_ns() / 1_000_000)?;
            }
            Ok(())
        })
        .map_err(|e| match e {
            FramesError::Input(e) => PcapError::Input(e),
            FramesError::Handler(e) => e,
        })?;
        if let Some(e) = damage {
            out.report.capture_errors.push((path.clone(), e));
        }
    }
    cache.flush(&mut buf);
    out.write(&buf)?;
    out.close_before(u64::MAX)?;
    out.report.cache = cache.stats();
    Ok(out.report)
}

struct Slots<'a> {
    opts: &'a PcapOptions,
    open: BTreeMap<i64, SlotWriter>,
    report: PcapReport,
    horizon_ms: u64,
    /// Slots before this one are published: a late flow (packets out of
    /// time order) goes into this one instead.
    min_start: i64,
}

impl Slots<'_> {
    fn write(&mut self, flows: &[FlowRecord]) -> Result<(), PcapError> {
        let len = self.opts.slot_secs.max(1);
        for r in flows {
            let start = slot_start((r.received / 1000) as i64, len).max(self.min_start);
            let w = match self.open.entry(start) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let path = slot_path(&self.opts.dir, self.opts.layout, start, len);
                    let meta = SlotMeta {
                        slot_start_s: start,
                        slot_len_s: len,
                        ident: self.opts.ident.clone(),
                        creator: Creator::Pcap,
                    };
                    let mut wo = self.opts.writer;
                    wo.on_exists = OnExists::Fail;
                    v.insert(SlotWriter::create(&path, meta, wo)?)
                }
            };
            w.push(r)?;
            self.report.flows += 1;
        }
        Ok(())
    }

    /// Publishes the slots that end before `clock_ms - horizon`.
    fn close_before(&mut self, clock_ms: u64) -> Result<(), PcapError> {
        let len = i64::from(self.opts.slot_secs.max(1));
        let limit = if clock_ms == u64::MAX {
            i64::MAX
        } else {
            (clock_ms.saturating_sub(self.horizon_ms) / 1000) as i64
        };
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() + len > limit {
                break;
            }
            self.min_start = *entry.key() + len;
            let w = entry.remove();
            let path = w.finish()?;
            self.report.files.push(path);
        }
        Ok(())
    }
}
