//! Paced sending of flows as NetFlow v5 / v9, IPFIX or sFlow v5 datagrams:
//! the engine of `weir gen --send` and `weir replay`.
//!
//! [`send`] takes any iterator of [`FlowRecord`]s, encodes them with the
//! `weir-encode` encoders the way an exporter would, and sends one UDP
//! datagram per `send` call on a connected socket, paced by a monotonic
//! clock ([`Pace`]).
//!
//! # What goes on the wire
//!
//! * **v5**: up to 30 flows per datagram, `flow_sequence` = flows sent
//!   before. IPv6 flows cannot be carried: they are skipped and counted in
//!   [`SendReport::skipped`]. Engine type / id are the high / low byte of
//!   [`SendOptions::domain`]; a [`SendOptions::sampling_rate`] above 1 is
//!   announced in the header's sampling field (mode 01).
//! * **v9 / IPFIX**: two data templates, 256 for IPv4 and 257 for IPv6
//!   ([`Template::ipv4`] / [`Template::ipv6`] plus the ICMP type/code
//!   element 32 / 139, so ICMP flows keep their type and code), as many
//!   flows per datagram as fit into [`SendOptions::max_datagram`]
//!   (1400 bytes: about 20 IPv4 flows), consecutive flows of one family
//!   sharing a data set so order is kept. The template set opens the first
//!   datagram and is repeated per [`TemplateRefresh`] (default: every 20
//!   datagrams or every second, whichever comes first), inside the
//!   datagram that carries data, as exporters do. Sequence numbers:
//!   v9 = datagrams sent before, IPFIX = data records sent before.
//!   Source id / observation domain = [`SendOptions::domain`].
//! * **sFlow v5**: each flow becomes one flow sample (compact format) with
//!   a single raw packet header record: the Ethernet frame of one packet of
//!   the flow ([`sflow_packet`]: the flow's addresses, ports, protocol,
//!   TCP flags, ToS, VLAN, MPLS, and an IP length equal to the flow's mean
//!   packet size `bytes / packets`), cut to 128 bytes. A collector decodes
//!   such a sample as `packets = 1`, `bytes` = frame length (the IP
//!   length plus 14 for Ethernet, 4 per VLAN/MPLS tag, 4 for the FCS),
//!   times the sampling rate if it scales. The sample's data source is the flow's input ifIndex;
//!   sequence numbers run per data source and per datagram as a real agent
//!   numbers them; the sampling rate is [`SendOptions::sampling_rate`]
//!   (default 1), announced only (the sample pool grows by it per sample —
//!   counters are not divided: one flow is one sample). 7 samples per
//!   datagram by default. Agent address: [`SendOptions::agent`], else the
//!   socket's local address; sub-agent id = [`SendOptions::domain`].
//!
//! Times: header export times follow [`SendOptions::clock`]: by default
//! ([`ExportClock::Flows`]) the latest `received` time of the datagram's
//! flows, so that stored flows replayed today keep their times exactly in
//! every format (v5 / v9 carry flow times as 32-bit ms of exporter uptime,
//! which only reach ~49 days around the header's time); generated flows
//! start now, so their datagrams carry current times either way. The
//! exporter "booted" at [`SendOptions::boot_ms`] (default: an hour before
//! the first flow's start, or before now if that is earlier and the clock
//! is [`ExportClock::Wall`]). Export times are rounded up to whole
//! seconds (v9 headers have no milliseconds; a flow ending after its
//! datagram's export time would be clamped by a decoder).
//!
//! # Pacing
//!
//! The flows are numbered in the order they are sent; with
//! [`Pace::Rate`]`(r)` flow *i* (from 1) is due `i / r` seconds after the
//! start and a datagram goes out when its last flow is due, measured on
//! [`Instant`] against the start — an absolute schedule, so a late wake-up
//! is caught up by the next datagram instead of accumulating. The sender
//! sleeps for gaps above 200 µs and yields below. A datagram never holds
//! flows due more than [`SendOptions::max_delay`] apart, so at low rates
//! datagrams go out partly filled rather than late. [`Pace::Received`]
//! follows the flows' `received` times instead (replay at a speed).
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use weir_collect::send::{Format, Pace, SendOptions, send};
//! use weir_gen::{GenConfig, Generator};
//!
//! let mut opts = SendOptions::new("127.0.0.1:2055".parse().unwrap(), Format::V9);
//! opts.pace = Pace::rate(10_000.0);
//! let flows = Generator::new(GenConfig { duration_ms: 10_000, rate: 10_000.0, ..GenConfig::default() });
//! let report = send(flows, &opts, &AtomicBool::new(false)).unwrap();
//! assert!(report.datagrams > 0);
//! ```

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weir_encode::netflow::{
    Field, LegacyEncoder, LegacyVersion, Template, TemplateEncoder, TemplateProtocol,
};
use weir_encode::sflow::{Agent, FlowData, Interface, Packet, Sample};
use weir_record::{FlowRecord, is_ipv4_mapped};

