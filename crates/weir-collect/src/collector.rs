//! The collector: build (bind sockets, check directories), then run until
//! told to stop, then finalize every open slot.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_decode::{AccountKey, Datagram, Decoder, DecoderConfig, Sink};
use weir_record::{BatchBuilder, FlowRecord};
use weir_store::slot_start;

use crate::config::{CollectConfig, Input};
use crate::listen::{self, Batch, DropMap, Listener, Pool};
use crate::metrics::{self, Page};
use crate::slots::{FinishStats, Finished, OpenSlot, OpenSlots, SourceId, Sources, spawn_finisher};

/// Why the collector could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The data directory cannot be used.
    #[error("data directory {path}: {message}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The capture given with `-f` cannot be read.
    #[error("capture {path}: {message}")]
    Capture {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Any other I/O problem (pid file, threads, metrics socket).
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A slot file could not be created.
    #[error(transparent)]
    Store(#[from] weir_store::StoreError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CollectError {
    let what = what.into();
    move |source| CollectError::Io { what, source }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Datagrams handed to the decoder.
    pub datagrams: u64,
    /// Flows decoded.
    pub flows: u64,
    /// Datagrams dropped because the queue was full.
    pub queue_drops: u64,
    /// Datagrams from exporters that belong to no source.
    pub unknown_exporter_datagrams: u64,
    /// Slot files published, in order.
    pub files: Vec<PathBuf>,
    /// Unfinished slots of a crashed run, recovered at start-up.
    pub recovered: Vec<weir_store::RecoveryReport>,
    /// Sampled-header captures of a crashed run published at start-up,
    /// with the frames each kept.
    pub recovered_captures: Vec<(PathBuf, usize)>,
    /// sFlow sampled headers written to the slots' pcaps (`--sflow-pcap`).
    pub sflow_headers: u64,
    /// Sampled headers not kept: of a link type an Ethernet pcap cannot
    /// hold, or lost to a write error.
    pub sflow_headers_not_kept: u64,
}

/// A collector ready to run: sockets bound, configuration checked.
pub struct Collector {
    cfg: CollectConfig,
    listeners: Vec<(Listener, &'static str)>,
    metrics: Option<std::net::TcpListener>,
    /// The raw socket of the spoofing repeater (`-A`), opened at build.
    spoof: Option<socket2::Socket>,
}

/// How often the decode thread looks at the clock and the stop flag when
/// no datagram arrives.
const TICK: Duration = Duration::from_millis(100);

/// Unknown exporters counted one by one; the rest are counted together
/// under `::` (their addresses may be spoofed).
const MAX_UNKNOWN_EXPORTERS: usize = 4096;

/// Rows buffered for longer than this are written as a block even if the
/// block is not full: a crash (kill -9) loses at most this much of a slow
/// source's flows. Busy sources fill 32 768-row blocks long before.
const CUT_BLOCK_AFTER: Duration = Duration::from_secs(10);

impl Collector {
    /// Binds the listen sockets, checks the data directory and writes the
    /// pid file.
    pub fn build(cfg: CollectConfig) -> Result<Collector, CollectError> {
        if cfg.slot_secs == 0 {
            return Err(CollectError::Dir {
                path: cfg.dir.clone(),
                message: "slot length must be at least 1 s".into(),
            });
        }
        std::fs::create_dir_all(&cfg.dir)
            .map_err(|e| CollectError::Dir { path: cfg.dir.clone(), message: e.to_string() })?;
        if cfg.repeaters.len() > 8 {
            return Err(CollectError::Dir {
                path: cfg.dir.clone(),
                message: "at most 8 repeaters".into(),
            });
        }
        let mut listeners = Vec::new();
        if let Input::Sockets { netflow, sflow, rcvbuf } = &cfg.input {
            for (addrs, kind) in [(netflow, "netflow"), (sflow, "sflow")] {
                for &addr in addrs {
                    let l = listen::bind(addr, *rcvbuf, cfg.multicast_if)
                        .map_err(|source| CollectError::Bind { addr, source })?;
                    listeners.push((l, kind));
                }
            }
        }
        let metrics = match cfg.metrics {
            Some(addr) => {
                Some(metrics::bind(addr).map_err(|source| CollectError::Bind { addr, source })?)
            }
            None => None,
        };
        let spoof = if cfg.repeat_spoof && !cfg.repeaters.is_empty() {
            Some(listen::raw_socket().map_err(io_err("the spoofing repeater (-A)"))?)
        } else {
            None
        };
        if let Some(p) = &cfg.pidfile {
            std::fs::write(p, format!("{}\n", std::process::id()))
                .map_err(io_err(format!("pid file {}", p.display())))?;
        }
        Ok(Collector { cfg, listeners, metrics, spoof })
    }

    /// The bound metrics address, if a metrics endpoint was asked for.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|m| m.local_addr().ok())
    }

    /// The bound listen addresses (with the ports the OS chose for port 0)
    /// and their kind (`netflow` or `sflow`).
    pub fn local_addrs(&self) -> Vec<(SocketAddr, &'static str)> {
        self.listeners.iter().map(|(l, k)| (l.addr, *k)).collect()
    }

    /// Runs until `stop` is set (or the capture is consumed), then
    /// finalizes every open slot.
    pub fn run(mut self, stop: Arc<AtomicBool>) -> Result<RunReport, CollectError> {
        let cfg = self.cfg.clone();
        let sources = Sources::new(&cfg);
        let recovered = crate::recovery::recover_all(&sources.dirs());

        let finish_stats = Arc::new(FinishStats::default());
        let published = Arc::new(Mutex::new(Vec::new()));
        let (ftx, frx) = mpsc::channel::<Finished>();
        let finisher =
            spawn_finisher(frx, cfg.after_rotate.clone(), finish_stats.clone(), published.clone())
                .map_err(io_err("starting the finisher thread"))?;

        let page: Page = Arc::new(Mutex::new(String::new()));
        let metrics_thread = match self.metrics.take() {
            Some(l) => {
                tracing::info!(bound = ?l.local_addr().ok(), "metrics endpoint listening");
                Some(
                    metrics::serve(l, page.clone(), stop.clone())
                        .map_err(io_err("starting the metrics thread"))?,
                )
            }
            None => None,
        };

        let mut w = Worker {
            cfg: cfg.clone(),
            sources,
            decoder: Decoder::new(DecoderConfig { sampling: cfg.sampling, ..Default::default() }),
            slots: OpenSlots::default(),
            slot_start_s: None,
            finisher: ftx,
            stats: finish_stats.clone(),
            unknown: HashMap::new(),
            report: RunReport {
                recovered: recovered.slots,
                recovered_captures: recovered.captures,
                ..RunReport::default()
            },
        };

        let result = match &cfg.input {
            Input::Capture(path) => w.run_capture(path, &stop),
            Input::Sockets { .. } => {
                let (tx, rx) =
                    mpsc::sync_channel::<Batch>((cfg.queue_datagrams / listen::BATCH).max(1));
                let pool = Pool::default();
                let drops: DropMap = Arc::new(Mutex::new(HashMap::new()));
                let repeaters = Arc::new(cfg.repeaters.clone());
                let mut threads = Vec::new();
                for (l, kind) in &self.listeners {
                    tracing::info!(listen = %l.addr, kind, "listening");
                    threads.push(
                        listen::spawn(
                            l,
                            tx.clone(),
                            pool.clone(),
                            repeaters.clone(),
                            self.spoof.as_ref(),
                            drops.clone(),
                            stop.clone(),
                        )
                        .map_err(io_err("starting a receive thread"))?,
                    );
                }
                drop(tx);
                let r =
                    w.run_sockets(&rx, &pool, &stop, &drops, &self.listeners, &finish_stats, &page);
                stop.store(true, Ordering::Relaxed);
                for t in threads {
                    let _ = t.join();
                }
                // Datagrams still queued were received: decode them too.
                while let Ok(batch) = rx.try_recv() {
                    for (payload, src, received_ms) in batch.iter() {
                        w.process(payload, src, received_ms);
                    }
                }
                w.drain_drops(&drops);
                w.report.queue_drops = self
                    .listeners
                    .iter()
                    .map(|(l, _)| l.stats.queue_drops.load(Ordering::Relaxed))
                    .sum();
                if let Ok(mut p) = page.lock() {
                    *p = metrics::render(
                        w.decoder.accounts(),
                        &self.listeners,
                        &finish_stats,
                        &w.unknown,
                    );
                }
                r
            }
        };
        w.slots.close_all(&w.finisher);
        drop(w.finisher);
        let _ = finisher.join();
        stop.store(true, Ordering::Relaxed);
        if let Some(h) = metrics_thread {
            let _ = h.join();
        }
        if let Some(p) = &cfg.pidfile {
            let _ = std::fs::remove_file(p);
        }
        result?;
        let mut report = w.report;
        let h = &finish_stats.headers;
        report.sflow_headers = h.stored.load(Ordering::Relaxed);
        report.sflow_headers_not_kept =
            h.skipped.load(Ordering::Relaxed) + h.lost.load(Ordering::Relaxed);
        report.files = published.lock().map(|p| p.clone()).unwrap_or_default();
        tracing::info!(
            datagrams = report.datagrams,
            flows = report.flows,
            files = report.files.len(),
            "collector stopped"
        );
        Ok(report)
    }
}

struct Worker {
    cfg: CollectConfig,
    sources: Sources,
    decoder: Decoder,
    slots: OpenSlots,
    slot_start_s: Option<i64>,
    finisher: mpsc::Sender<Finished>,
    stats: Arc<FinishStats>,
    unknown: HashMap<IpAddr, u64>,
    report: RunReport,
}

/// The open slot of source `id`, opened (for the slot starting at
/// `start`) if it is not yet: one lookup per datagram. `None` if the slot
/// file cannot be created (logged).
fn open_slot<'a>(
    slots: &'a mut OpenSlots,
    sources: &Sources,
    cfg: &CollectConfig,
    id: SourceId,
    start: i64,
) -> Option<&'a mut OpenSlot> {
    use std::collections::hash_map::Entry;
    match slots.open.entry(id) {
        Entry::Occupied(e) => Some(&mut e.into_mut().1),
        Entry::Vacant(v) => {
            let def = sources.def(v.key());
            match OpenSlot::create(&def, cfg, start) {
                Ok(slot) => Some(&mut v.insert((def, slot)).1),
                Err(e) => {
                    tracing::error!(error = %e, dir = %def.dir.display(), "cannot open slot file");
                    None
                }
            }
        }
    }
}

