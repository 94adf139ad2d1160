//! `weir inspect`: what nfdump `-I` and `-v` show, plus the exporter table,
//! the block index and the compression of every column.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use weir_record::{ExporterStats, Field, FieldType, ProtoClass, SlotTotals, u128_to_ip};
use weir_store::{SlotFile, StoreError, TimeRange, list_files};

use crate::units::{fmt_time_ms, fmt_time_s};

/// Arguments of `weir inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Slot files or directories (searched recursively).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// Read every block and check every checksum; exit 1 naming the first
    /// bad file and offset.
    #[arg(long)]
    pub verify: bool,
    /// One line per file before the summary.
    #[arg(long)]
    pub files: bool,
    /// One line per block of each file: offset, length, rows, time range.
    #[arg(long)]
    pub blocks: bool,
}

#[derive(Default)]
struct ColStat {
    blocks: u64,
    rows: u64,
    nulls: u64,
    stored: u64,
    delta: u64,
    dict: u64,
    /// Of those, dictionaries with packed indices (format version 2).
    packed: u64,
    rel: u64,
    zstd: u64,
}

#[derive(Default)]
struct Summary {
    files: u64,
    bytes: u64,
    blocks: u64,
    rows: u64,
    totals: SlotTotals,
    idents: Vec<String>,
    first_slot: Option<i64>,
    last_slot_end: Option<i64>,
    exporters: BTreeMap<(u128, u16, u16, u32), ExporterStats>,
    columns: BTreeMap<u16, ColStat>,
    chunks_verified: u64,
}

impl Summary {
    fn add(&mut self, f: &SlotFile) -> Result<(), StoreError> {
        let info = f.info();
        self.files += 1;
        self.bytes += f.len();
        self.blocks += f.blocks().len() as u64;
        self.rows += f.rows();
        self.totals.merge(&info.totals);
        if !self.idents.contains(&info.ident) {
            self.idents.push(info.ident.clone());
        }
        let end = info.slot_start_s + i64::from(info.slot_len_s);
        self.first_slot =
            Some(self.first_slot.map_or(info.slot_start_s, |s| s.min(info.slot_start_s)));
        self.last_slot_end = Some(self.last_slot_end.map_or(end, |s| s.max(end)));
        for e in &info.exporters {
            let m = self.exporters.entry((e.addr, e.sysid, e.version, e.domain)).or_insert(
                ExporterStats {
                    addr: e.addr,
                    sysid: e.sysid,
                    version: e.version,
                    domain: e.domain,
                    ..Default::default()
                },
            );
            m.add_counters(e);
        }
        for i in 0..f.blocks().len() {
            let b = f.block(i)?;
            for e in b.entries() {
                let c = self.columns.entry(e.field_id).or_default();
                c.blocks += 1;
                c.rows += b.rows() as u64;
                c.nulls += e.meta.null_count as u64;
                c.stored += e.stored_len as u64;
                c.delta += u64::from(e.meta.enc & 0x0f == weir_store::KIND_DELTA);
                c.dict += u64::from(e.meta.enc & 0x0f == weir_store::KIND_DICT);
                c.packed += u64::from(e.meta.enc & weir_store::FLAG_PACKED != 0);
                c.rel += u64::from(e.meta.enc & 0x0f == weir_store::KIND_REL);
                c.zstd += u64::from(e.meta.enc & weir_store::FLAG_ZSTD != 0);
            }
        }
        Ok(())
    }
}