/// Export protocol to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// NetFlow v5 (IPv4 only).
    V5,
    /// NetFlow v9 (the default).
    #[default]
    V9,
    /// IPFIX.
    Ipfix,
    /// sFlow v5.
    Sflow,
}

impl Format {
    /// The name [`FromStr`] accepts: `v5`, `v9`, `ipfix`, `sflow`.
    pub fn name(self) -> &'static str {
        match self {
            Format::V5 => "v5",
            Format::V9 => "v9",
            Format::Ipfix => "ipfix",
            Format::Sflow => "sflow",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of `v5`, `v9`, `ipfix`, `sflow`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format '{0}': use v5, v9, ipfix or sflow")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    /// `v5`, `v9`, `ipfix` (or `v10`), `sflow` (or `sflow5`), any case.
    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        match s.to_ascii_lowercase().as_str() {
            "v5" | "5" | "netflow5" => Ok(Format::V5),
            "v9" | "9" | "netflow9" => Ok(Format::V9),
            "ipfix" | "v10" | "10" => Ok(Format::Ipfix),
            "sflow" | "sflow5" => Ok(Format::Sflow),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as possible.
    Unlimited,
    /// This many flows per second over the whole run.
    Rate(f64),
    /// Follow the flows' `received` times (the first flow is due at once),
    /// `speed` times faster than real time (1.0 = real time).
    Received {
        /// Speed-up factor.
        speed: f64,
    },
}

impl Pace {
    /// `rate` flows per second; 0, negative, infinite or NaN mean
    /// [`Pace::Unlimited`].
    pub fn rate(rate: f64) -> Pace {
        if rate.is_finite() && rate > 0.0 { Pace::Rate(rate) } else { Pace::Unlimited }
    }
}

/// Which time the datagram headers carry as their export time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportClock {
    /// The largest `received` (or `last`, if `received` is 0) of the
    /// datagram's flows; the wall clock if all are 0. Flow times decode
    /// exactly however old they are (within ~49 days of each other for
    /// v5 / v9).
    #[default]
    Flows,
    /// The wall clock when the datagram is due, as a live exporter. Flow
    /// times of v5 / v9 must then be within ~49 days before now.
    Wall,
}

/// When v9 / IPFIX templates are sent again. The first datagram always
/// carries them; after that whichever limit is reached first triggers a
/// refresh (0 / zero disables that limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateRefresh {
    /// Datagrams since the last template set.
    pub datagrams: u32,
    /// Time since the last template set.
    pub interval: Duration,
}

impl Default for TemplateRefresh {
    /// Every 20 datagrams or every second.
    fn default() -> TemplateRefresh {
        TemplateRefresh { datagrams: 20, interval: Duration::from_secs(1) }
    }
}

/// What and how to send. [`SendOptions::new`] gives the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SendOptions {
    /// Where to send (the collector).
    pub target: SocketAddr,
    /// Local address to send from; default: the unspecified address of
    /// the target's family, any port.
    pub bind: Option<SocketAddr>,
    /// Export protocol.
    pub format: Format,
    /// Pacing (default [`Pace::Unlimited`]).
    pub pace: Pace,
    /// Most flows in one datagram. Default: v5 30 (its maximum), v9/IPFIX
    /// as many as fit into `max_datagram`, sFlow 7 samples.
    pub flows_per_datagram: Option<usize>,
    /// Largest datagram for v9 / IPFIX / sFlow (default 1400 bytes).
    pub max_datagram: usize,
    /// Template refresh of v9 / IPFIX.
    pub template_refresh: TemplateRefresh,
    /// Export time of the headers (default [`ExportClock::Flows`]).
    pub clock: ExportClock,
    /// Longest span of due times within one datagram (default 100 ms).
    pub max_delay: Duration,
    /// v9 source id, IPFIX observation domain, sFlow sub-agent id, v5
    /// engine type (high byte) and id (low byte).
    pub domain: u32,
    /// sFlow agent address; default: the socket's local address.
    pub agent: Option<IpAddr>,
    /// Packet sampling rate announced (1 in N; v5 header and sFlow
    /// samples; 0 and 1 mean unsampled). Counters are sent as they are.
    pub sampling_rate: u32,
    /// When the exporter booted (ms since the epoch); default: an hour
    /// before the first flow's `first` (with [`ExportClock::Wall`]: or
    /// before now, if earlier).
    pub boot_ms: Option<u64>,
}

