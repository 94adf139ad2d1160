//! weir's end-to-end tests: one test binary, one module per area.

/// Layering rules from docs/ARCHITECTURE.md, checked against `cargo metadata`.
mod architecture;
/// The `weir` command line, run in-process.
mod cli;
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
