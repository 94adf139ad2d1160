//! The `weir` command line: clap definitions and one thin module per
//! subcommand. Each subcommand turns its arguments into the options of a
//! library crate and makes one call; no business logic lives here.
//!
//! [`run`] is the whole program and writes to any [`Write`], so tests drive
//! it in-process:
//!
//! ```
//! let mut out = Vec::new();
//! let code = weir_cli::run(["weir", "--version"], &mut out).unwrap();
//! assert_eq!(code, 0);
//! assert!(String::from_utf8(out).unwrap().starts_with("weir "));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};

mod cmd;
mod progress;
pub mod units;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code when the work ran but found problems (e.g. `inspect --verify`).
pub const EXIT_FOUND_PROBLEMS: u8 = 1;
/// Exit code for usage errors (clap's convention).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for errors that stopped the work.
pub const EXIT_ERROR: u8 = 255;

/// weir: a network flow collector and forensic query tool (nfdump/NfSen on a
/// columnar store).
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect NetFlow/IPFIX/sFlow into slot files (nfcapd/sfcapd).
    Collect(cmd::collect::CollectArgs),
    /// Generate deterministic synthetic flows into slot files.
    Gen(cmd::gen_cmd::GenArgs),
    /// Query flows with nfdump's flags: filter, list, aggregate (-a, -A),
    /// top-N statistics (-s), sort (-O), output formats (-o).
    Query(cmd::query::QueryArgs),
    /// Send the flows of slot files to a collector as NetFlow v9, IPFIX or v5 (nfreplay).
    Replay(cmd::replay::ReplayArgs),
    /// Import nfcapd files (nfdump 1.7) into weir slot files.
    Import(cmd::import::ImportArgs),
    /// Show what slot files hold (nfdump -I / -v); --verify checks every checksum.
    Inspect(cmd::inspect::InspectArgs),
    /// Built-in demo: generate a day of synthetic flows and inspect them.
    Demo(cmd::demo::DemoArgs),
    /// Decode a capture of NetFlow/IPFIX/sFlow datagrams: every record,
    /// template, sample and error (nfcapd -v 3, sflowtool).
    Decode(cmd::decode::DecodeArgs),
    /// NfSen profiles: add, modify, delete, list, show, build (retroactive),
    /// update (after each rotation).
    Profile(cmd::profile::ProfileArgs),
    /// Delete the oldest slot files by age and size, down to a low
    /// watermark (nfexpire); for live data or a materialized profile.
    Expire(cmd::expire::ExpireArgs),
    /// Graph a profile's channels (PNG or SVG): stacked areas, flows/s,
    /// packets/s or bits/s, per protocol.
    Graph(cmd::graph::GraphArgs),
    /// Packet captures or a live interface into flows in slot files
    /// (nfpcapd -r/-i): pcap/pcapng, gzip, active/inactive timeouts,
    /// snapshot flows.
    Pcap(cmd::pcap::PcapArgs),
    /// The packet headers in sFlow samples as a pcap stream for tcpdump,
    /// tshark and Wireshark (sflowtool -t).
    Sflow2pcap(cmd::sflow2pcap::Sflow2pcapArgs),
    /// Anonymized copies of slot files (nfanon): Crypto-PAn over every
    /// address, AS numbers and MAC addresses zeroed.
    Anon(cmd::anon::AnonArgs),
}

/// Runs `weir` with `args` (including the program name), writing to `out`.
/// Returns the exit code; errors that stop the program are `Err`.
pub fn run<I, T>(args: I, out: &mut dyn Write) -> anyhow::Result<u8>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            if e.use_stderr() {
                #[allow(clippy::print_stderr)]
                {
                    eprint!("{}", e.render().ansi());
                }
            } else {
                write!(out, "{}", e.render())?;
            }
            return Ok(code);
        }
    };
    match cli.command {
        Command::Collect(a) => cmd::collect::run(&a, out),
        Command::Gen(a) => cmd::gen_cmd::run(&a, out),
        Command::Query(a) => cmd::query::run(&a, out),
        Command::Replay(a) => cmd::replay::run(&a, out),
        Command::Import(a) => cmd::import::run(&a, out),
        Command::Inspect(a) => cmd::inspect::run(&a, out),
        Command::Demo(a) => cmd::demo::run(&a, out),
        Command::Decode(a) => cmd::decode::run(&a, out),
        Command::Profile(a) => cmd::profile::run(&a, out),
        Command::Expire(a) => cmd::expire::run(&a, out),
        Command::Graph(a) => cmd::graph::run(&a, out),
        Command::Pcap(a) => cmd::pcap::run(&a, out),
        Command::Sflow2pcap(a) => cmd::sflow2pcap::run(&a, out),
        Command::Anon(a) => cmd::anon::run(&a, out),
    }
}

/// A flag that SIGINT and SIGTERM set: long-running subcommands stop
/// cleanly (finish the file or slot at hand) when it is.
pub(crate) fn stop_on_signals() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use anyhow::Context;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    Ok(stop)
}

/// Whether an error is a closed pipe (`weir … | head`), which exits quietly.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every subcommand (unique names,
    /// valid defaults, conflicts that exist), which otherwise only fire
    /// when that subcommand is run.
    #[test]
    fn every_subcommand_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
