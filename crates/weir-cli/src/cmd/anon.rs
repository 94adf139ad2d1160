//! `weir anon`: anonymized copies of slot files (nfanon): Crypto-PAn over
//! every address, AS numbers and MAC addresses zeroed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use weir_anon::{Anonymizer, parse_key};
use weir_store::{
    DEFAULT_BLOCK_ROWS, OnExists, SlotFile, SlotMeta, SlotWriter, TimeRange, WriterOptions,
    list_files,
};

/// Arguments of `weir anon`.
#[derive(Debug, Clone, Args)]
pub struct AnonArgs {
    /// Key: 32 characters, or 0x and 64 hex digits (nfanon -K). The same
    /// key gives the same mapping in every run.
    #[arg(short = 'K', long = "key", value_name = "KEY")]
    pub key: String,
    /// Slot files or directories (searched recursively, any -S layout).
    #[arg(short = 'r', long = "read", value_name = "FILE|DIR", num_args = 1.., required = true)]
    pub inputs: Vec<PathBuf>,
    /// Directory for the anonymized copies, at the same relative paths
    /// (the originals are never rewritten).
    #[arg(short = 'w', long = "dir", value_name = "DIR")]
    pub dir: PathBuf,
    /// zstd level 1..=22, or 0 to store blocks uncompressed.
    #[arg(short = 'z', long = "zstd", default_value_t = weir_store::DEFAULT_ZSTD_LEVEL, value_parser = clap::value_parser!(i32).range(0..=22))]
    pub zstd: i32,
}

/// Runs `weir anon`.
pub fn run(args: &AnonArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let key = parse_key(&args.key).map_err(anyhow::Error::msg).context("-K")?;
    let mut an = Anonymizer::new(&key);
    let (mut files, mut flows, mut failed) = (0u64, 0u64, 0u64);
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let out_dir = args.dir.canonicalize().with_context(|| format!("{}", args.dir.display()))?;
    for root in &args.inputs {
        let base = if root.is_file() { root.parent().unwrap_or(Path::new("")) } else { root };
        let inside = root.canonicalize().is_ok_and(|r| !root.is_file() && out_dir.starts_with(r));
        if inside {
            // Left empty by the check above: take it away again.
            let _ = std::fs::remove_dir(&args.dir);
            bail!(
                "{} is inside {}: write the copies elsewhere",
                args.dir.display(),
                root.display()
            );
        }
        for entry in list_files(root, TimeRange::ALL)? {
            let rel = entry.path.strip_prefix(base).unwrap_or(&entry.path);
            let target = args.dir.join(rel);
            match copy(&entry.path, &target, &mut an, args.zstd) {
                Ok(n) => {
                    flows += n;
                    files += 1;
                }
                // A damaged file is named and skipped (no copy is left);
                // the others are still anonymized.
                Err(e) => {
                    writeln!(out, "error: {e:#} (skipped)")?;
                    failed += 1;
                }
            }
        }
    }
    writeln!(
        out,
        "anonymized {flows} flows in {files} files into {} ({} distinct addresses); {failed} files skipped",
        args.dir.display(),
        an.computed
    )?;
    Ok(if failed == 0 { crate::EXIT_OK } else { crate::EXIT_FOUND_PROBLEMS })
}

/// Writes the anonymized copy of `src` at `dst`; returns its flows.
fn copy(src: &Path, dst: &Path, an: &mut Anonymizer, zstd: i32) -> anyhow::Result<u64> {
    let file = SlotFile::open(src)?;
    let info = file.info();
    let meta = SlotMeta {
        slot_start_s: info.slot_start_s,
        slot_len_s: info.slot_len_s,
        ident: info.ident.clone(),
        creator: info.creator,
    };
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let opts = WriterOptions {
        compression: weir_store::Compression::from_level(zstd),
        block_rows: DEFAULT_BLOCK_ROWS,
        on_exists: OnExists::Fail,
    };
    let mut w = SlotWriter::create(dst, meta, opts)?;
    // Any failure from here on (a damaged block, a full disk) removes the
    // copy begun.
    let mut fill = |w: &mut SlotWriter| -> Result<(), weir_store::StoreError> {
        let mut reader = weir_store::ChunkReader::new();
        for i in 0..file.blocks().len() {
            let mut batch = file.block(i)?.read_all(&mut reader)?;
            an.batch(&mut batch);
            w.write_batch(&batch)?;
            file.release_block(i);
        }
        Ok(())
    };
    if let Err(e) = fill(&mut w) {
        let _ = w.abort();
        return Err(e.into());
    }
    // Per-exporter counters: the exporters anonymized like the flows'.
    let exporters = info
        .exporters
        .iter()
        .map(|e| weir_record::ExporterStats { addr: an.addr(e.addr), ..*e })
        .collect();
    w.set_exporters(exporters);
    let rows = w.rows();
    let tmp = w.temp_path().to_path_buf();
    if let Err(e) = w.finish() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    Ok(rows)
}
