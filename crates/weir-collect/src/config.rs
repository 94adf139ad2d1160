//! Collector configuration: what `weir collect` is told on its command line.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use weir_decode::SamplingPolicy;
use weir_record::ip_to_u128;
use weir_store::{Compression, SubdirLayout};

/// Datagrams the receive threads may queue ahead of the decoder (in
/// batches of up to 64). At 1 400 bytes each this bounds the queue to about
/// 90 MiB, and covers about a second at 2 M flows/s (≈ 70 k datagrams/s)
/// should the writer stall on a slow disk; past that, datagrams are dropped
/// and counted.
pub const DEFAULT_QUEUE_DATAGRAMS: usize = 65_536;

/// An address prefix (`10.0.0.0/8`, `2001:db8::/32`, or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: u128,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR` or `ADDR/LEN`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = a.trim().parse().map_err(|_| format!("'{a}' is not an IP address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u8 = match len {
            Some(l) => l.trim().parse().map_err(|_| format!("'{l}' is not a prefix length"))?,
            None => max,
        };
        if len > max {
            return Err(format!("prefix /{len} is too long for {ip}"));
        }
        let prefix = if ip.is_ipv4() { len + 96 } else { len };
        let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
        Ok(Cidr { addr: ip_to_u128(ip) & mask, prefix })
    }

    /// Whether `ip` lies in the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
        ip_to_u128(ip) & mask == self.addr
    }
}

/// A fixed source (`-n ident,IP-or-CIDR[;IP-or-CIDR…],dir`): flows from
/// these exporters go to `dir` with this ident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedSource {
    /// Ident stored in the files.
    pub ident: String,
    /// Exporters that belong to the source.
    pub exporters: Vec<Cidr>,
    /// Directory of the source's files.
    pub dir: PathBuf,
}

impl FixedSource {
    /// Parses nfcapd's `-n ident,IPlist,dir` (IPs or CIDRs separated by `;`).
    pub fn parse(s: &str) -> Result<FixedSource, String> {
        let parts: Vec<&str> = s.splitn(3, ',').collect();
        let [ident, ips, dir] = parts[..] else {
            return Err(format!("'{s}': expected ident,IP-or-CIDR[;…],dir"));
        };
        if ident.is_empty()
            || !ident.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!("'{ident}': an ident is letters, digits, '_' and '-'"));
        }
        let exporters = ips
            .split(';')
            .filter(|x| !x.is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if exporters.is_empty() {
            return Err(format!("'{s}': no exporter address"));
        }
        Ok(FixedSource { ident: ident.to_string(), exporters, dir: PathBuf::from(dir) })
    }
}

/// Where datagrams come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// UDP sockets.
    Sockets {
        /// NetFlow/IPFIX listen addresses.
        netflow: Vec<SocketAddr>,
        /// sFlow listen addresses.
        sflow: Vec<SocketAddr>,
        /// SO_RCVBUF in bytes (`None`: the system default).
        rcvbuf: Option<usize>,
    },
    /// A capture file (`-f`; `-` = stdin): flows are placed by the
    /// capture time.
    Capture(PathBuf),
}

/// Everything `weir collect` needs.
#[derive(Debug, Clone)]
pub struct CollectConfig {
    /// Where datagrams come from.
    pub input: Input,
    /// Base directory (`-w`).
    pub dir: PathBuf,
    /// Slot length in seconds (`-t`).
    pub slot_secs: u32,
    /// Sub-directory layout (`-S`).
    pub layout: SubdirLayout,
    /// Ident of the single source (`-I`), when no fixed sources are given.
    pub ident: String,
    /// Block compression (`-z`).
    pub compression: Compression,
    /// Fixed sources (`-n`); when any is given, datagrams from other
    /// exporters are dropped and counted (allow-list).
    pub sources: Vec<FixedSource>,
    /// One sub-directory per exporter address (`-M`).
    pub dynamic: bool,
    /// Repeaters (`-R`, at most 8): every datagram is forwarded unchanged.
    pub repeaters: Vec<SocketAddr>,
    /// Repeat IPv4 datagrams with the exporter's own source address and
    /// port (`-A`; a raw socket: needs CAP_NET_RAW), so that the next
    /// collector sees the original exporter.
    pub repeat_spoof: bool,
    /// Command run after each rotation (`-x`), without a shell.
    pub after_rotate: Option<String>,
    /// Pid file (`-P`).
    pub pidfile: Option<PathBuf>,
    /// Prometheus metrics endpoint (`--metrics`).
    pub metrics: Option<SocketAddr>,
    /// Sampled counters: scale, keep raw, or force a rate.
    pub sampling: SamplingPolicy,
    /// Bound of the receive queue, in datagrams.
    pub queue_datagrams: usize,
    /// Keep the raw packet headers of sFlow samples as a pcap beside each
    /// slot file (`--sflow-pcap`).
    pub sflow_pcap: bool,
    /// Interface (its IPv4 address) on which listeners with an IPv4
    /// multicast address join their group (`--multicast-if`); `None`: the
    /// one the kernel routes the group to.
    pub multicast_if: Option<std::net::Ipv4Addr>,
    /// Wraps the capture's bytes before they are read (`-f`): the command
    /// line passes a gzip-detecting decompressor here (this crate has no
    /// compression dependency). `None`: the bytes are read as they are.
    pub capture_decoder: Option<CaptureDecoder>,
}

/// See [`CollectConfig::capture_decoder`].
pub type CaptureDecoder = fn(Box<dyn std::io::Read>) -> std::io::Result<Box<dyn std::io::Read>>;

impl CollectConfig {
    /// A configuration with nfcapd's defaults writing to `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> CollectConfig {
        CollectConfig {
            input: Input::Sockets {
                netflow: vec!["0.0.0.0:9995".parse().expect("literal")],
                sflow: vec!["0.0.0.0:6343".parse().expect("literal")],
                rcvbuf: None,
            },
            dir: dir.into(),
            slot_secs: weir_store::DEFAULT_SLOT_SECS,
            layout: SubdirLayout::YearMonthDay,
            ident: "none".into(),
            compression: Compression::Zstd(weir_store::DEFAULT_ZSTD_LEVEL),
            sources: Vec::new(),
            dynamic: false,
            repeaters: Vec::new(),
            repeat_spoof: false,
            after_rotate: None,
            pidfile: None,
            metrics: None,
            sampling: SamplingPolicy::Scale,
            queue_datagrams: DEFAULT_QUEUE_DATAGRAMS,
            sflow_pcap: false,
            multicast_if: None,
            capture_decoder: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_accept_and_reject() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(
            !c.contains("::ffff:10.2.0.1".parse().unwrap())
                || c.contains("10.2.0.1".parse().unwrap())
        );
        let h = Cidr::parse("192.0.2.1").unwrap();
        assert!(
            h.contains("192.0.2.1".parse().unwrap()) && !h.contains("192.0.2.2".parse().unwrap())
        );
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("10.1.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fixed_sources_parse() {
        let s = FixedSource::parse("rtr1,192.0.2.1;10.0.0.0/8,/data/rtr1").unwrap();
        assert_eq!(s.ident, "rtr1");
        assert_eq!(s.exporters.len(), 2);
        assert_eq!(s.dir, PathBuf::from("/data/rtr1"));
        for bad in ["rtr1,192.0.2.1", "bad ident,1.2.3.4,/x", "r,,/x", "r,1.2.3.400,/x"] {
            assert!(FixedSource::parse(bad).is_err(), "{bad}");
        }
    }
}