/// Runs `weir inspect`.
pub fn run(args: &InspectArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let mut files = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for p in &args.paths {
        match list_files(p, TimeRange::ALL) {
            Ok(v) if v.is_empty() => {
                problems.push(format!("{}: no weir slot files found", p.display()))
            }
            Ok(v) => files.extend(v.into_iter().map(|e| e.path)),
            Err(e) => problems.push(e.to_string()),
        }
    }
    let mut sum = Summary::default();
    let mut last_ok = None;
    for path in &files {
        let res = SlotFile::open(path).and_then(|f| {
            if args.verify {
                sum.chunks_verified += f.verify()?;
            }
            sum.add(&f)?;
            Ok(f)
        });
        match res {
            Ok(f) => {
                if args.files || args.blocks {
                    file_line(out, &f)?;
                }
                if args.blocks {
                    block_lines(out, &f)?;
                }
                last_ok = Some(f);
            }
            Err(e) => {
                writeln!(out, "BAD {e}")?;
                problems.push(e.to_string());
            }
        }
    }
    if sum.files == 1 && files.len() == 1 {
        if let Some(f) = &last_ok {
            file_header(out, f)?;
        }
    } else if sum.files > 0 {
        dir_header(out, &sum)?;
    }
    if sum.files > 0 {
        stat_record(out, &sum)?;
        exporters(out, &sum)?;
        columns(out, &sum)?;
    }
    if args.verify {
        writeln!(
            out,
            "\nVerified {} chunks in {} files: {} bad",
            sum.chunks_verified,
            sum.files,
            problems.len()
        )?;
    }
    if let Some(first) = problems.first() {
        writeln!(out, "{} problem(s); first: {first}", problems.len())?;
        return Ok(crate::EXIT_FOUND_PROBLEMS);
    }
    Ok(crate::EXIT_OK)
}

/// `weir query -I`: nfdump's `-I` stat record summed over `files`, read
/// from their footers without touching a block.
pub fn nfdump_info(files: &[PathBuf], out: &mut dyn Write) -> anyhow::Result<u8> {
    let mut sum = Summary::default();
    for path in files {
        sum.add(&SlotFile::open(path)?)?;
    }
    stat_record(out, &sum)?;
    Ok(crate::EXIT_OK)
}

fn file_line(out: &mut dyn Write, f: &SlotFile) -> std::io::Result<()> {
    let t = &f.info().totals;
    writeln!(
        out,
        "{}  slot {}  flows {}  packets {}  bytes {}  size {}  blocks {}",
        f.path().display(),
        fmt_time_s(f.info().slot_start_s),
        t.all.flows,
        t.all.packets,
        t.all.bytes,
        f.len(),
        f.blocks().len()
    )
}

fn block_lines(out: &mut dyn Write, f: &SlotFile) -> anyhow::Result<()> {
    for (i, idx) in f.blocks().iter().enumerate() {
        let b = f.block(i)?;
        let s = b.stats();
        let t = |fld: Field, max: bool| {
            s.zone(fld)
                .map_or("-".to_string(), |z| fmt_time_ms((if max { z.max } else { z.min }) as i64))
        };
        writeln!(
            out,
            "  block {i:>4}  offset {:>10}  length {:>9}  rows {:>7}  columns {:>2}  first {} .. last {}",
            idx.offset,
            idx.length,
            idx.rows,
            b.entries().len(),
            t(Field::First, false),
            t(Field::Last, true)
        )?;
    }
    Ok(())
}

fn file_header(out: &mut dyn Write, f: &SlotFile) -> std::io::Result<()> {
    let i = f.info();
    writeln!(out, "File       : {}", f.path().display())?;
    writeln!(out, "Format     : weir slot file, version {}", f.version())?;
    writeln!(
        out,
        "Size       : {} bytes ({:.2} bytes/flow)",
        f.len(),
        f.len() as f64 / f.rows().max(1) as f64
    )?;
    writeln!(
        out,
        "Slot       : {} - {} UTC ({} s)",
        fmt_time_s(i.slot_start_s),
        fmt_time_s(i.slot_start_s + i64::from(i.slot_len_s)),
        i.slot_len_s
    )?;
    writeln!(
        out,
        "Created    : {} UTC by {} ({})",
        fmt_time_ms(i.created_ms),
        i.creator.name(),
        i.software
    )?;
    writeln!(
        out,
        "Blocks     : {} ({} rows, footer {} bytes)",
        f.blocks().len(),
        f.rows(),
        f.footer_len()
    )?;
    writeln!(out)
}

fn dir_header(out: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    writeln!(
        out,
        "Files      : {} ({} - {} UTC)",
        s.files,
        fmt_time_s(s.first_slot.unwrap_or(0)),
        fmt_time_s(s.last_slot_end.unwrap_or(0))
    )?;
    writeln!(
        out,
        "Size       : {} bytes ({:.2} bytes/flow)",
        s.bytes,
        s.bytes as f64 / s.rows.max(1) as f64
    )?;
    writeln!(out, "Blocks     : {} ({} rows)", s.blocks, s.rows)?;
    writeln!(out)
}

