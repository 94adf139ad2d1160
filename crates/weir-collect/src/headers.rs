//! sFlow sampled packet headers kept beside the slot files
//! (`--sflow-pcap`): for every slot that received sFlow, a pcap (Ethernet
//! link type, one frame per raw packet header record, stamped with the
//! datagram's arrival time, original length from the sample) named after
//! the slot file plus `.pcap`: `weir.202612011105.pcap` beside
//! `weir.202612011105`.
//!
//! While the slot is open the capture is written to a hidden temporary
//! file next to the slot's own (its name plus `.pcap`), flushed when the
//! collector cuts a block, and published by rename after the slot file
//! (after an fsync). A crashed run's temporary capture is trimmed to its
//! last complete frame and published at start-up with the recovered slot
//! (see `crate::recovery`). Query, import and expiry keep recognising slot
//! files by name, so the captures never confuse a scan; `weir expire`
//! counts and deletes them with their slot.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use weir_decode::sampled::{sampled_headers, to_ethernet};
use weir_encode::pcap::{LINKTYPE_ETHERNET, PcapWriter};

/// Counters of the header captures (shared with the metrics page).
#[derive(Debug, Default)]
pub(crate) struct HeaderStats {
    /// Frames written.
    pub(crate) stored: AtomicU64,
    /// Header records of a protocol a pcap of Ethernet frames cannot hold
    /// (802.11, PPP, ...).
    pub(crate) skipped: AtomicU64,
    /// Header records lost to write errors (disk full, ...).
    pub(crate) lost: AtomicU64,
}

/// `path` with `.pcap` appended.
pub(crate) fn sidecar(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pcap");
    PathBuf::from(s)
}

/// The capture of one open slot.
pub(crate) struct HeaderCapture {
    tmp: PathBuf,
    out: Option<PcapWriter<BufWriter<File>>>,
    frame: Vec<u8>,
}

impl HeaderCapture {
    /// Starts the temporary capture of the slot whose temporary file is
    /// `slot_tmp`.
    pub(crate) fn create(slot_tmp: &Path) -> io::Result<HeaderCapture> {
        let tmp = sidecar(slot_tmp);
        let f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let out = PcapWriter::new(BufWriter::with_capacity(64 * 1024, f), LINKTYPE_ETHERNET)?;
        Ok(HeaderCapture { tmp, out: Some(out), frame: Vec::with_capacity(256) })
    }

    /// Writes the sampled headers of one sFlow datagram.
    pub(crate) fn datagram(&mut self, payload: &[u8], received_ms: u64, stats: &HeaderStats) {
        let ts_ns = received_ms.saturating_mul(1_000_000);
        let (frame, out, tmp) = (&mut self.frame, &mut self.out, &self.tmp);
        // A datagram the walk stops in was already counted by the decoder;
        // the headers before the problem are kept.
        let _ = sampled_headers(payload, |h| {
            let Some((data, orig)) = to_ethernet(h, frame) else {
                stats.skipped.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let Some(w) = out.as_mut() else {
                stats.lost.fetch_add(1, Ordering::Relaxed);
                return;
            };
            match w.packet(ts_ns, orig, data) {
                Ok(()) => {
                    stats.stored.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(file = %tmp.display(), error = %e, "cannot write sampled headers; counted as lost until the next slot");
                    *out = None;
                    stats.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }

    /// Pushes buffered frames to the file (bounds what a crash loses).
    pub(crate) fn flush(&mut self) {
        if let Some(w) = self.out.as_mut()
            && let Err(e) = w.flush()
        {
            tracing::error!(file = %self.tmp.display(), error = %e, "cannot write sampled headers");
            self.out = None;
        }
    }

    /// Flushes, syncs and renames the capture to `slot` + `.pcap`.
    pub(crate) fn publish(mut self, slot: &Path) -> io::Result<PathBuf> {
        let w = self.out.take().ok_or_else(|| io::Error::other("earlier write error"))?;
        let f = w.into_inner().into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        let dst = sidecar(slot);
        std::fs::rename(&self.tmp, &dst)?;
        Ok(dst)
    }
}

/// Trims a crashed run's temporary capture to its last complete frame and
/// renames it to `dst`. Returns the frames kept; a capture without a
/// complete file header is removed.
pub(crate) fn recover_capture(tmp: &Path, dst: &Path) -> io::Result<usize> {
    let bytes = std::fs::read(tmp)?;
    let Ok(mut frames) = weir_decode::pcap::frames(&bytes) else {
        std::fs::remove_file(tmp)?;
        return Ok(0);
    };
    let mut kept = 0;
    let mut end = 24;
    while let Some(Ok(_)) = frames.next() {
        kept += 1;
        end = frames.offset();
    }
    if end < bytes.len() {
        OpenOptions::new().write(true).open(tmp)?.set_len(end as u64)?;
    }
    std::fs::rename(tmp, dst)?;
    Ok(kept)
}
