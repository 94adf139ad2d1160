//! `weir query` as a real process: exit codes and stderr as a shell sees
//! them, and `| head` ending quietly.

use std::io::Read;
use std::process::{Command, Stdio};

fn weir() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.env("TZ", "UTC");
    c
}

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let st = weir()
        .args(["gen", "-w", dir.path().to_str().unwrap(), "--duration", "10m", "--rate", "200/s"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    dir
}

#[test]
fn a_filter_error_exits_254_with_a_caret_under_the_position() {
    let out = weir().args(["query", "-Z", "proto tcp and port 99999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(254));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("proto tcp and port 99999"), "{err}");
    let caret_line = err.lines().find(|l| l.trim() == "^").expect("a caret line");
    let text_line = err.lines().find(|l| l.contains("proto tcp and port 99999")).unwrap();
    let col = caret_line.find('^').unwrap();
    assert_eq!(&text_line[col..col + 5], "99999", "{err}");
    let ok = weir().args(["query", "-Z", "proto tcp and port 443"]).output().unwrap();
    assert_eq!(ok.status.code(), Some(0));
}

#[test]
fn a_closed_pipe_ends_the_query_quietly() {
    let dir = fixture();
    let mut child = weir()
        .args(["query", "-R", dir.path().to_str().unwrap(), "-o", "long"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then close the pipe, as `| head -1` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 256];
    let n = stdout.read(&mut buf).unwrap();
    assert!(n > 0);
    drop(stdout);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(err.is_empty(), "nothing on stderr: {err}");
}

#[test]
fn a_damaged_file_is_named_with_its_offset_and_the_rest_is_answered() {
    let dir = fixture();
    let files: Vec<_> = walk(dir.path());
    assert!(files.len() >= 2, "{files:?}");
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes[100] ^= 0x55;
    std::fs::write(&files[0], &bytes).unwrap();
    let out = weir()
        .args(["query", "-R", dir.path().to_str().unwrap(), "-o", "null", "proto tcp"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(files[0].to_str().unwrap()) && err.contains("offset"), "{err}");
    assert!(stdout.contains("Summary: total flows: "), "{stdout}");
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
