//! weir's end-to-end tests: one test binary, one module per area.

/// Layering rules from docs/ARCHITECTURE.md, checked against `cargo metadata`.
mod architecture;
/// The `weir` command line, run in-process.
mod cli;
/// `weir decode` on the shared captures.
mod decode;
/// `weir query`: golden outputs, thread-count independence, -t, -Z, -I, -w.
mod query;
/// Frozen slot files of every released format version, and corruption of real files.
mod store;

/// Runs `weir` in-process and returns (exit code, stdout).
pub fn weir(args: &[&str]) -> (u8, String) {
    let mut out = Vec::new();
    let mut argv = vec!["weir"];
    argv.extend_from_slice(args);
    let code = weir_cli::run(argv, &mut out).unwrap_or_else(|e| panic!("weir {args:?}: {e:#}"));
    (code, String::from_utf8(out).expect("utf-8 output"))
}

/// A capture from ../shared/captures, or `None` (test skipped) when absent.
pub fn capture(name: &str) -> Option<String> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures").join(name);
    p.exists().then(|| p.to_string_lossy().into_owned())
}
