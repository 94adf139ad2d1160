//! `weir sflow2pcap`: the packet headers sFlow samples carry, as a pcap
//! stream for tcpdump, tshark and Wireshark (sflowtool -t).

use std::io::{BufWriter, Write};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use weir_capture::{FramesError, read_frames};
use weir_decode::pcap::UdpFrames;
use weir_decode::sampled::{WalkStats, sampled_headers, to_ethernet};
use weir_encode::pcap::{LINKTYPE_ETHERNET, PcapWriter};

use crate::units::parse_duration_ms;

/// Arguments of `weir sflow2pcap`.
#[derive(Debug, Clone, Args)]
pub struct Sflow2pcapArgs {
    /// Read a capture of sFlow datagrams (pcap or pcapng, gzip accepted;
    /// `-` = stdin) instead of listening.
    #[arg(short = 'r', long = "read", value_name = "FILE", conflicts_with = "listen")]
    pub read: Option<PathBuf>,
    /// With -r: only datagrams to this UDP port (default: every UDP
    /// datagram that is sFlow v5).
    #[arg(long, requires = "read")]
    pub port: Option<u16>,
    /// Listen for sFlow on ADDR:PORT (the default without -r:
    /// 0.0.0.0:6343).
    #[arg(short = 'l', long = "listen", value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Write the pcap here; `-` (the default) is stdout, for
    /// `weir sflow2pcap | tcpdump -r -`.
    #[arg(short = 'w', long = "write", value_name = "FILE", default_value = "-")]
    pub write: PathBuf,
    /// Listening: stop after this long (e.g. 30s, 5m); default: until
    /// SIGINT/SIGTERM.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Stop after this many packets.
    #[arg(short = 'c', long = "count")]
    pub count: Option<u64>,
}

#[derive(Default)]
struct Totals {
    datagrams: u64,
    not_sflow: u64,
    damaged: u64,
    walk: WalkStats,
    other_protocol: u64,
    incomplete: u64,
}

impl Totals {
    fn add(&mut self, s: &WalkStats) {
        self.walk.samples += s.samples;
        self.walk.packet_samples += s.packet_samples;
        self.walk.headers += s.headers;
    }
}

/// Converts one datagram's headers into pcap records at `ts_ns`.
fn convert<W: Write>(
    payload: &[u8],
    ts_ns: u64,
    pcap: &mut PcapWriter<W>,
    buf: &mut Vec<u8>,
    t: &mut Totals,
    limit: u64,
) -> std::io::Result<()> {
    t.datagrams += 1;
    if payload.get(..4) != Some(&[0, 0, 0, 5]) {
        t.not_sflow += 1;
        return Ok(());
    }
    let mut io_err = None;
    let mut other = 0;
    let r = sampled_headers(payload, |h| {
        if io_err.is_some() || pcap.packets() >= limit {
            return;
        }
        match to_ethernet(h, buf) {
            Some((frame, orig)) => {
                if let Err(e) = pcap.packet(ts_ns, orig, frame) {
                    io_err = Some(e);
                }
            }
            None => other += 1,
        }
    });
    t.other_protocol += other;
    match r {
        Ok(s) => t.add(&s),
        Err(_) => t.damaged += 1,
    }
    io_err.map_or(Ok(()), Err)
}

/// Runs `weir sflow2pcap`.
pub fn run(args: &Sflow2pcapArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let to_stdout = args.write.as_os_str() == "-";
    let sink: Box<dyn Write + '_> = if to_stdout {
        Box::new(BufWriter::new(&mut *out))
    } else {
        let f = std::fs::File::create(&args.write)
            .with_context(|| format!("creating {}", args.write.display()))?;
        Box::new(BufWriter::new(f))
    };
    let mut pcap = PcapWriter::new(sink, LINKTYPE_ETHERNET).context("writing the pcap header")?;
    let limit = args.count.unwrap_or(u64::MAX);
    let mut t = Totals::default();
    let mut buf = Vec::with_capacity(256);
    let mut problems = false;
    let mut messages = Vec::new();
    if let Some(path) = &args.read {
        // Frame by frame: memory stays bounded whatever the capture's size.
        let mut udp = UdpFrames::default();
        let damage = read_frames(path, |f| -> Result<(), Option<std::io::Error>> {
            let Some(d) = udp.datagram(f) else { return Ok(()) };
            if args.port.is_some_and(|p| d.dst.port() != p) {
                return Ok(());
            }
            convert(&d.payload, d.ts_ms * 1_000_000, &mut pcap, &mut buf, &mut t, limit)
                .map_err(Some)?;
            // Enough packets: stop reading (not an error).
            if pcap.packets() >= limit { Err(None) } else { Ok(()) }
        });
        t.incomplete = udp.incomplete();
        match damage {
            Ok(None) | Err(FramesError::Handler(None)) => {}
            Ok(Some(e)) if e.offset == 0 => bail!("{}: {e}", path.display()),
            Ok(Some(e)) => {
                problems = true;
                messages.push(format!("error: {}: {e}", path.display()));
            }
            Err(FramesError::Handler(Some(e))) => return Err(e).context("writing the pcap"),
            Err(FramesError::Input(e)) => return Err(e.into()),
        }
    } else {
        let addr = args.listen.as_deref().unwrap_or("0.0.0.0:6343");
        let sock = UdpSocket::bind(addr).with_context(|| format!("listening on {addr}"))?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let stop = crate::stop_on_signals()?;
        let deadline = match &args.duration {
            Some(d) => Some(
                Instant::now() + Duration::from_millis(parse_duration_ms(d).context("--duration")?),
            ),
            None => None,
        };
        let mut dg = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed)
            && deadline.is_none_or(|d| Instant::now() < d)
            && pcap.packets() < limit
        {
            let n = match sock.recv_from(&mut dg) {
                Ok((n, _)) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e).context("receiving"),
            };
            let now_ns =
                SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            convert(&dg[..n], now_ns, &mut pcap, &mut buf, &mut t, limit)?;
            pcap.flush()?;
        }
    }
    let written = pcap.packets();
    pcap.flush()?;
    drop(pcap);
    if t.datagrams == 0 && args.read.is_some() {
        problems = true;
    }
    let summary = format!(
        "{} datagrams: {} samples, {} with packet headers, {} headers -> {} packets written; skipped: {} not sFlow v5, {} damaged (headers before the damage kept), {} headers of a protocol other than Ethernet/IPv4/IPv6, {} fragmented datagrams incomplete",
        t.datagrams,
        t.walk.samples,
        t.walk.packet_samples,
        t.walk.headers,
        written,
        t.not_sflow,
        t.damaged,
        t.other_protocol,
        t.incomplete
    );
    messages.push(summary);
    for m in &messages {
        if to_stdout {
            // stdout carries the pcap.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("weir sflow2pcap: {m}");
            }
        } else {
            writeln!(out, "{m}")?;
        }
    }
    if args.read.is_some() && t.datagrams == 0 {
        bail!("no UDP datagrams in the capture");
    }
    Ok(if problems || t.damaged > 0 { crate::EXIT_FOUND_PROBLEMS } else { crate::EXIT_OK })
}
