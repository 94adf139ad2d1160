//! `weir query -w FILE`: a [`Sink`] that writes the records it receives
//! into a slot file.

use std::io;
use std::path::{Path, PathBuf};

use weir_record::{Field, FlowRecord};
use weir_store::{Creator, SlotMeta, SlotWriter, WriterOptions, slot_start};

use crate::model::{Section, Sink, StatTable, Summary};

/// Writes every record handed to it (plain, aggregated or top-N records)
/// into one slot file, published when the summary arrives (the last call
/// of a query). An existing file of that name is replaced, as nfdump's
/// `-w` does. Statistic tables are not records and are not written.
///
/// The file's slot starts at the first record's first-seen time, rounded
/// down to the slot length (default 300 s); its footer totals describe the
/// rows written, so `-t` and `-I` work on it as on any slot file.
pub struct SlotFileSink {
    path: PathBuf,
    ident: Option<String>,
    opts: WriterOptions,
    slot_len_s: u32,
    writer: Option<SlotWriter>,
    written: Option<PathBuf>,
    rows: u64,
}

impl SlotFileSink {
    /// A sink writing to `path`.
    pub fn new(path: impl Into<PathBuf>) -> SlotFileSink {
        SlotFileSink {
            path: path.into(),
            ident: None,
            opts: WriterOptions::default(),
            slot_len_s: 300,
            writer: None,
            written: None,
            rows: 0,
        }
    }

    /// The ident stored in the file (default: the ident of the first
    /// records, or `query` for aggregated records).
    pub fn with_ident(mut self, ident: impl Into<String>) -> SlotFileSink {
        self.ident = Some(ident.into());
        self
    }

    /// Writer settings (compression, block size).
    pub fn with_options(mut self, opts: WriterOptions) -> SlotFileSink {
        self.opts = opts;
        self
    }

    /// Slot length stored in the file header (seconds, at least 1).
    pub fn with_slot_len(mut self, secs: u32) -> SlotFileSink {
        self.slot_len_s = secs.max(1);
        self
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Where the file was published, once the summary has arrived.
    pub fn written(&self) -> Option<&Path> {
        self.written.as_deref()
    }

    fn open(&mut self, ident: &str, first_ms: u64) -> io::Result<&mut SlotWriter> {
        if self.writer.is_none() {
            let ident = match &self.ident {
                Some(i) => i.clone(),
                None if ident.is_empty() => "query".to_string(),
                None => ident.to_string(),
            };
            let meta = SlotMeta {
                slot_start_s: slot_start((first_ms / 1000) as i64, self.slot_len_s),
                slot_len_s: self.slot_len_s,
                ident,
                creator: Creator::Query,
            };
            let w = SlotWriter::create(&self.path, meta, self.opts).map_err(io::Error::other)?;
            self.writer = Some(w);
        }
        self.writer.as_mut().ok_or_else(|| io::Error::other("no writer"))
    }

    /// Writes the footer and publishes the file (replacing an existing one).
    fn publish(&mut self) -> io::Result<()> {
        if self.writer.is_none() {
            self.open("", 0)?;
        }
        let Some(w) = self.writer.take() else { return Ok(()) };
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                let _ = w.abort();
                return Err(e);
            }
        }
        let p = w.finish().map_err(io::Error::other)?;
        self.written = Some(p);
        Ok(())
    }
}

impl Drop for SlotFileSink {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            let _ = w.abort();
        }
    }
}

impl Sink for SlotFileSink {
    fn columns(&self) -> Option<Vec<Field>> {
        Some(Field::ALL.to_vec())
    }

    fn begin_section(&mut self, _section: Section) -> io::Result<()> {
        Ok(())
    }

    fn records(&mut self, ident: &str, records: &[FlowRecord]) -> io::Result<()> {
        let Some(first) = records.first() else { return Ok(()) };
        let w = self.open(ident, first.first)?;
        for r in records {
            w.push(r).map_err(io::Error::other)?;
        }
        self.rows += records.len() as u64;
        Ok(())
    }

    fn stat(&mut self, _table: &StatTable) -> io::Result<()> {
        Ok(())
    }

    fn summary(&mut self, _summary: &Summary) -> io::Result<()> {
        self.publish()
    }
}
