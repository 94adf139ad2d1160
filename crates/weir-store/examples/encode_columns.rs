//! What each column of a slot file costs to write: re-encodes every block's
//! columns the way the writer does (remembered kinds, then zstd) and prints,
//! per column, nanoseconds per row for the encoding and for zstd and the
//! bytes per row before and after zstd (best of 5 passes).
//!
//! ```text
//! cargo run --release -p weir-store --example encode_columns -- FILE [COLUMN]
//! ```
//!
//! `ZSTD=level,min_match,hash_log,window_log` (0 = zstd's default) tries
//! other zstd parameters; the writer's are `1,7,6,15`. The reference column
//! of `first`/`last` (REL) is not used here, so those two cost a little
//! more than in the writer.

use std::io::Write;
use std::time::Instant;

use weir_store::{ChunkReader, EncodeHint, SlotFile, encode_chunk_hinted};
use zstd::zstd_safe::CParameter::{HashLog, MinMatch, WindowLog};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: encode_columns FILE [COLUMN]")?;
    let only = args.next();
    let file = SlotFile::open(&path)?;
    let mut reader = ChunkReader::new();
    let batches = (0..file.blocks().len())
        .map(|i| file.block(i).and_then(|b| b.read_all(&mut reader)))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = batches.first() else { return Err("the file has no blocks".into()) };
    let rows = batches.iter().map(|b| b.rows()).sum::<usize>() as f64;

    let params = std::env::var("ZSTD").unwrap_or_else(|_| "1,7,6,15".into());
    let p = params.split(',').map(str::parse).collect::<Result<Vec<i32>, _>>()?;
    let [level, min_match, hash_log, window_log] = p[..] else {
        return Err("ZSTD=level,min_match,hash_log,window_log".into());
    };
    let mut zstd = zstd::bulk::Compressor::new(level)?;
    for (v, set) in
        [(min_match, MinMatch as fn(u32) -> _), (hash_log, HashLog), (window_log, WindowLog)]
    {
        if v > 0 {
            zstd.set_parameter(set(v as u32))?;
        }
    }

    let mut out = std::io::stdout().lock();
    let (mut raw, mut packed) = (Vec::new(), Vec::new());
    let (mut total_enc, mut total_zstd) = (0.0, 0.0);
    for field in first.fields() {
        if only.as_ref().is_some_and(|o| *o != field.to_string()) {
            continue;
        }
        let (mut best_enc, mut best_zstd, mut sizes) = (f64::MAX, f64::MAX, (0, 0));
        for _ in 0..5 {
            let mut hint = EncodeHint::default();
            let (mut enc, mut z, mut raw_len, mut stored_len) = (0.0, 0.0, 0, 0);
            for col in batches.iter().filter_map(|b| b.column(field)) {
                let t = Instant::now();
                encode_chunk_hinted(col, None, &mut hint, &mut raw);
                enc += t.elapsed().as_secs_f64();
                let t = Instant::now();
                packed.clear();
                packed.reserve(zstd::zstd_safe::compress_bound(raw.len()));
                zstd.compress_to_buffer(&raw[..], &mut packed)?;
                z += t.elapsed().as_secs_f64();
                raw_len += raw.len();
                stored_len += packed.len().min(raw.len());
            }
            best_enc = best_enc.min(enc);
            best_zstd = best_zstd.min(z);
            sizes = (raw_len, stored_len);
        }
        total_enc += best_enc;
        total_zstd += best_zstd;
        writeln!(
            out,
            "{:14} encode {:6.2} ns/row  zstd {:6.2} ns/row  raw {:5.2} B/row  stored {:5.2} B/row",
            field.to_string(),
            best_enc * 1e9 / rows,
            best_zstd * 1e9 / rows,
            sizes.0 as f64 / rows,
            sizes.1 as f64 / rows,
        )?;
    }
    writeln!(
        out,
        "{:14} encode {:6.2} ns/row  zstd {:6.2} ns/row",
        "all",
        total_enc * 1e9 / rows,
        total_zstd * 1e9 / rows
    )?;
    Ok(())
}
