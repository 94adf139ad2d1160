//! `weir demo`: the built-in default job, the whole path on one machine.
//! A collector listens on loopback with short slots; two exporters (NetFlow
//! v9 and sFlow, driven by the synthetic generator) send to it for a short
//! while; the collector is stopped, the files it wrote are inspected and
//! queried as nfdump would be (`-s proto`, `-s ip/bytes`, a listing).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use weir_collect::send::{Format, Pace, SendOptions, send};
use weir_collect::{CollectConfig, Collector, Input};
use weir_gen::{GenConfig, Generator};

use super::inspect::{InspectArgs, run as inspect};
use crate::units::{parse_duration_ms, parse_rate};

const MARKER: &str = ".weir-demo";

/// Arguments of `weir demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where the collector writes (replaced on every run).
    #[arg(long, default_value = "weir-demo")]
    pub dir: PathBuf,
    /// NetFlow v9 flows per second the synthetic exporter sends.
    #[arg(long, default_value = "20k/s")]
    pub rate: String,
    /// How long the exporters send.
    #[arg(long, default_value = "20s")]
    pub duration: String,
    /// Slot length of the collector in seconds (short, to show rotation).
    #[arg(long, default_value_t = 5)]
    pub slot: u32,
}

/// Runs `weir demo`.
pub fn run(args: &DemoArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    if args.dir.exists() {
        if !args.dir.join(MARKER).exists() {
            bail!(
                "{} exists and was not made by weir demo; choose another --dir",
                args.dir.display()
            );
        }
        std::fs::remove_dir_all(&args.dir)?;
    }
    std::fs::create_dir_all(&args.dir)?;
    std::fs::write(args.dir.join(MARKER), b"made by weir demo; removed by the next run\n")?;
    let rate = parse_rate(&args.rate).context("--rate")?;
    let duration_ms = parse_duration_ms(&args.duration).context("--duration")?;

    let mut cfg = CollectConfig::new(&args.dir);
    cfg.input = Input::Sockets {
        netflow: vec!["127.0.0.1:0".parse()?],
        sflow: vec!["127.0.0.1:0".parse()?],
        rcvbuf: Some(8 << 20),
    };
    cfg.slot_secs = args.slot.max(1);
    cfg.ident = "demo".into();
    let collector = Collector::build(cfg)?;
    let addrs = collector.local_addrs();
    let find = |kind: &str| -> anyhow::Result<SocketAddr> {
        addrs.iter().find(|(_, k)| *k == kind).map(|(a, _)| *a).context("listener missing")
    };
    let (netflow, sflow) = (find("netflow")?, find("sflow")?);
    writeln!(
        out,
        "weir demo: collector on {netflow} (NetFlow/IPFIX) and {sflow} (sFlow), {} s slots, writing {}",
        args.slot,
        args.dir.display()
    )?;
    writeln!(
        out,
        "           sending {} of synthetic traffic: NetFlow v9 at {rate:.0} flows/s, sFlow at {:.0} samples/s",
        args.duration,
        rate / 10.0
    )?;
    out.flush()?;

    let stop = Arc::new(AtomicBool::new(false));
    let running = {
        let stop = stop.clone();
        std::thread::spawn(move || collector.run(stop))
    };
    let now = crate::units::now_ms();
    let exporter = |seed: u64, rate: f64, target: SocketAddr, format: Format| {
        std::thread::spawn(move || {
            let cfg = GenConfig { seed, start_ms: now, duration_ms, rate, ..GenConfig::default() };
            let mut opts = SendOptions::new(target, format);
            opts.pace = Pace::rate(rate);
            send(Generator::new(cfg), &opts, &AtomicBool::new(false))
        })
    };
    let v9 = exporter(1, rate, netflow, Format::V9);
    let sf = exporter(2, rate / 10.0, sflow, Format::Sflow);
    let v9 = v9.join().map_err(|_| anyhow::anyhow!("v9 sender panicked"))??;
    let sf = sf.join().map_err(|_| anyhow::anyhow!("sFlow sender panicked"))??;
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let report = running.join().map_err(|_| anyhow::anyhow!("collector panicked"))??;
    writeln!(
        out,
        "sent {} v9 flows in {} datagrams and {} sFlow samples in {} datagrams; the collector stored {} flows in {} files (queue drops {})\n",
        v9.flows,
        v9.datagrams,
        sf.flows,
        sf.datagrams,
        report.flows,
        report.files.len(),
        report.queue_drops
    )?;
    let code = inspect(
        &InspectArgs { paths: vec![args.dir.clone()], verify: true, files: false, blocks: false },
        out,
    )?;
    // What an operator asks next, as nfdump would be asked.
    let dir = args.dir.to_string_lossy().into_owned();
    for q in [&["-s", "proto"][..], &["-s", "ip/bytes", "-n", "5"], &["-c", "5", "proto tcp"]] {
        writeln!(out, "\n$ weir query -R {dir} {}", q.join(" "))?;
        let mut argv = vec!["weir", "query", "--no-progress", "-R", dir.as_str()];
        argv.extend_from_slice(q);
        crate::run(argv, out)?;
    }
    Ok(code)
}
