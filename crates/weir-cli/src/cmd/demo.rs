//! `weir demo`: the built-in default job. Generates a day of synthetic
//! flows (with a slammer outbreak) and inspects them.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::gen_cmd::{GenArgs, generate};
use super::inspect::{InspectArgs, run as inspect};

const MARKER: &str = ".weir-demo";

/// Arguments of `weir demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where to put the demo data (replaced on every run).
    #[arg(long, default_value = "weir-demo")]
    pub dir: PathBuf,
    /// Mean flows per second to generate.
    #[arg(long, default_value = "200/s")]
    pub rate: String,
    /// How much time to generate.
    #[arg(long, default_value = "1d")]
    pub duration: String,
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
    let g = GenArgs {
        dir: Some(args.dir.clone()),
        net: Default::default(),
        seed: 1,
        start: Some("2024-03-04T00:00".into()),
        duration: args.duration.clone(),
        rate: args.rate.clone(),
        ipv6_share: 0.1,
        slammer: Some("2024-03-04T09:00+20m".into()),
        slammer_rate: "2000/s".into(),
        slot_secs: weir_store::DEFAULT_SLOT_SECS,
        layout: 1,
        ident: "demo".into(),
        zstd: weir_store::DEFAULT_ZSTD_LEVEL,
        block_rows: weir_store::DEFAULT_BLOCK_ROWS,
    };
    writeln!(
        out,
        "weir demo: generating {} of flows at {} into {} ...",
        args.duration,
        args.rate,
        args.dir.display()
    )?;
    let t0 = std::time::Instant::now();
    let r = generate(&g)?;
    let secs = t0.elapsed().as_secs_f64();
    writeln!(
        out,
        "generated {} flows in {} files ({:.1} bytes/flow) in {:.1} s; a slammer outbreak runs 09:00-09:20 UTC\n",
        r.flows,
        r.files.len(),
        r.bytes as f64 / r.flows.max(1) as f64,
        secs
    )?;
    inspect(
        &InspectArgs { paths: vec![args.dir.clone()], verify: true, files: false, blocks: false },
        out,
    )
}