impl SendOptions {
    /// Defaults for sending `format` to `target` as fast as possible.
    pub fn new(target: SocketAddr, format: Format) -> SendOptions {
        SendOptions {
            target,
            bind: None,
            format,
            pace: Pace::Unlimited,
            flows_per_datagram: None,
            max_datagram: 1400,
            template_refresh: TemplateRefresh::default(),
            clock: ExportClock::default(),
            max_delay: Duration::from_millis(100),
            domain: 0,
            agent: None,
            sampling_rate: 1,
            boot_ms: None,
        }
    }
}

/// What a [`send`] run did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SendReport {
    /// Datagrams sent.
    pub datagrams: u64,
    /// Flows in those datagrams.
    pub flows: u64,
    /// UDP payload bytes sent.
    pub bytes: u64,
    /// Flows the format cannot carry (IPv6 in v5), not sent.
    pub skipped: u64,
    /// Datagrams the kernel refused (connection refused twice in a row:
    /// nothing listens at the target); their sequence numbers are used.
    pub send_errors: u64,
    /// Time from the start to the last datagram.
    pub elapsed: Duration,
    /// `flows / elapsed` in flows per second.
    pub achieved_rate: f64,
}

/// Template id of IPv4 flows in v9 / IPFIX.
pub const TEMPLATE_IPV4: u16 = 256;
/// Template id of IPv6 flows in v9 / IPFIX.
pub const TEMPLATE_IPV6: u16 = 257;
/// Bytes of each packet header put into an sFlow raw header record.
pub const SFLOW_HEADER_BYTES: usize = 128;

/// The data templates sent for `protocol`: [`TEMPLATE_IPV4`] and
/// [`TEMPLATE_IPV6`].
pub fn templates(protocol: TemplateProtocol) -> [Template; 2] {
    let mut v4 = Template::ipv4(TEMPLATE_IPV4, protocol);
    v4.fields.push(Field::new(32, 2));
    let mut v6 = Template::ipv6(TEMPLATE_IPV6, protocol);
    v6.fields.push(Field::new(139, 2));
    [v4, v6]
}

/// The packet an sFlow sample of `flow` describes: [`Packet::from_flow`]
/// with a zero payload that makes the IP length the flow's mean packet
/// size (`bytes / packets`, rounded; at least the headers, at most
/// 65 000). The sample's frame length is `ethernet_frame().len() + 4`.
pub fn sflow_packet(flow: &FlowRecord) -> Packet {
    let mut p = Packet::from_flow(flow);
    let ip_header: u64 = if p.src.is_ipv4() { 20 } else { 40 };
    let l4: u64 = match p.proto {
        6 => 20,
        17 | 1 | 58 => 8,
        _ => 0,
    };
    let mean = match flow.packets {
        0 => flow.bytes,
        n => (flow.bytes + n / 2) / n,
    };
    p.payload_len = mean.min(65_000).saturating_sub(ip_header + l4) as u16;
    p
}

/// Whether NetFlow v5 can carry the flow: IPv4 addresses only (v5 flows
/// that cannot are skipped and counted in [`SendReport::skipped`]).
pub fn v5_can_carry(f: &FlowRecord) -> bool {
    f.src_addr.is_none_or(is_ipv4_mapped) && f.dst_addr.is_none_or(is_ipv4_mapped)
}

/// One exporter's datagram writer.
enum Builder {
    Legacy(LegacyEncoder),
    Template(TemplateEncoder),
    Sflow(SflowBuilder),
}

struct SflowBuilder {
    agent: Agent,
    boot_ms: u64,
    rate: u32,
    max_datagram: usize,
    samples: Vec<Sample>,
}

