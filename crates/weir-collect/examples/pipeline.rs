//! A fixed workload for the collector's decode-thread path, for
//! instruction counting (`valgrind --tool=callgrind`) and profiling.
//!
//! ```sh
//! # 1. a capture of generated flows as `weir gen --send` would send them
//! cargo run --release -p weir-collect --example pipeline -- gen v9 327680 /tmp/v9.pcap
//! # 2. the collector's decode thread over it: decode -> route -> column
//! #    builders -> slot writer (zstd 1) -> finisher
//! valgrind --tool=callgrind target/release/examples/pipeline run /tmp/v9.pcap
//! ```
//!
//! `run` drives the public `Collector` with a capture input (`weir collect
//! -f`), the same code as the socket path minus the receive threads. It
//! prints flows, datagrams and bytes per flow; `PIPELINE_REPEAT=N` repeats
//! the run N times (for perf), `PIPELINE_KEEP=DIR` keeps the files in DIR,
//! `PIPELINE_ZSTD=L` sets the zstd level (default: the collector's; 0 =
//! no compression, as `weir collect -z 0`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use weir_collect::send::{Format, SendOptions, encode};
use weir_collect::{CollectConfig, Collector, Input};
use weir_encode::pcap::{LINKTYPE_RAW, PcapWriter, ipv4_udp_packet};
use weir_gen::{GenConfig, Generator};
use weir_record::FlowRecord;

fn usage() -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "usage: pipeline gen v9|ipfix|sflow|v5 FLOWS OUT.pcap | pipeline run IN.pcap"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["gen", format, n, out] => {
            let format: Format = format.parse().unwrap_or_else(|_| usage());
            let n: usize = n.parse().unwrap_or_else(|_| usage());
            gen_capture(format, n, &PathBuf::from(out));
        }
        ["run", input] => {
            let repeat: usize =
                std::env::var("PIPELINE_REPEAT").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
            for _ in 0..repeat {
                run(&PathBuf::from(input));
            }
        }
        _ => usage(),
    }
}

/// Generated flows (seed 1) at 1 M flows/s from a minute boundary, so that
/// they all fall into one 60 s slot.
fn gen_capture(format: Format, n: usize, out: &Path) {
    let cfg = GenConfig {
        seed: 1,
        rate: 1_000_000.0,
        duration_ms: (n as u64 / 1000 + 1000).max(1000),
        ..GenConfig::default()
    };
    let flows: Vec<FlowRecord> = Generator::new(cfg).take(n).collect();
    let mut opts = SendOptions::new("127.0.0.1:9995".parse().expect("literal"), format);
    opts.agent = Some("127.0.0.1".parse().expect("literal"));
    let dgs = encode(&flows, &opts);
    // Capture times: spread over the flows' receive times.
    let t0 = flows.first().map_or(0, |f| f.received);
    let t1 = flows.last().map_or(0, |f| f.received).max(t0 + 1);
    let file = std::io::BufWriter::new(std::fs::File::create(out).expect("create capture"));
    let mut pcap = PcapWriter::new(file, LINKTYPE_RAW).expect("write capture");
    let (src, dst) =
        ("192.0.2.1:2055".parse().expect("literal"), "127.0.0.1:9995".parse().expect("literal"));
    let mut frame = Vec::new();
    for (i, d) in dgs.iter().enumerate() {
        let ts_ms = t0 + (t1 - t0) * i as u64 / dgs.len().max(1) as u64;
        ipv4_udp_packet(src, dst, d, &mut frame);
        pcap.packet(ts_ms * 1_000_000, frame.len() as u32, &frame).expect("write capture");
    }
    pcap.flush().expect("write capture");
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{} flows in {} datagrams -> {}", flows.len(), dgs.len(), out.display());
}

fn run(input: &Path) {
    // PIPELINE_KEEP=DIR keeps the files written (in DIR) for inspection.
    let keep = std::env::var_os("PIPELINE_KEEP").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("weir-pipeline-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = CollectConfig::new(&dir);
    cfg.input = Input::Capture(input.to_path_buf());
    cfg.slot_secs = 60;
    if let Some(level) = std::env::var("PIPELINE_ZSTD").ok().and_then(|s| s.parse().ok()) {
        cfg.compression = weir_store::Compression::from_level(level);
    }
    let collector = Collector::build(cfg).expect("collector");
    let report = collector.run(Arc::new(AtomicBool::new(false))).expect("run");
    let bytes: u64 =
        report.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut o = std::io::stdout().lock();
    let _ = writeln!(
        o,
        "{} flows, {} datagrams, {} files, {:.2} bytes/flow",
        report.flows,
        report.datagrams,
        report.files.len(),
        bytes as f64 / report.flows.max(1) as f64
    );
}
