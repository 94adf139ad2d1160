//! `weir import` as a real process: files nfcapd 1.7.1 writes (when the
//! Debian package is installed) are imported, answer queries as nfdump
//! does, import again idempotently, and a damaged file is reported with its
//! offset while the rest is imported.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-V").output().is_ok()
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn weir() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.env("TZ", "UTC");
    c
}

/// Runs nfcapd on loopback with `extra` flags, feeds it 3 s of generated
/// v9 traffic, stops it, and returns its finished files.
fn nfcapd_files(dir: &Path, extra: &[&str]) -> Vec<PathBuf> {
    let port = free_port();
    let child = Command::new("nfcapd")
        .args(["-b", "127.0.0.1", "-p", &port.to_string(), "-w", dir.to_str().unwrap(), "-t", "60"])
        .args(extra)
        .env("TZ", "UTC")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut nfcapd = Kill(child);
    std::thread::sleep(Duration::from_millis(700));
    let st = weir()
        .args(["gen", "--send", &format!("127.0.0.1:{port}"), "--format", "v9"])
        .args(["--rate", "1000/s", "--duration", "2s"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(500));
    // SIGTERM makes nfcapd close its current file.
    let _ = Command::new("kill").arg(nfcapd.0.id().to_string()).status();
    let _ = nfcapd.0.wait();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("nfcapd.2"))
        .collect();
    files.sort();
    files
}

fn summary(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .lines()
        .find(|l| l.starts_with("Summary: "))
        .unwrap_or("<no summary>")
        .to_string()
}

#[test]
fn nfcapd_files_import_idempotently_and_answer_like_nfdump() {
    if !have("nfcapd") || !have("nfdump") {
        eprintln!("skipped: nfcapd/nfdump not installed (apt-get install -y nfdump)");
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let files = nfcapd_files(src.path(), &["-y"]);
    assert!(!files.is_empty(), "nfcapd wrote no file");
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path().to_str().unwrap();
    let s = src.path().to_str().unwrap();
    let out = weir().args(["import", "--utc", "-w", d, s]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("imported {} files", files.len())), "{text}");

    for filter in ["any", "proto tcp and port 443", "net 10.0.0.0/8 and bytes > 1000"] {
        let w = weir().args(["query", "-R", d, "-o", "null", filter]).output().unwrap();
        let n = Command::new("nfdump")
            .args(["-R", s, "-o", "line", filter])
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert_eq!(summary(&w.stdout), summary(&n.stdout), "{filter}");
    }

    let again = weir().args(["import", "--utc", "-w", d, s]).output().unwrap();
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{text}");
    assert!(text.contains(&format!("skipped {} files already imported", files.len())), "{text}");
}

#[test]
fn a_damaged_nfcapd_file_is_reported_and_the_rest_imported() {
    if !have("nfcapd") {
        eprintln!("skipped: nfcapd not installed (apt-get install -y nfdump)");
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let files = nfcapd_files(src.path(), &[]);
    assert!(!files.is_empty());
    // A second, damaged copy under another slot name.
    let bad = src.path().join("nfcapd.202001010000");
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let cut = bytes.len() * 2 / 3;
    bytes.truncate(cut);
    std::fs::write(&bad, &bytes).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let out = weir()
        .args(["import", "--utc", "-w", dest.path().to_str().unwrap()])
        .arg(src.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}{err}");
    assert!(err.contains("nfcapd.202001010000") && err.contains("offset"), "{err}");
    assert!(text.contains(&format!("imported {} files", files.len())), "{text}");
}
