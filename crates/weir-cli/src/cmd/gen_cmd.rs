//! `weir gen`: synthetic flows into slot files.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use weir_gen::{Burst, GenConfig, Generator};
use weir_record::{ExporterStats, FlowRecord};
use weir_store::{
    Compression, Creator, DEFAULT_BLOCK_ROWS, DEFAULT_SLOT_SECS, DEFAULT_ZSTD_LEVEL, OnExists,
    SlotMeta, SlotWriter, SubdirLayout, WriterOptions, slot_path, slot_start,
};

use crate::units::{parse_duration_ms, parse_rate, parse_time_ms};

/// Arguments of `weir gen`.
#[derive(Debug, Clone, Args)]
pub struct GenArgs {
    /// Base directory for the slot files (created if missing).
    #[arg(short = 'w', long = "dir", value_name = "DIR")]
    pub dir: PathBuf,
    /// Seed of the generator: the same seed gives the same flows.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First receive time (UTC), e.g. 2024-03-04T06:00.
    #[arg(long, default_value = "2024-03-04T00:00")]
    pub start: String,
    /// How much time to fill, e.g. 90s, 30m, 6h, 1d.
    #[arg(long, default_value = "1h")]
    pub duration: String,
    /// Mean background flows per second, e.g. 500/s, 30k/s.
    #[arg(long, default_value = "500/s")]
    pub rate: String,
    /// Fraction of background flows that are IPv6.
    #[arg(long, default_value_t = 0.1)]
    pub ipv6_share: f64,
    /// Add a slammer-like UDP/1434 burst: START[+DURATION], e.g. 2024-03-04T09:00+20m.
    #[arg(long, value_name = "START[+DURATION]")]
    pub slammer: Option<String>,
    /// Flows per second during the slammer burst.
    #[arg(long, default_value = "2000/s")]
    pub slammer_rate: String,
    /// Slot length in seconds (nfcapd -t).
    #[arg(short = 't', long = "slot", default_value_t = DEFAULT_SLOT_SECS)]
    pub slot_secs: u32,
    /// Sub-directory layout 0..8 (nfcapd -S); 1 = %Y/%m/%d.
    #[arg(short = 'S', long = "subdirs", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub layout: u8,
    /// Ident stored in every file (nfcapd -I).
    #[arg(short = 'I', long, default_value = "gen")]
    pub ident: String,
    /// zstd level 1..=22, or 0 to store blocks uncompressed.
    #[arg(short = 'z', long = "zstd", default_value_t = DEFAULT_ZSTD_LEVEL, value_parser = clap::value_parser!(i32).range(0..=22))]
    pub zstd: i32,
    /// Rows per block.
    #[arg(long, default_value_t = DEFAULT_BLOCK_ROWS)]
    pub block_rows: usize,
}

