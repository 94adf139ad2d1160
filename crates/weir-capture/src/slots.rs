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
    /// Flows whose slot was already published (packets out of time
    /// order by more than the cache's horizon): written into the oldest
    /// open slot instead.
    pub late_flows: u64,
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
    /// The interface of a live capture could not be opened or read.
    Interface {
        /// The interface.
        name: String,
        /// What went wrong.
        message: String,
    },
}

impl std::fmt::Display for PcapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PcapError::Input(e) => e.fmt(f),
            PcapError::Store(e) => e.fmt(f),
            PcapError::Interface { name, message } => write!(f, "interface {name}: {message}"),
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
    let mut run = Run::new(opts);
    for path in &opts.inputs {
        let damage = read_frames(path, |f| run.frame(f.ts_ns, f.linktype, f.orig_len, f.data))
            .map_err(|e| match e {
                FramesError::Input(e) => PcapError::Input(e),
                FramesError::Handler(e) => e,
            })?;
        if let Some(e) = damage {
            run.out.report.capture_errors.push((path.clone(), e));
        }
    }
    run.finish()
}

/// Packets through the flow cache into slot files, whatever their source.
pub(crate) struct Run<'a> {
    cache: FlowCache,
    out: Slots<'a>,
    buf: Vec<FlowRecord>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(opts: &'a PcapOptions) -> Run<'a> {
        let cache = FlowCache::new(opts.cache);
        // A flow still in the cache has its last packet no longer than the
        // inactive timeout (+ one sweep) before the clock: its slot must
        // stay open until then.
        let sweep_ms = (cache.sweep_ns() / 1_000_000).max(1);
        let out = Slots {
            opts,
            open: BTreeMap::new(),
            report: PcapReport::default(),
            horizon_ms: opts.cache.inactive_ms.min(opts.cache.active_ms) + sweep_ms + 1_000,
            min_start: i64::MIN,
        };
        Run { cache, out, buf: Vec::with_capacity(4096) }
    }

    /// One captured frame at `ts_ns`.
    pub(crate) fn frame(
        &mut self,
        ts_ns: u64,
        linktype: u32,
        orig_len: u32,
        data: &[u8],
    ) -> Result<(), PcapError> {
        let r = &mut self.out.report;
        r.frames += 1;
        let ms = ts_ns / 1_000_000;
        if r.first_ms == 0 || ms < r.first_ms {
            r.first_ms = ms;
        }
        r.last_ms = r.last_ms.max(ms);
        self.cache.packet(ts_ns, linktype, orig_len, data, &mut self.buf);
        self.drain(false)
    }

    /// No packet until `now_ns`: exports timed-out flows, publishes slots.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn tick(&mut self, now_ns: u64) -> Result<(), PcapError> {
        self.cache.advance(now_ns, &mut self.buf);
        // Slots whose time has passed are published even when no flow
        // ended now.
        self.drain(true)
    }

    /// Writes the flows that ended; then publishes the slots that are
    /// complete, if any flow was written or `always`.
    fn drain(&mut self, always: bool) -> Result<(), PcapError> {
        let ended = !self.buf.is_empty();
        if ended {
            self.out.write(&self.buf)?;
            self.buf.clear();
        }
        if ended || always {
            self.out.close_before(self.cache.clock_ns() / 1_000_000)?;
        }
        Ok(())
    }

    /// Exports every flow still open and publishes every slot.
    pub(crate) fn finish(mut self) -> Result<PcapReport, PcapError> {
        self.cache.flush(&mut self.buf);
        self.out.write(&self.buf)?;
        self.out.close_before(u64::MAX)?;
        self.out.report.cache = self.cache.stats();
        Ok(self.out.report)
    }
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
            let own = slot_start((r.received / 1000) as i64, len);
            if own < self.min_start {
                self.report.late_flows += 1;
            }
            let start = own.max(self.min_start);
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