/// The stat record in nfdump `-I` layout, summed over the files.
fn stat_record(out: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    let t = &s.totals;
    writeln!(out, "Ident: {}", s.idents.join(","))?;
    writeln!(out, "Flows: {}", t.all.flows)?;
    for c in ProtoClass::ALL {
        writeln!(out, "Flows_{}: {}", c.name(), t.class(c).flows)?;
    }
    writeln!(out, "Packets: {}", t.all.packets)?;
    for c in ProtoClass::ALL {
        writeln!(out, "Packets_{}: {}", c.name(), t.class(c).packets)?;
    }
    writeln!(out, "Bytes: {}", t.all.bytes)?;
    for c in ProtoClass::ALL {
        writeln!(out, "Bytes_{}: {}", c.name(), t.class(c).bytes)?;
    }
    writeln!(out, "First: {}", t.first_ms / 1000)?;
    writeln!(out, "Last: {}", t.last_ms / 1000)?;
    writeln!(out, "msec_first: {}", t.first_ms % 1000)?;
    writeln!(out, "msec_last: {}", t.last_ms % 1000)?;
    writeln!(out, "Sequence failures: {}", t.sequence_failures)
}

fn protocol_name(v: u16) -> String {
    match v {
        1 | 5 | 7 | 9 => format!("netflow v{v}"),
        10 => "ipfix".into(),
        0x85 => "sflow v5".into(),
        v => format!("version {v}"),
    }
}

fn exporters(out: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    if s.exporters.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nExporters:")?;
    for e in s.exporters.values() {
        writeln!(
            out,
            "  SysID {:>3}  {:>39}  {:<10} domain {:<6} datagrams {:<8} flows {:<10} packets {:<12} bytes {:<14} seq-failures {} decode-errors {} unknown-template-sets {} dropped {} sampling {}",
            e.sysid,
            u128_to_ip(e.addr),
            protocol_name(e.version),
            e.domain,
            e.datagrams,
            e.flows,
            e.packets,
            e.bytes,
            e.sequence_failures,
            e.decode_errors,
            e.unknown_template_sets,
            e.dropped,
            e.sampling_rate
        )?;
    }
    Ok(())
}

/// Bytes per value of a plain, unencoded fixed-width layout, for ratios.
fn plain_width(ty: FieldType) -> u64 {
    match ty {
        FieldType::TimeMs | FieldType::U64 => 8,
        FieldType::Ip => 16,
        FieldType::Mac => 6,
        FieldType::Mpls => 3,
        FieldType::U32 => 4,
        FieldType::Port | FieldType::U16 => 2,
        _ => 1,
    }
}

fn columns(out: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    writeln!(out, "\nColumns:")?;
    writeln!(
        out,
        "  {:<14} {:>7} {:>11} {:>14} {:>10} {:>8}  encodings",
        "column", "blocks", "nulls", "stored bytes", "bytes/flow", "ratio"
    )?;
    let mut stored_total = 0;
    for (id, c) in &s.columns {
        stored_total += c.stored;
        let (name, plain) = match Field::from_id(*id) {
            Some(f) => (f.name().to_string(), c.rows * plain_width(f.info().ty)),
            None => (format!("#{id}"), 0),
        };
        let ratio = if c.stored == 0 {
            "inf".to_string()
        } else {
            format!("{:.1}x", plain as f64 / c.stored as f64)
        };
        write!(
            out,
            "  {:<14} {:>7} {:>11} {:>14} {:>10.3} {:>8}  for:{} delta:{} dict:{} rel:{} zstd:{}",
            name,
            c.blocks,
            c.nulls,
            c.stored,
            c.stored as f64 / s.rows.max(1) as f64,
            ratio,
            c.blocks - c.delta - c.dict - c.rel,
            c.delta,
            c.dict,
            c.rel,
            c.zstd
        )?;
        if c.packed > 0 {
            write!(out, " (packed dict:{})", c.packed)?;
        }
        writeln!(out)?;
    }
    let overhead = s.bytes.saturating_sub(stored_total);
    writeln!(
        out,
        "  {:<14} {:>7} {:>11} {:>14} {:>10.3}",
        "(headers)",
        "",
        "",
        overhead,
        overhead as f64 / s.rows.max(1) as f64
    )
}