struct SlotSink<'a>(&'a mut OpenSlot);

impl Sink for SlotSink<'_> {
    fn flow(&mut self, f: &FlowRecord) {
        self.0.push(f);
    }

    fn batch(&mut self) -> Option<(&mut BatchBuilder, usize)> {
        self.0.batch()
    }

    fn batch_done(&mut self) {
        self.0.batch_done();
    }
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    fn run_sockets(
        &mut self,
        rx: &mpsc::Receiver<Batch>,
        pool: &Pool,
        stop: &AtomicBool,
        drops: &DropMap,
        listeners: &[(Listener, &'static str)],
        finish: &FinishStats,
        page: &Page,
    ) -> Result<(), CollectError> {
        self.rotate_to(listen::now_ms());
        let mut last_render = Instant::now() - Duration::from_secs(10);
        let mut last_cut = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            match rx.recv_timeout(TICK) {
                Ok(batch) => {
                    for (payload, src, received_ms) in batch.iter() {
                        self.rotate_if_due(received_ms, drops);
                        self.process(payload, src, received_ms);
                    }
                    pool.give(batch);
                }
                Err(RecvTimeoutError::Timeout) => self.rotate_if_due(listen::now_ms(), drops),
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_cut.elapsed() >= CUT_BLOCK_AFTER {
                last_cut = Instant::now();
                for (_, slot) in self.slots.open.values_mut() {
                    slot.cut_block();
                }
            }
            if last_render.elapsed() >= Duration::from_secs(1) {
                last_render = Instant::now();
                let text =
                    metrics::render(self.decoder.accounts(), listeners, finish, &self.unknown);
                if let Ok(mut p) = page.lock() {
                    *p = text;
                }
            }
        }
        Ok(())
    }

    /// Reads the capture in parts (weir_decode::pcap::read_frames_from),
    /// so a capture of any size needs a bounded amount of memory.
    fn run_capture(&mut self, path: &PathBuf, stop: &AtomicBool) -> Result<(), CollectError> {
        use weir_decode::pcap::{StreamError, UdpFrames, read_frames_from};
        let fail = |message: String| CollectError::Capture { path: path.clone(), message };
        let input: Box<dyn std::io::Read> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(path).map_err(|e| fail(e.to_string()))?)
        };
        let input = match self.cfg.capture_decoder {
            Some(decode) => decode(input).map_err(|e| fail(e.to_string()))?,
            None => input,
        };
        let none: DropMap = Arc::new(Mutex::new(HashMap::new()));
        let mut udp = UdpFrames::default();
        let damage = read_frames_from(input, |f| {
            if stop.load(Ordering::Relaxed) {
                return Err(());
            }
            if let Some(d) = udp.datagram(f) {
                self.rotate_if_due(d.ts_ms, &none);
                self.process(&d.payload, d.src, d.ts_ms);
            }
            Ok(())
        });
        if udp.incomplete() > 0 {
            tracing::warn!(capture = %path.display(), datagrams = udp.incomplete(), "fragmented datagrams never completed (their fragments were not used)");
        }
        match damage {
            // Not a capture at all (nothing read).
            Ok(Some(e)) if e.offset == 0 => Err(fail(e.to_string())),
            Ok(Some(e)) => {
                tracing::warn!(capture = %path.display(), error = %e, "capture damaged; reading what comes before");
                Ok(())
            }
            Ok(None) | Err(StreamError::Handler(())) => Ok(()),
            Err(StreamError::Io(e)) => Err(fail(e.to_string())),
        }
    }

    /// Starts a new slot when `now_ms` has left the current one.
    fn rotate_if_due(&mut self, now_ms: u64, drops: &DropMap) {
        let start = slot_start((now_ms / 1000) as i64, self.cfg.slot_secs);
        match self.slot_start_s {
            Some(s) if start <= s => {}
            _ => {
                self.drain_drops(drops);
                self.rotate_to(now_ms);
            }
        }
    }

    fn rotate_to(&mut self, now_ms: u64) {
        let start = slot_start((now_ms / 1000) as i64, self.cfg.slot_secs);
        self.slots.close_all(&self.finisher);
        self.slot_start_s = Some(start);
        // Fixed sources get a file for every slot, even an empty one, as
        // nfcapd does; dynamic sources only when data arrives. Not when
        // reading a capture: there, time jumps with the data.
        if matches!(self.cfg.input, Input::Sockets { .. }) {
            for id in self.sources.fixed() {
                open_slot(&mut self.slots, &self.sources, &self.cfg, id, start);
            }
        }
    }

    fn process(&mut self, payload: &[u8], src: SocketAddr, received_ms: u64) {
        self.report.datagrams += 1;
        let ip = src.ip();
        let Some(id) = self.sources.resolve(ip) else {
            // Source addresses can be spoofed: past the bound, unknown
            // exporters are counted under the unspecified address.
            let key =
                if self.unknown.len() >= MAX_UNKNOWN_EXPORTERS && !self.unknown.contains_key(&ip) {
                    IpAddr::from([0u8; 16])
                } else {
                    ip
                };
            *self.unknown.entry(key).or_default() += 1;
            self.report.unknown_exporter_datagrams += 1;
            return;
        };
        let start = self
            .slot_start_s
            .unwrap_or_else(|| slot_start((received_ms / 1000) as i64, self.cfg.slot_secs));
        let Some(slot) = open_slot(&mut self.slots, &self.sources, &self.cfg, id, start) else {
            return;
        };
        let dg = Datagram { exporter: src, received_ms, payload };
        match self.decoder.decode(&dg, &mut SlotSink(slot)) {
            Ok(info) => {
                self.report.flows += info.flows;
                let key = AccountKey {
                    exporter: info.exporter,
                    protocol: Some(info.protocol),
                    domain: info.domain,
                };
                let sysid = self.decoder.accounts_mut().entry(key).sysid;
                slot.account(&info, sysid, received_ms);
                if self.cfg.sflow_pcap && info.protocol == weir_decode::Protocol::Sflow5 {
                    slot.sampled_headers(payload, received_ms, &self.stats.headers);
                }
                for e in &info.errors {
                    tracing::debug!(error = %e, "decode error");
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "datagram not decodable");
                slot.account_failed(ip, received_ms);
            }
        }
    }

    /// Moves queue-drop counts into the footers of the open slots.
    fn drain_drops(&mut self, drops: &DropMap) {
        let taken: Vec<(IpAddr, u64)> = match drops.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(_) => return,
        };
        for (ip, n) in taken {
            if let Some(id) = self.sources.resolve(ip)
                && let Some((_, slot)) = self.slots.open.get_mut(&id)
            {
                slot.account_dropped(ip, n);
            }
        }
    }
}