/// What a generation run produced.
#[derive(Debug, Clone, Default)]
pub struct GenReport {
    /// Files written, in time order.
    pub files: Vec<PathBuf>,
    /// Flows written.
    pub flows: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

impl GenArgs {
    /// The generator configuration these arguments describe.
    pub fn config(&self) -> anyhow::Result<GenConfig> {
        let start_ms = parse_time_ms(&self.start).context("--start")?;
        if start_ms < 0 {
            bail!("--start must not be before 1970");
        }
        let duration_ms = parse_duration_ms(&self.duration).context("--duration")?;
        let rate = parse_rate(&self.rate).context("--rate")?;
        if !(0.0..=1.0).contains(&self.ipv6_share) {
            bail!("--ipv6-share must be between 0 and 1, got {}", self.ipv6_share);
        }
        let slammer = match &self.slammer {
            None => None,
            Some(s) => {
                let (at, dur) = s.split_once('+').unwrap_or((s, "10m"));
                Some(Burst {
                    start_ms: parse_time_ms(at).context("--slammer")?.max(0) as u64,
                    duration_ms: parse_duration_ms(dur).context("--slammer")?,
                    rate: parse_rate(&self.slammer_rate).context("--slammer-rate")?,
                })
            }
        };
        Ok(GenConfig {
            seed: self.seed,
            start_ms: start_ms as u64,
            duration_ms,
            rate,
            ipv6_share: self.ipv6_share,
            slammer,
        })
    }
}

/// Runs `weir gen`.
pub fn run(args: &GenArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let t0 = Instant::now();
    let report = generate(args)?;
    let secs = t0.elapsed().as_secs_f64();
    writeln!(
        out,
        "wrote {} flows into {} files under {} ({} bytes, {:.1} bytes/flow) in {:.2} s ({:.0} flows/s)",
        report.flows,
        report.files.len(),
        args.dir.display(),
        report.bytes,
        report.bytes as f64 / report.flows.max(1) as f64,
        secs,
        report.flows as f64 / secs.max(1e-9)
    )?;
    Ok(crate::EXIT_OK)
}

/// Generates the flows `args` describe into slot files.
pub fn generate(args: &GenArgs) -> anyhow::Result<GenReport> {
    let cfg = args.config()?;
    if args.slot_secs == 0 {
        bail!("--slot must be at least 1 second");
    }
    let layout = SubdirLayout::from_index(args.layout).context("-S must be 0..8")?;
    let opts = WriterOptions {
        compression: if args.zstd == 0 { Compression::None } else { Compression::Zstd(args.zstd) },
        block_rows: args.block_rows.max(1),
        on_exists: OnExists::Fail,
    };
    let mut sink = SlotSink {
        dir: &args.dir,
        layout,
        slot_secs: args.slot_secs,
        ident: &args.ident,
        opts,
        current: None,
        report: GenReport::default(),
    };
    let mut generator = Generator::new(cfg);
    let exporters: Vec<ExporterStats> = generator
        .exporters()
        .iter()
        .map(|e| ExporterStats {
            addr: e.addr,
            sysid: e.sysid,
            version: e.version,
            domain: e.domain,
            sampling_rate: e.sampling_rate,
            ..Default::default()
        })
        .collect();
    for r in generator.by_ref() {
        sink.push(&r, &exporters)?;
    }
    sink.close()?;
    Ok(sink.report)
}

struct OpenSlot {
    start_s: i64,
    writer: SlotWriter,
    exporters: BTreeMap<u16, ExporterStats>,
}

/// Routes a time-ordered stream of flows into consecutive slot files.
struct SlotSink<'a> {
    dir: &'a Path,
    layout: SubdirLayout,
    slot_secs: u32,
    ident: &'a str,
    opts: WriterOptions,
    current: Option<OpenSlot>,
    report: GenReport,
}

impl SlotSink<'_> {
    fn push(&mut self, r: &FlowRecord, table: &[ExporterStats]) -> anyhow::Result<()> {
        let start = slot_start((r.received / 1000) as i64, self.slot_secs);
        if self.current.as_ref().is_none_or(|c| c.start_s != start) {
            self.close()?;
            let path = slot_path(self.dir, self.layout, start, self.slot_secs);
            let meta = SlotMeta {
                slot_start_s: start,
                slot_len_s: self.slot_secs,
                ident: self.ident.to_string(),
                creator: Creator::Gen,
            };
            let writer = SlotWriter::create(&path, meta, self.opts)?;
            let exporters = table.iter().map(|e| (e.sysid, *e)).collect();
            self.current = Some(OpenSlot { start_s: start, writer, exporters });
        }
        let cur = self.current.as_mut().expect("opened above");
        if let Some(e) = r.exporter_id.and_then(|id| cur.exporters.get_mut(&id)) {
            e.flows += 1;
            e.packets += r.packets;
            e.bytes += r.bytes;
            if e.first_ms == 0 {
                e.first_ms = r.received;
            }
            e.last_ms = r.received;
        }
        cur.writer.push(r)?;
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        if let Some(mut cur) = self.current.take() {
            let rows = cur.writer.rows();
            cur.writer.set_exporters(cur.exporters.into_values().filter(|e| e.flows > 0).collect());
            let path = cur.writer.finish()?;
            self.report.bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            self.report.flows += rows;
            self.report.files.push(path);
        }
        Ok(())
    }
}
