//! `weir pcap`: packet captures, or live capture from an interface, into
//! flows in slot files (nfpcapd -r / -i).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use weir_capture::{CacheConfig, PcapOptions, pcap_to_slots};
use weir_store::{
    Compression, DEFAULT_BLOCK_ROWS, DEFAULT_SLOT_SECS, DEFAULT_ZSTD_LEVEL, OnExists, SubdirLayout,
    WriterOptions,
};

use crate::units::{fmt_time_ms, parse_duration_ms};

/// Arguments of `weir pcap`.
#[derive(Debug, Clone, Args)]
pub struct PcapArgs {
    /// Capture files (pcap or pcapng, gzip accepted), read in order as one
    /// stream of packets; `-` reads stdin.
    #[arg(short = 'r', long = "read", value_name = "FILE", num_args = 1.., required_unless_present = "interface")]
    pub inputs: Vec<PathBuf>,
    /// Capture live from this network interface (`any`: all of them;
    /// Linux, needs CAP_NET_RAW) until SIGINT/SIGTERM or --duration
    /// (nfpcapd -i).
    #[arg(short = 'i', long = "interface", value_name = "IFACE", conflicts_with = "inputs")]
    pub interface: Option<String>,
    /// With -i: stop after this long (e.g. 30s, 5m).
    #[arg(long, value_name = "DURATION", requires = "interface")]
    pub duration: Option<String>,
    /// Base directory for the slot files (created if missing).
    #[arg(short = 'w', long = "dir", value_name = "DIR")]
    pub dir: PathBuf,
    /// Slot length in seconds (nfpcapd -t).
    #[arg(short = 't', long = "slot", default_value_t = DEFAULT_SLOT_SECS)]
    pub slot_secs: u32,
    /// Sub-directory layout 0..8 (nfpcapd -S); 1 = %Y/%m/%d.
    #[arg(short = 'S', long = "subdirs", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub layout: u8,
    /// Ident stored in every file (nfpcapd -I).
    #[arg(short = 'I', long, default_value = "pcap")]
    pub ident: String,
    /// zstd level 1..=22, or 0 to store blocks uncompressed.
    #[arg(short = 'z', long = "zstd", default_value_t = DEFAULT_ZSTD_LEVEL, value_parser = clap::value_parser!(i32).range(0..=22))]
    pub zstd: i32,
    /// Active timeout: a flow active this long is exported and starts
    /// again (e.g. 300s, 1m; down to 100ms for snapshot flows: every
    /// flow's bytes per interval).
    #[arg(long, default_value = "300s", value_name = "DURATION")]
    pub active_timeout: String,
    /// Inactive timeout: a flow without packets this long is exported.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub inactive_timeout: String,
    /// nfpcapd's form of both timeouts: ACTIVE,INACTIVE in seconds.
    #[arg(short = 'e', value_name = "ACTIVE,INACTIVE", conflicts_with_all = ["active_timeout", "inactive_timeout"])]
    pub expire: Option<String>,
    /// Most flows held in the cache; when full, the older half is exported.
    #[arg(long, default_value_t = 4_000_000)]
    pub max_flows: usize,
}