impl Builder {
    fn new(opts: &SendOptions, boot_ms: u64, agent: IpAddr) -> Builder {
        match opts.format {
            Format::V5 => {
                let mut e = LegacyEncoder::new(LegacyVersion::V5, boot_ms);
                e.engine_type = (opts.domain >> 8) as u8;
                e.engine_id = opts.domain as u8;
                if opts.sampling_rate > 1 {
                    e.sampling = 0x4000 | (opts.sampling_rate.min(0x3fff) as u16);
                }
                Builder::Legacy(e)
            }
            Format::V9 | Format::Ipfix => {
                let p = if opts.format == Format::V9 {
                    TemplateProtocol::V9
                } else {
                    TemplateProtocol::Ipfix
                };
                let mut e = TemplateEncoder::new(p, opts.domain, boot_ms);
                e.max_datagram = opts.max_datagram;
                for t in templates(p) {
                    e.add_template(t);
                }
                Builder::Template(e)
            }
            Format::Sflow => Builder::Sflow(SflowBuilder {
                agent: Agent::new(agent, opts.domain),
                boot_ms,
                rate: opts.sampling_rate.max(1),
                max_datagram: opts.max_datagram,
                samples: Vec::new(),
            }),
        }
    }

    /// Flows one datagram can hold at most.
    fn capacity(&self, opts: &SendOptions) -> usize {
        let fit = match self {
            Builder::Legacy(e) => e.max_records(),
            Builder::Template(e) => {
                let smallest = e
                    .templates()
                    .iter()
                    .map(|t| t.fields.iter().map(|f| usize::from(f.length)).sum::<usize>())
                    .min()
                    .unwrap_or(1)
                    .max(1);
                opts.max_datagram.saturating_sub(20) / smallest + 1
            }
            Builder::Sflow(_) => 7,
        };
        match (self, opts.flows_per_datagram) {
            (Builder::Legacy(_), Some(n)) => n.clamp(1, fit),
            (_, Some(n)) => n.max(1),
            (_, None) => fit,
        }
    }

    /// Writes one datagram from the front of `flows` into `out`; returns
    /// how many flows it took (at least one when `flows` is not empty).
    fn build(
        &mut self,
        flows: &[FlowRecord],
        export_ms: u64,
        with_templates: bool,
        out: &mut Vec<u8>,
    ) -> usize {
        match self {
            Builder::Legacy(e) => e.encode_into(flows, export_ms, out),
            Builder::Template(e) => e.encode_into(
                flows,
                |f| if v5_can_carry(f) { TEMPLATE_IPV4 } else { TEMPLATE_IPV6 },
                export_ms,
                with_templates,
                out,
            ),
            Builder::Sflow(s) => s.build(flows, export_ms, out),
        }
    }
}

impl SflowBuilder {
    fn build(&mut self, flows: &[FlowRecord], export_ms: u64, out: &mut Vec<u8>) -> usize {
        // Datagram header with an IPv6 agent; then per sample: sample
        // header 8, compact flow sample fields 32, record header 8, raw
        // header fields 16, the header padded to 4 bytes.
        let mut size = 40;
        let mut samples = std::mem::take(&mut self.samples);
        samples.clear();
        for f in flows {
            let record = sflow_packet(f).raw_header(SFLOW_HEADER_BYTES);
            let header_len = match &record {
                FlowData::RawHeader { header, .. } => header.len(),
                _ => 0,
            };
            let sample_size = 64 + header_len.div_ceil(4) * 4;
            if size + sample_size > self.max_datagram && !samples.is_empty() {
                break;
            }
            size += sample_size;
            let input = f.input_if.unwrap_or(0);
            samples.push(self.agent.flow_sample(
                input & 0x00ff_ffff,
                self.rate,
                Interface::Index(input),
                Interface::Index(f.output_if.unwrap_or(0)),
                vec![record],
            ));
        }
        let n = samples.len();
        let uptime = export_ms.saturating_sub(self.boot_ms) as u32;
        let dg = self.agent.datagram(uptime, samples);
        out.clear();
        dg.encode_into(out);
        self.samples = dg.samples;
        n
    }
}

