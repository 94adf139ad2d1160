//! `weir collect`: the nfcapd/sfcapd daemon.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use anyhow::{Context, bail};
use clap::Args;
use weir_collect::{CollectConfig, Collector, FixedSource, Input};
use weir_decode::SamplingPolicy;
use weir_store::{Compression, DEFAULT_SLOT_SECS, DEFAULT_ZSTD_LEVEL, SubdirLayout};

use crate::units::parse_duration_ms;

/// Arguments of `weir collect` (nfcapd's letters where nfcapd has one).
#[derive(Debug, Clone, Args)]
pub struct CollectArgs {
    /// Base directory for the slot files (created if missing).
    #[arg(short = 'w', long = "dir", value_name = "DIR")]
    pub dir: PathBuf,
    /// NetFlow/IPFIX listen address (repeatable). Default 0.0.0.0:9995 when
    /// neither --netflow nor --sflow is given.
    #[arg(long, value_name = "ADDR:PORT")]
    pub netflow: Vec<SocketAddr>,
    /// sFlow listen address (repeatable). Default 0.0.0.0:6343 when neither
    /// --netflow nor --sflow is given.
    #[arg(long, value_name = "ADDR:PORT")]
    pub sflow: Vec<SocketAddr>,
    /// NetFlow/IPFIX port on 0.0.0.0 (nfcapd -p).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// Join this multicast group and take NetFlow/IPFIX sent to it, on
    /// the -p port (default 9995) (nfcapd -J). A multicast address given
    /// to --netflow or --sflow is joined too.
    #[arg(short = 'J', long = "join", value_name = "GROUP")]
    pub join: Option<std::net::IpAddr>,
    /// The local IPv4 address of the interface multicast groups are joined
    /// on (default: the interface the kernel routes the group to).
    #[arg(long, value_name = "ADDR")]
    pub multicast_if: Option<std::net::Ipv4Addr>,
    /// Socket receive buffer in bytes (nfcapd -B).
    #[arg(short = 'B', long = "rcvbuf")]
    pub rcvbuf: Option<usize>,
    /// Read export datagrams from a capture (pcap or pcapng, gzip-compressed
    /// or not; `-` = stdin) instead of sockets (nfcapd -f); flows go to
    /// slots by capture time.
    #[arg(short = 'f', long = "capture", value_name = "FILE.pcap")]
    pub capture: Option<PathBuf>,
    /// Slot length in seconds (nfcapd -t).
    #[arg(short = 't', long = "slot", default_value_t = DEFAULT_SLOT_SECS)]
    pub slot_secs: u32,
    /// Sub-directory layout 0..8 (nfcapd -S); 1 = %Y/%m/%d.
    #[arg(short = 'S', long = "subdirs", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub layout: u8,
    /// Ident stored in every file (nfcapd -I).
    #[arg(short = 'I', long, default_value = "none")]
    pub ident: String,
    /// zstd level 1..=22, or 0 to store blocks uncompressed.
    #[arg(short = 'z', long = "zstd", default_value_t = DEFAULT_ZSTD_LEVEL, value_parser = clap::value_parser!(i32).range(0..=22))]
    pub zstd: i32,
    /// Fixed source `ident,IP-or-CIDR[;…],dir` (nfcapd -n, repeatable).
    /// With fixed sources, datagrams from other exporters are dropped and counted.
    #[arg(short = 'n', long = "source", value_name = "IDENT,IPS,DIR")]
    pub sources: Vec<String>,
    /// One sub-directory per exporter address (nfcapd -M).
    #[arg(short = 'M', long = "dynamic")]
    pub dynamic: bool,
    /// Forward every datagram unchanged to host[/port] (nfcapd -R, up to 8;
    /// port 9995 if omitted).
    #[arg(short = 'R', long = "repeat", value_name = "HOST[/PORT]")]
    pub repeat: Vec<String>,
    /// Repeat with each exporter's own source address and port, so that
    /// the next collector sees the original exporter (nfcapd -A; IPv4;
    /// needs CAP_NET_RAW).
    #[arg(short = 'A', long = "spoof", requires = "repeat")]
    pub spoof: bool,
    /// Run after each rotation, without a shell: %f file, %d dir, %t slot
    /// time, %u slot epoch, %i ident (nfcapd -x).
    #[arg(short = 'x', long = "exec", value_name = "CMD")]
    pub exec: Option<String>,
    /// Write the process id here (nfcapd -P).
    #[arg(short = 'P', long = "pidfile")]
    pub pidfile: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
    /// Store sampled counters as exported instead of multiplying by the rate.
    #[arg(long, conflicts_with = "force_sampling")]
    pub raw_counters: bool,
    /// Ignore the rates exporters announce and use this one (nfcapd -s -N).
    #[arg(long, value_name = "N")]
    pub force_sampling: Option<u32>,
    /// Keep the raw packet headers sFlow samples carry as a pcap beside each
    /// slot file (FILE.pcap, Ethernet frames at arrival time), for tcpdump,
    /// tshark and Wireshark.
    #[arg(long)]
    pub sflow_pcap: bool,
    /// Datagrams the receive queue holds before it drops (and counts).
    #[arg(long, default_value_t = weir_collect::DEFAULT_QUEUE_DATAGRAMS)]
    pub queue: usize,
    /// Stop after this long (e.g. 30s, 1h); default: until SIGTERM/SIGINT.
    #[arg(long)]
    pub duration: Option<String>,
    /// Log level (error, warn, info, debug, trace); RUST_LOG overrides.
    #[arg(long, default_value = "info")]
    pub log: String,
}

