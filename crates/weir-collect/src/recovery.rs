//! Start-up recovery of slots a crashed collector left unfinished.

use std::path::{Path, PathBuf};

use crate::headers::{recover_capture, sidecar};
use weir_store::{
    Creator, OnExists, RecoverOptions, find_unfinished, parse_temp_file_name, recover,
};

/// Whether the process that wrote a temporary file still runs (then its
/// file is not ours to recover). Linux: /proc/<pid> of a weir process.
fn writer_alive(tmp: &Path) -> bool {
    let Some(pid) =
        tmp.file_name().and_then(|n| n.to_str()).and_then(parse_temp_file_name).map(|t| t.pid)
    else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("weir"))
}

/// What start-up recovery did.
#[derive(Default)]
pub(crate) struct Recovered {
    /// Slot files.
    pub(crate) slots: Vec<weir_store::RecoveryReport>,
    /// Sampled-header captures published (`--sflow-pcap`), with the
    /// frames each kept.
    pub(crate) captures: Vec<(PathBuf, usize)>,
}

/// Finds the temporary files of unfinished slots under each directory and
/// turns them into published slot files (keeping every complete block),
/// logging what was recovered and what was lost; then publishes their
/// sampled-header captures beside them (trimmed to the last complete
/// frame).
pub(crate) fn recover_all(dirs: &[(PathBuf, String)]) -> Recovered {
    let slots = recover_slots(dirs);
    let mut captures = Vec::new();
    let published: std::collections::HashMap<&Path, &Path> =
        slots.iter().filter_map(|r| Some((r.source.as_path(), r.published.as_deref()?))).collect();
    for (dir, _) in dirs {
        let mut found = Vec::new();
        find_captures(dir, &mut found);
        for cap in found {
            let slot_tmp = cap.with_extension("");
            if writer_alive(&slot_tmp) || slot_tmp.exists() {
                continue;
            }
            let dst = match published.get(slot_tmp.as_path()) {
                Some(p) => sidecar(p),
                None => match free_name(&slot_tmp) {
                    Some(d) => d,
                    None => continue,
                },
            };
            match recover_capture(&cap, &dst) {
                Ok(n) => {
                    tracing::warn!(from = %cap.display(), to = %dst.display(), frames = n, "recovered the sampled headers of an unfinished slot");
                    captures.push((dst, n));
                }
                Err(e) => {
                    tracing::error!(file = %cap.display(), error = %e, "cannot recover sampled headers")
                }
            }
        }
    }
    Recovered { slots, captures }
}

/// Temporary header captures (`.weir.….tmp.pcap`) under `dir`.
fn find_captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            find_captures(&p, out);
        } else if ft.is_file()
            && e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".pcap"))
                .and_then(parse_temp_file_name)
                .is_some()
        {
            out.push(p);
        }
    }
}

/// Where a capture whose slot left no file goes: the slot's name plus
/// `.pcap`, or with the first free sequence number.
fn free_name(slot_tmp: &Path) -> Option<PathBuf> {
    let name = slot_tmp.file_name()?.to_str().and_then(parse_temp_file_name)?.final_name;
    let base = slot_tmp.with_file_name(name);
    (0..1000)
        .map(|n| if n == 0 { base.clone() } else { weir_store::with_seq(&base, n) })
        .find(|p| !p.exists() && !sidecar(p).exists())
        .map(|p| sidecar(&p))
}

fn recover_slots(dirs: &[(PathBuf, String)]) -> Vec<weir_store::RecoveryReport> {
    let mut out = Vec::new();
    for (dir, ident) in dirs {
        if !dir.exists() {
            continue;
        }
        let found = match find_unfinished(dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot look for unfinished slots");
                continue;
            }
        };
        for tmp in found {
            if writer_alive(&tmp) {
                tracing::warn!(file = %tmp.display(), "unfinished slot belongs to a running process; left alone");
                continue;
            }
            let opts = RecoverOptions {
                ident_if_unknown: ident.clone(),
                creator: Creator::Collect,
                on_exists: OnExists::NextSeq,
            };
            match recover(&tmp, opts) {
                Ok(r) => {
                    tracing::warn!(
                        from = %tmp.display(),
                        published = ?r.published,
                        blocks = r.blocks_kept,
                        flows = r.rows_kept,
                        bytes_dropped = r.bytes_dropped,
                        reason = ?r.stop_reason,
                        "recovered an unfinished slot (its exporter counters are lost)"
                    );
                    out.push(r);
                }
                Err(e) => {
                    // Cut before even its header reached the disk: nothing to keep.
                    let len = std::fs::metadata(&tmp).map(|m| m.len()).unwrap_or(u64::MAX);
                    if len < weir_store::HEADER_LEN as u64 {
                        tracing::warn!(file = %tmp.display(), bytes = len, "removing an unfinished slot that holds no complete header");
                        let _ = std::fs::remove_file(&tmp);
                    } else {
                        tracing::error!(file = %tmp.display(), error = %e, "cannot recover unfinished slot");
                    }
                }
            }
        }
    }
    out
}
