//! `weir gen`: synthetic flows into slot files (`-w DIR`), or onto the
//! network as NetFlow/IPFIX/sFlow datagrams (`--send HOST:PORT`).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{ArgGroup, Args};
use weir_collect::send::{Format, Pace, SendOptions, SendReport, send};
use weir_gen::{Burst, GenConfig, Generator};
use weir_record::{ExporterStats, FlowRecord};
use weir_store::{
    Compression, Creator, DEFAULT_BLOCK_ROWS, DEFAULT_SLOT_SECS, DEFAULT_ZSTD_LEVEL, OnExists,
    SlotMeta, SlotWriter, SubdirLayout, WriterOptions, slot_path, slot_start,
};

use crate::units::{parse_duration_ms, parse_rate, parse_time_ms};

/// The default `--start` when writing files.
const DEFAULT_START: &str = "2024-03-04T00:00";

/// Arguments of `weir gen`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("output").required(true).multiple(false).args(["dir", "send"])))]
pub struct GenArgs {
    /// Base directory for the slot files (created if missing). Either this
    /// or --send.
    #[arg(short = 'w', long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Where and how to send the flows instead (--send HOST:PORT).
    #[command(flatten)]
    pub net: SendArgs,
    /// Seed of the generator: the same seed gives the same flows.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First receive time (UTC), e.g. 2024-03-04T06:00. Default:
    /// 2024-03-04T00:00 with -w, now with --send.
    #[arg(long)]
    pub start: Option<String>,
    /// How much time to fill, e.g. 90s, 30m, 6h, 1d (with --send: how
    /// long to send).
    #[arg(long, default_value = "1h")]
    pub duration: String,
    /// Mean background flows per second, e.g. 500/s, 30k/s.
    #[arg(long, default_value = "500/s")]
    pub rate: String,
    /// Fraction of background flows that are IPv6.
    #[arg(long, default_value_t = 0.1)]
    pub ipv6_share: f64,
    /// Add a slammer-like UDP/1434 burst: START[+DURATION], e.g.
    /// 2024-03-04T09:00+20m, or +OFFSET[+DURATION] after --start, e.g. +5s+10s.
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

/// `weir gen --send`: the datagram side.
#[derive(Debug, Clone, Default, Args)]
pub struct SendArgs {
    /// Send the flows as datagrams to HOST:PORT (a collector) instead of
    /// writing files, paced at --rate for --duration of wall-clock time.
    #[arg(long, value_name = "HOST:PORT")]
    pub send: Option<String>,
    /// Export protocol with --send: v5 (IPv4 only), v9 (default), ipfix,
    /// sflow.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// With --send: send as fast as possible instead of at --rate (the
    /// number of flows is still --rate x --duration).
    #[arg(long, conflicts_with = "speed")]
    pub flood: bool,
    /// With --send: pace by the flows' own times, this many times faster
    /// than real time (e.g. --start 2024-03-04T00:00 --duration 6h --speed
    /// 1000 sends six hours of history in about 22 s).
    #[arg(long, value_name = "FACTOR")]
    pub speed: Option<f64>,
    /// With --send: v9 source id, IPFIX observation domain, sFlow
    /// sub-agent id (default 0).
    #[arg(long)]
    pub domain: Option<u32>,
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
        let start_ms = match (&self.start, &self.net.send) {
            (Some(s), _) => parse_time_ms(s).context("--start")?,
            (None, None) => parse_time_ms(DEFAULT_START).expect("valid default"),
            (None, Some(_)) => {
                SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
            }
        };
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
                // +OFFSET[+DURATION] is relative to --start.
                let (relative, rest) = match s.strip_prefix('+') {
                    Some(r) => (true, r),
                    None => (false, s.as_str()),
                };
                let (at, dur) = rest.split_once('+').unwrap_or((rest, "10m"));
                let at_ms = if relative {
                    start_ms.saturating_add(parse_duration_ms(at).context("--slammer")? as i64)
                } else {
                    parse_time_ms(at).context("--slammer")?
                };
                Some(Burst {
                    start_ms: at_ms.max(0) as u64,
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
    let net = &args.net;
    if net.send.is_none()
        && (net.format.is_some() || net.flood || net.speed.is_some() || net.domain.is_some())
    {
        bail!("--format, --flood, --speed and --domain only apply with --send HOST:PORT");
    }
    if let Some(target) = &args.net.send {
        let report = send_flows(args)?;
        let secs = report.elapsed.as_secs_f64();
        write!(
            out,
            "sent {} flows in {} datagrams ({} bytes) to {target} as {} in {secs:.2} s ({:.0} flows/s)",
            report.flows,
            report.datagrams,
            report.bytes,
            args.net.format.unwrap_or_default(),
            report.achieved_rate
        )?;
        if report.skipped > 0 {
            write!(out, "; skipped {} IPv6 flows (v5 carries IPv4 only)", report.skipped)?;
        }
        if report.send_errors > 0 {
            write!(out, "; {} datagrams refused (nothing listening?)", report.send_errors)?;
        }
        writeln!(out)?;
        return Ok(crate::EXIT_OK);
    }
    let t0 = Instant::now();
    let report = generate(args)?;
    let secs = t0.elapsed().as_secs_f64();
    writeln!(
        out,
        "wrote {} flows into {} files under {} ({} bytes, {:.1} bytes/flow) in {:.2} s ({:.0} flows/s)",
        report.flows,
        report.files.len(),
        args.dir.as_deref().unwrap_or(Path::new("")).display(),
        report.bytes,
        report.bytes as f64 / report.flows.max(1) as f64,
        secs,
        report.flows as f64 / secs.max(1e-9)
    )?;
    Ok(crate::EXIT_OK)
}

/// Sends the flows `args` describe to `--send`: paced at `--rate` (the
/// flows' own receive times when there is a slammer burst, so that the
/// burst is one; as fast as possible with `--flood`).
pub fn send_flows(args: &GenArgs) -> anyhow::Result<SendReport> {
    let target = args.net.send.as_deref().context("--send HOST:PORT is needed")?;
    let cfg = args.config()?;
    let addr: SocketAddr = target
        .to_socket_addrs()
        .with_context(|| format!("--send {target}: expected HOST:PORT"))?
        .next()
        .with_context(|| format!("--send {target}: no address"))?;
    let mut opts = SendOptions::new(addr, args.net.format.unwrap_or_default());
    opts.domain = args.net.domain.unwrap_or(0);
    opts.pace = if args.net.flood {
        Pace::Unlimited
    } else if let Some(speed) = args.net.speed {
        if !(speed.is_finite() && speed > 0.0) {
            bail!("--speed must be a positive factor, got {speed}");
        }
        Pace::Received { speed }
    } else if cfg.slammer.is_some() {
        Pace::Received { speed: 1.0 }
    } else {
        Pace::rate(cfg.rate)
    };
    let flows = Generator::new(cfg);
    send(flows, &opts, &AtomicBool::new(false)).with_context(|| format!("sending to {addr}"))
}

/// Generates the flows `args` describe into slot files.
pub fn generate(args: &GenArgs) -> anyhow::Result<GenReport> {
    let dir = args.dir.as_deref().context("-w DIR is needed to write slot files")?;
    let cfg = args.config()?;
    if args.slot_secs == 0 {
        bail!("--slot must be at least 1 second");
    }
    let layout = SubdirLayout::from_index(args.layout).context("-S must be 0..8")?;
    let opts = WriterOptions {
        compression: Compression::from_level(args.zstd),
        block_rows: args.block_rows.max(1),
        on_exists: OnExists::Fail,
    };
    let mut sink = SlotSink {
        dir,
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

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::time::Duration;

    use crate::{EXIT_OK, EXIT_USAGE, run};

    fn weir(args: &[&str]) -> (u8, String) {
        let mut out = Vec::new();
        let code = run(std::iter::once("weir").chain(args.iter().copied()), &mut out).unwrap();
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn exactly_one_of_dir_and_send() {
        assert_eq!(weir(&["gen"]).0, EXIT_USAGE);
        assert_eq!(
            weir(&["gen", "-w", "/nonexistent-weir", "--send", "127.0.0.1:9"]).0,
            EXIT_USAGE
        );
        assert_eq!(weir(&["gen", "--send", "127.0.0.1:9", "--format", "v8"]).0, EXIT_USAGE);
        // --format without --send: refused before anything is written.
        let mut out = Vec::new();
        let err = run(["weir", "gen", "-w", "/nonexistent-weir", "--format", "v5"], &mut out);
        assert!(format!("{:#}", err.unwrap_err()).contains("only apply with --send"));
        assert!(!std::path::Path::new("/nonexistent-weir").exists());
    }

    #[test]
    fn send_mode_sends_paced_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let target = rx.local_addr().unwrap().to_string();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut n = 0;
            while rx.recv(&mut buf).is_ok() {
                n += 1;
            }
            n
        });
        let t0 = std::time::Instant::now();
        let (code, out) = weir(&[
            "gen",
            "--send",
            &target,
            "--format",
            "ipfix",
            "--rate",
            "2k/s",
            "--duration",
            "500ms",
            "--slammer",
            "+100ms+100ms",
            "--slammer-rate",
            "5k/s",
        ]);
        let secs = t0.elapsed().as_secs_f64();
        let received = reader.join().unwrap();
        assert_eq!(code, EXIT_OK, "{out}");
        assert!(
            out.starts_with("sent ") && out.contains(&format!("to {target} as ipfix")),
            "{out}"
        );
        let flows: u64 = out.split_whitespace().nth(1).unwrap().parse().unwrap();
        let datagrams: u64 = out.split_whitespace().nth(4).unwrap().parse().unwrap();
        // 1000 background + 500 burst flows, on average.
        assert!((1_200..1_800).contains(&flows), "{out}");
        assert_eq!(received, datagrams, "{out}");
        assert!((0.4..1.0).contains(&secs), "{secs}");
    }
}