/// The address of `-R host[/port]`; with `-A` (`prefer_v4`) an IPv4 one
/// when the host has one, since only IPv4 datagrams can be spoofed.
fn repeater(s: &str, prefer_v4: bool) -> anyhow::Result<SocketAddr> {
    let (host, port) = match s.rsplit_once('/') {
        Some((h, p)) => (h, p.parse::<u16>().with_context(|| format!("-R {s}: bad port"))?),
        None => (s, 9995),
    };
    let addrs: Vec<SocketAddr> =
        (host, port).to_socket_addrs().with_context(|| format!("-R {s}"))?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4() || !prefer_v4)
        .or(addrs.first())
        .copied()
        .with_context(|| format!("-R {s}: no address"))
}

impl CollectArgs {
    /// The collector configuration these arguments describe.
    pub fn config(&self) -> anyhow::Result<CollectConfig> {
        let mut cfg = CollectConfig::new(&self.dir);
        cfg.capture_decoder = Some(weir_capture::gunzip_if_gzip);
        cfg.input = match &self.capture {
            Some(p) => Input::Capture(p.clone()),
            None => {
                let mut netflow = self.netflow.clone();
                match (self.join, self.port) {
                    (Some(g), p) => {
                        if !g.is_multicast() {
                            bail!("-J {g}: not a multicast address");
                        }
                        netflow.push(SocketAddr::new(g, p.unwrap_or(9995)));
                    }
                    (None, Some(p)) => netflow.push(SocketAddr::from(([0, 0, 0, 0], p))),
                    (None, None) => {}
                }
                let mut sflow = self.sflow.clone();
                if netflow.is_empty() && sflow.is_empty() {
                    netflow.push("0.0.0.0:9995".parse()?);
                    sflow.push("0.0.0.0:6343".parse()?);
                }
                Input::Sockets { netflow, sflow, rcvbuf: self.rcvbuf }
            }
        };
        cfg.multicast_if = self.multicast_if;
        cfg.slot_secs = self.slot_secs;
        if self.slot_secs == 0 {
            bail!("-t must be at least 1 second");
        }
        cfg.layout = SubdirLayout::from_index(self.layout).context("-S must be 0..8")?;
        cfg.ident = self.ident.clone();
        cfg.compression = Compression::from_level(self.zstd);
        cfg.sources = self
            .sources
            .iter()
            .map(|s| FixedSource::parse(s).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()?;
        if !cfg.sources.is_empty() && self.dynamic {
            bail!("-n and -M cannot be combined");
        }
        cfg.dynamic = self.dynamic;
        if self.repeat.len() > 8 {
            bail!("at most 8 repeaters (-R)");
        }
        cfg.repeaters =
            self.repeat.iter().map(|r| repeater(r, self.spoof)).collect::<anyhow::Result<_>>()?;
        cfg.repeat_spoof = self.spoof;
        cfg.after_rotate = self.exec.clone();
        cfg.pidfile = self.pidfile.clone();
        cfg.metrics = self.metrics;
        cfg.sampling = match (self.raw_counters, self.force_sampling) {
            (true, _) => SamplingPolicy::Raw,
            (_, Some(n)) if n >= 1 => SamplingPolicy::Force(n),
            (_, Some(_)) => bail!("--force-sampling must be at least 1"),
            _ => SamplingPolicy::Scale,
        };
        cfg.queue_datagrams = self.queue.max(1);
        cfg.sflow_pcap = self.sflow_pcap;
        Ok(cfg)
    }
}

/// Runs `weir collect` until SIGTERM/SIGINT (or --duration, or the end of
/// the capture).
pub fn run(args: &CollectArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
    // Signals first: whoever reads "listening on" may signal at once.
    let stop = crate::stop_on_signals()?;
    let cfg = args.config()?;
    let collector = Collector::build(cfg)?;
    for (a, kind) in collector.local_addrs() {
        writeln!(out, "listening on {a} ({kind})")?;
    }
    if let Some(m) = collector.metrics_addr() {
        writeln!(out, "metrics on http://{m}/metrics")?;
    }
    out.flush()?;
    if let Some(d) = &args.duration {
        let ms = parse_duration_ms(d).context("--duration")?;
        let s = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            s.store(true, Ordering::Relaxed);
        });
    }
    let r = collector.run(stop)?;
    for rec in &r.recovered {
        writeln!(
            out,
            "recovered {} flows in {} blocks from {} into {}{}",
            rec.rows_kept,
            rec.blocks_kept,
            rec.source.display(),
            rec.published
                .as_ref()
                .map_or("nothing (no complete block)".to_string(), |p| p.display().to_string()),
            rec.stop_reason
                .as_ref()
                .map(|r| format!("; dropped {} bytes: {r}", rec.bytes_dropped))
                .unwrap_or_default()
        )?;
    }
    for (p, n) in &r.recovered_captures {
        writeln!(out, "recovered {n} sampled headers into {}", p.display())?;
    }
    writeln!(
        out,
        "collected {} datagrams, {} flows into {} files; queue drops {}; datagrams from unknown exporters {}",
        r.datagrams,
        r.flows,
        r.files.len(),
        r.queue_drops,
        r.unknown_exporter_datagrams
    )?;
    if args.sflow_pcap {
        writeln!(
            out,
            "kept {} sFlow sampled headers in pcaps beside the slot files; not kept {}",
            r.sflow_headers, r.sflow_headers_not_kept
        )?;
    }
    Ok(crate::EXIT_OK)
}