/// Runs `weir pcap`.
pub fn run(args: &PcapArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let (active_ms, inactive_ms) = match &args.expire {
        Some(e) => {
            let (a, i) = e.split_once(',').context("-e ACTIVE,INACTIVE (seconds)")?;
            (parse_duration_ms(a).context("-e")?, parse_duration_ms(i).context("-e")?)
        }
        None => (
            parse_duration_ms(&args.active_timeout).context("--active-timeout")?,
            parse_duration_ms(&args.inactive_timeout).context("--inactive-timeout")?,
        ),
    };
    if active_ms < 100 || inactive_ms < 100 {
        bail!(
            "timeouts must be at least 100ms (got active {active_ms} ms, inactive {inactive_ms} ms)"
        );
    }
    if args.slot_secs == 0 {
        bail!("-t must be at least 1 second");
    }
    let opts = PcapOptions {
        inputs: args.inputs.clone(),
        dir: args.dir.clone(),
        layout: SubdirLayout::from_index(args.layout).context("-S must be 0..8")?,
        slot_secs: args.slot_secs,
        ident: args.ident.clone(),
        writer: WriterOptions {
            compression: Compression::from_level(args.zstd),
            block_rows: DEFAULT_BLOCK_ROWS,
            on_exists: OnExists::Fail,
        },
        cache: CacheConfig { active_ms, inactive_ms, max_flows: args.max_flows.max(1) },
    };
    let t0 = Instant::now();
    let (r, source) = match &args.interface {
        Some(iface) => {
            (live(&opts, iface, args.duration.as_deref(), out)?, format!("interface {iface}"))
        }
        None => (
            pcap_to_slots(&opts).map_err(anyhow::Error::new)?,
            format!("{} capture(s)", args.inputs.len()),
        ),
    };
    let secs = t0.elapsed().as_secs_f64();
    let c = &r.cache;
    writeln!(
        out,
        "read {} frames from {source} in {secs:.2} s ({:.0} packets/s): {} packets, {} bytes into {} flows in {} files under {}",
        r.frames,
        r.frames as f64 / secs.max(1e-9),
        c.counted,
        c.bytes,
        r.flows,
        r.files.len(),
        args.dir.display()
    )?;
    if r.frames > 0 {
        writeln!(
            out,
            "packet time {} .. {}",
            fmt_time_ms(r.first_ms as i64),
            fmt_time_ms(r.last_ms as i64)
        )?;
    }
    writeln!(
        out,
        "flows ended: {} by FIN/RST, {} active timeout, {} inactive timeout, {} cache full, {} end of input; peak {} flows in the cache; {} late flows into the oldest open slot",
        c.ended_by_tcp,
        c.ended_active,
        c.ended_inactive,
        c.forced_exports,
        c.flows - c.ended_by_tcp - c.ended_active - c.ended_inactive - c.forced_exports,
        c.peak_flows,
        r.late_flows
    )?;
    writeln!(
        out,
        "not counted: {} not IP, {} truncated, {} malformed, {} unknown link type; fragments {} ({} without their first fragment)",
        c.non_ip, c.truncated, c.malformed, c.unknown_linktype, c.fragments, c.orphan_fragments
    )?;
    for (path, e) in &r.capture_errors {
        writeln!(out, "error: {}: {e} (frames before it were used)", path.display())?;
    }
    Ok(if r.capture_errors.is_empty() { crate::EXIT_OK } else { crate::EXIT_FOUND_PROBLEMS })
}

/// Captures from `iface` until a signal or `duration`.
#[cfg(target_os = "linux")]
fn live(
    opts: &PcapOptions,
    iface: &str,
    duration: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<weir_capture::PcapReport> {
    let stop = crate::stop_on_signals()?;
    if let Some(d) = duration {
        let ms = parse_duration_ms(d).context("--duration")?;
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
    let capture = weir_capture::LiveCapture::open(iface).map_err(anyhow::Error::new)?;
    writeln!(out, "capturing on {iface}")?;
    out.flush()?;
    let (r, s) = capture.run(opts, &stop).map_err(anyhow::Error::new)?;
    writeln!(
        out,
        "lost: {} frames dropped by the kernel (socket buffer {} bytes); skipped: {} frames of other interfaces, {} loopback frames seen twice, {} of devices that are neither Ethernet nor raw IP",
        s.kernel_drops, s.rcvbuf, s.other_interfaces, s.loopback_duplicates, s.unknown_devices
    )?;
    Ok(r)
}

#[cfg(not(target_os = "linux"))]
fn live(
    _opts: &PcapOptions,
    _iface: &str,
    _duration: Option<&str>,
    _out: &mut dyn Write,
) -> anyhow::Result<weir_capture::PcapReport> {
    bail!("live capture (-i) is implemented for Linux only")
}