/// Sends `flows` to `opts.target` as `opts.format` datagrams, paced per
/// `opts.pace`, until the flows run out or `stop` is set (checked before
/// each datagram and while waiting). Binds a UDP socket and connects it to
/// the target; returns an error if that fails or a send fails with
/// anything but "connection refused" (nothing listening yet: the datagram
/// is counted in [`SendReport::send_errors`] and sending goes on).
pub fn send(
    flows: impl IntoIterator<Item = FlowRecord>,
    opts: &SendOptions,
    stop: &AtomicBool,
) -> io::Result<SendReport> {
    let bind = opts.bind.unwrap_or(match opts.target {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    });
    let socket = UdpSocket::bind(bind)?;
    socket.connect(opts.target)?;
    let local = socket.local_addr()?.ip();
    let agent = opts.agent.unwrap_or(if local.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        local
    });

    let t0 = Instant::now();
    let wall0_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut report = SendReport::default();
    let mut flows = flows.into_iter();
    let v5 = opts.format == Format::V5;
    let max_delay = opts.max_delay.as_secs_f64();

    let mut builder: Option<Builder> = None;
    let mut capacity = opts.flows_per_datagram.unwrap_or(64).max(1);
    // Flows waiting for a datagram, with their due times (s after t0).
    let mut buf: Vec<FlowRecord> = Vec::with_capacity(capacity);
    let mut dues: Vec<f64> = Vec::with_capacity(capacity);
    let mut pending: Option<FlowRecord> = None;
    let mut exhausted = false;
    let mut accepted = 0u64;
    let mut first_received: Option<u64> = None;
    let mut out = Vec::with_capacity(opts.max_datagram.max(1500));
    let mut since_templates = 0u32;
    let mut templates_at = 0.0f64;
    let refresh = opts.template_refresh;

    while !stop.load(Ordering::Relaxed) {
        while buf.len() < capacity && !exhausted {
            let Some(f) = pending.take().or_else(|| flows.next()) else {
                exhausted = true;
                break;
            };
            if v5 && !v5_can_carry(&f) {
                report.skipped += 1;
                continue;
            }
            let due = match opts.pace {
                Pace::Unlimited => 0.0,
                Pace::Rate(r) => (accepted + 1) as f64 / r,
                Pace::Received { speed } if speed.is_finite() && speed > 0.0 => {
                    let r0 = *first_received.get_or_insert(f.received);
                    f.received.saturating_sub(r0) as f64 / 1000.0 / speed
                }
                Pace::Received { .. } => 0.0,
            };
            if dues.first().is_some_and(|&d0| due - d0 > max_delay) {
                pending = Some(f);
                break;
            }
            accepted += 1;
            buf.push(f);
            dues.push(due);
        }
        if buf.is_empty() {
            break;
        }
        let b = builder.get_or_insert_with(|| {
            let boot = opts.boot_ms.unwrap_or_else(|| {
                let first = buf
                    .iter()
                    .map(|f| if f.first > 0 { f.first } else { f.received })
                    .filter(|&t| t > 0)
                    .min();
                let earliest = match (opts.clock, first) {
                    (ExportClock::Flows, Some(t)) => t,
                    (ExportClock::Wall, Some(t)) => t.min(wall0_ms),
                    (_, None) => wall0_ms,
                };
                (earliest.saturating_sub(3_600_000)) / 1000 * 1000
            });
            let b = Builder::new(opts, boot, agent);
            capacity = b.capacity(opts);
            b
        });
        let now = t0.elapsed().as_secs_f64();
        let last_due = dues[buf.len().min(capacity) - 1];
        let limit = buf.len().min(capacity);
        let wall_ms = wall0_ms + (now.max(last_due) * 1000.0) as u64;
        let export_ms = match opts.clock {
            ExportClock::Wall => wall_ms,
            ExportClock::Flows => {
                let t = buf[..limit]
                    .iter()
                    .map(|f| if f.received > 0 { f.received } else { f.last })
                    .max()
                    .unwrap_or(0);
                if t > 0 { t } else { wall_ms }
            }
        }
        // Whole seconds, rounded up: v9 headers have no milliseconds, and
        // a decoder clamps flows that end after their datagram's export.
        .div_ceil(1000)
            * 1000;
        let with_templates = report.datagrams + report.send_errors == 0
            || (refresh.datagrams > 0 && since_templates >= refresh.datagrams)
            || (!refresh.interval.is_zero()
                && now - templates_at >= refresh.interval.as_secs_f64());
        let n = b.build(&buf[..limit], export_ms, with_templates, &mut out);
        if with_templates {
            since_templates = 0;
            templates_at = now;
        }
        since_templates += 1;
        if !wait_until(t0, dues[n - 1], stop) {
            break;
        }
        if send_datagram(&socket, &out)? {
            report.datagrams += 1;
            report.flows += n as u64;
            report.bytes += out.len() as u64;
        } else {
            report.send_errors += 1;
        }
        report.elapsed = t0.elapsed();
        buf.drain(..n);
        dues.drain(..n);
    }
    let secs = report.elapsed.as_secs_f64();
    report.achieved_rate = if secs > 0.0 { report.flows as f64 / secs } else { 0.0 };
    Ok(report)
}

