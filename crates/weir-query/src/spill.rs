//! Spill files: partial aggregates written out by hash partition when the
//! in-memory maps outgrow their budget, read back one partition at a time.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::agg::PARTS;
use crate::error::QueryError;

/// The spill files of one map: one per hash partition, in a temporary
/// directory that is removed when the set is finished or dropped.
pub(crate) struct SpillSet {
    inner: Mutex<Option<Files>>,
    dir: Option<PathBuf>,
    written: AtomicU64,
}

struct Files {
    _dir: tempfile::TempDir,
    paths: Vec<PathBuf>,
    writers: Vec<BufWriter<File>>,
}

fn poisoned() -> QueryError {
    QueryError::Spill(std::io::Error::other("spill lock poisoned"))
}

impl SpillSet {
    /// A set whose files go to `dir` (`None` = the system's temporary
    /// directory), created on the first spill.
    pub fn new(dir: Option<PathBuf>) -> SpillSet {
        SpillSet { inner: Mutex::new(None), dir, written: AtomicU64::new(0) }
    }

    /// Whether anything was spilled (and not yet read back).
    pub fn used(&self) -> bool {
        self.inner.lock().map(|g| g.is_some()).unwrap_or(true)
    }

    /// Entries written so far.
    pub fn entries(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Lets `write` append to the partition files; it returns the number
    /// of entries it wrote.
    pub fn write(
        &self,
        write: impl FnOnce(&mut [BufWriter<File>]) -> std::io::Result<u64>,
    ) -> Result<(), QueryError> {
        let mut g = self.inner.lock().map_err(|_| poisoned())?;
        if g.is_none() {
            let dir = match &self.dir {
                Some(d) => tempfile::Builder::new().prefix("weir-spill").tempdir_in(d),
                None => tempfile::Builder::new().prefix("weir-spill").tempdir(),
            }
            .map_err(QueryError::Spill)?;
            let mut paths = Vec::with_capacity(PARTS);
            let mut writers = Vec::with_capacity(PARTS);
            for p in 0..PARTS {
                let path = dir.path().join(format!("part{p:02}"));
                let f = File::create(&path).map_err(QueryError::Spill)?;
                paths.push(path);
                writers.push(BufWriter::with_capacity(64 * 1024, f));
            }
            *g = Some(Files { _dir: dir, paths, writers });
        }
        let files = g.as_mut().ok_or_else(poisoned)?;
        let n = write(&mut files.writers).map_err(QueryError::Spill)?;
        self.written.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Reads the partitions back one after the other (`read(p, file)`) and
    /// removes the files.
    pub fn read(
        &self,
        mut read: impl FnMut(usize, &mut dyn Read) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        let mut g = self.inner.lock().map_err(|_| poisoned())?;
        let Some(mut files) = g.take() else { return Ok(()) };
        for w in &mut files.writers {
            w.flush().map_err(QueryError::Spill)?;
        }
        for (p, path) in files.paths.iter().enumerate() {
            let f = File::open(path).map_err(QueryError::Spill)?;
            let mut r = BufReader::with_capacity(64 * 1024, f);
            read(p, &mut r)?;
        }
        Ok(())
    }
}

/// Reads entries of `size` bytes until the end of `r`.
pub(crate) fn read_entries(
    r: &mut dyn Read,
    size: usize,
    mut each: impl FnMut(&[u8]),
) -> Result<(), QueryError> {
    let mut buf = vec![0u8; size];
    loop {
        match r.read_exact(&mut buf) {
            Ok(()) => each(&buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(QueryError::Spill(e)),
        }
    }
}

/// Little-endian field writer for spill entries.
pub(crate) struct Enc<'a>(pub &'a mut Vec<u8>);

impl Enc<'_> {
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u128(&mut self, v: u128) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
}

/// Little-endian field reader for spill entries (the bytes were written by
/// this process; a short entry reads as zeros).
pub(crate) struct Dec<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Dec<'a> {
    pub fn new(b: &'a [u8]) -> Dec<'a> {
        Dec { b, at: 0 }
    }
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(s) = self.b.get(self.at..self.at + N) {
            out.copy_from_slice(s);
        }
        self.at += N;
        out
    }
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    pub fn u128(&mut self) -> u128 {
        u128::from_le_bytes(self.take())
    }
    pub fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
}
