//! Start-up recovery of slots a crashed collector left unfinished.

use std::path::{Path, PathBuf};

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

/// Finds the temporary files of unfinished slots under each directory and
/// turns them into published slot files (keeping every complete block),
/// logging what was recovered and what was lost. Returns the reports.
pub(crate) fn recover_all(dirs: &[(PathBuf, String)]) -> Vec<weir_store::RecoveryReport> {
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