/// Encodes `flows` into the datagrams [`send`] would send for `opts`, all
/// at once, with no socket and no pacing (for captures, tests and the
/// collector's benchmark). Export times follow the flows
/// ([`ExportClock::Flows`] whatever `opts.clock` says); the sFlow agent is
/// `opts.agent`, else 127.0.0.1; templates are refreshed every
/// `opts.template_refresh.datagrams` datagrams (the interval is ignored).
pub fn encode(flows: &[FlowRecord], opts: &SendOptions) -> Vec<Vec<u8>> {
    let flows: Vec<FlowRecord> = if opts.format == Format::V5 {
        flows.iter().filter(|f| v5_can_carry(f)).cloned().collect()
    } else {
        flows.to_vec()
    };
    let earliest = flows
        .iter()
        .map(|f| if f.first > 0 { f.first } else { f.received })
        .filter(|&t| t > 0)
        .min()
        .unwrap_or(0);
    let boot = opts.boot_ms.unwrap_or(earliest.saturating_sub(3_600_000) / 1000 * 1000);
    let agent = opts.agent.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut b = Builder::new(opts, boot, agent);
    let capacity = b.capacity(opts);
    let mut out = Vec::new();
    let mut rest = &flows[..];
    let mut since_templates = 0u32;
    while !rest.is_empty() {
        let limit = rest.len().min(capacity);
        let export_ms = rest[..limit]
            .iter()
            .map(|f| if f.received > 0 { f.received } else { f.last })
            .max()
            .unwrap_or(0)
            .div_ceil(1000)
            * 1000;
        let refresh = opts.template_refresh.datagrams;
        let with_templates = out.is_empty() || (refresh > 0 && since_templates >= refresh);
        if with_templates {
            since_templates = 0;
        }
        since_templates += 1;
        let mut dg = Vec::with_capacity(opts.max_datagram.max(1500));
        let n = b.build(&rest[..limit], export_ms, with_templates, &mut dg).max(1);
        out.push(dg);
        rest = &rest[n.min(rest.len())..];
    }
    out
}

/// Waits until `due` seconds after `t0`: sleeps for gaps of 200 µs and
/// more (at most 50 ms at a time, to notice `stop`), yields below.
/// Returns false if `stop` was set.
fn wait_until(t0: Instant, due: f64, stop: &AtomicBool) -> bool {
    loop {
        let gap = due - t0.elapsed().as_secs_f64();
        if gap <= 0.0 {
            return true;
        }
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        if gap >= 200e-6 {
            std::thread::sleep(Duration::from_secs_f64(gap.min(0.05)));
        } else {
            std::thread::yield_now();
        }
    }
}

/// Sends one datagram. Ok(false): refused twice (nothing listening).
fn send_datagram(socket: &UdpSocket, datagram: &[u8]) -> io::Result<bool> {
    let mut refused = 0;
    loop {
        match socket.send(datagram) {
            Ok(_) => return Ok(true),
            // An ICMP port unreachable for an earlier datagram is reported
            // once, instead of sending this one: try again, once.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                refused += 1;
                if refused == 2 {
                    return Ok(false);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_print() {
        for f in [Format::V5, Format::V9, Format::Ipfix, Format::Sflow] {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        assert_eq!("IPFIX".parse::<Format>().unwrap(), Format::Ipfix);
        assert!("v8".parse::<Format>().is_err());
    }

    #[test]
    fn pace_rate_maps_unlimited() {
        assert_eq!(Pace::rate(0.0), Pace::Unlimited);
        assert_eq!(Pace::rate(f64::INFINITY), Pace::Unlimited);
        assert_eq!(Pace::rate(f64::NAN), Pace::Unlimited);
        assert_eq!(Pace::rate(5.0), Pace::Rate(5.0));
    }

    #[test]
    fn sflow_packet_has_mean_size() {
        let f = FlowRecord {
            src_addr: Some(0xffff_0a00_0001),
            dst_addr: Some(0xffff_0a00_0002),
            proto: 6,
            packets: 3,
            bytes: 3000,
            ..Default::default()
        };
        assert_eq!(sflow_packet(&f).ip_packet().len(), 1000);
        let tiny = FlowRecord { packets: 1, bytes: 1, ..f };
        assert_eq!(sflow_packet(&tiny).ip_packet().len(), 40);
    }
}
