//! The sender against a real loopback receiver and weir's decoder.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use weir_collect::send::{Format, Pace, SendOptions, SendReport, send, sflow_packet};
use weir_decode::{Datagram, Decoder, DecoderConfig, SamplingPolicy, Sink};
use weir_gen::{GenConfig, Generator};
use weir_record::{FlowRecord, is_ipv4_mapped};

/// A receiver thread on 127.0.0.1 that keeps every datagram until told to
/// stop (then drains what is queued).
struct Receiver {
    addr: SocketAddr,
    done: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(SocketAddr, Vec<u8>)>>,
}

impl Receiver {
    fn start(keep: bool) -> Receiver {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let addr = sock.local_addr().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let thread = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65_536];
            // Hard bound: no test sends for more than 20 s.
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                match sock.recv_from(&mut buf) {
                    Ok((n, from)) if keep => got.push((from, buf[..n].to_vec())),
                    Ok(_) => {}
                    Err(_) if flag.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
            got
        });
        Receiver { addr, done, thread }
    }

    /// A receiver that never sleeps in `recv` (non-blocking, yielding when
    /// the queue is empty) and discards everything.
    fn polling() -> Receiver {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_nonblocking(true).unwrap();
        let addr = sock.local_addr().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            let deadline = Instant::now() + Duration::from_secs(60);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                if sock.recv_from(&mut buf).is_err() {
                    std::thread::yield_now();
                }
            }
            Vec::new()
        });
        Receiver { addr, done, thread }
    }

    fn finish(self) -> Vec<(SocketAddr, Vec<u8>)> {
        self.done.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

#[derive(Default)]
struct Collect(Vec<FlowRecord>);

impl Sink for Collect {
    fn flow(&mut self, f: &FlowRecord) {
        self.0.push(f.clone());
    }
}

fn generated(n: usize) -> Vec<FlowRecord> {
    let cfg = GenConfig { seed: 11, duration_ms: 600_000, rate: 5_000.0, ..GenConfig::default() };
    let v: Vec<FlowRecord> = Generator::new(cfg).take(n).collect();
    assert_eq!(v.len(), n);
    v
}

/// Sends `flows` as `format` at 50k flows/s, decodes what arrived and
/// returns (report, decoded flows, decoder).
fn roundtrip(format: Format, flows: &[FlowRecord]) -> (SendReport, Vec<FlowRecord>, Decoder) {
    let rx = Receiver::start(true);
    let mut opts = SendOptions::new(rx.addr, format);
    opts.pace = Pace::rate(50_000.0);
    let report = send(flows.iter().cloned(), &opts, &AtomicBool::new(false)).unwrap();
    let got = rx.finish();
    assert_eq!(got.len() as u64, report.datagrams, "{format}: datagrams lost on loopback");
    assert_eq!(got.iter().map(|d| d.1.len() as u64).sum::<u64>(), report.bytes);
    let mut dec =
        Decoder::new(DecoderConfig { sampling: SamplingPolicy::Raw, ..Default::default() });
    let mut sink = Collect::default();
    for (i, (from, payload)) in got.iter().enumerate() {
        let dg = Datagram { exporter: *from, received_ms: 1_709_532_000_000, payload };
        let info = dec.decode(&dg, &mut sink).unwrap();
        assert!(info.errors.is_empty(), "{format} datagram {i}: {:?}", info.errors);
        assert_eq!(info.unknown_template_sets, 0, "{format} datagram {i}");
    }
    assert_eq!(dec.accounts().len(), 1, "{format}: one exporter");
    for (key, acc) in dec.accounts().iter() {
        assert_eq!(acc.sequence_failures, 0, "{format} {key:?}");
        assert_eq!(acc.unknown_template_sets, 0, "{format} {key:?}");
        assert_eq!(acc.decode_errors(), 0, "{format} {key:?}");
        assert_eq!(acc.flows, report.flows);
    }
    (report, sink.0, dec)
}

type Key = (Option<u128>, Option<u128>, u16, u16, u8);

fn key(f: &FlowRecord) -> Key {
    (f.src_addr, f.dst_addr, f.src_port, f.dst_port, f.proto)
}

fn check_netflow(format: Format) {
    let flows = generated(20_000);
    let (report, got, _) = roundtrip(format, &flows);
    let sent: Vec<&FlowRecord> = if format == Format::V5 {
        flows.iter().filter(|f| is_ipv4_mapped(f.src_addr.unwrap())).collect()
    } else {
        flows.iter().collect()
    };
    let v6 = flows.len() - sent.len();
    assert_eq!(report.skipped as usize, v6);
    if format == Format::V5 {
        assert!(v6 > 1000, "the generator makes ~10 % IPv6: {v6}");
    }
    assert_eq!(report.flows as usize, sent.len());
    assert_eq!(got.len(), sent.len(), "{format}");
    for (i, (s, g)) in sent.iter().zip(&got).enumerate() {
        assert_eq!(key(g), key(s), "{format} flow {i}");
        assert_eq!((g.packets, g.bytes), (s.packets, s.bytes), "{format} flow {i}");
        assert_eq!((g.tcp_flags, g.src_tos), (s.tcp_flags, s.src_tos), "{format} flow {i}");
        assert_eq!((g.first, g.last), (s.first, s.last), "{format} flow {i}");
        assert_eq!((g.input_if, g.output_if), (s.input_if, s.output_if), "{format} flow {i}");
    }
    let per_dg = report.flows as f64 / report.datagrams as f64;
    match format {
        Format::V5 => assert!(per_dg > 29.0, "{per_dg}"),
        _ => assert!(per_dg > 15.0, "{per_dg}"),
    }
}

#[test]
fn v5_roundtrip_skips_ipv6() {
    check_netflow(Format::V5);
}

#[test]
fn v9_roundtrip() {
    check_netflow(Format::V9);
}

#[test]
fn ipfix_roundtrip() {
    check_netflow(Format::Ipfix);
}

#[test]
fn sflow_roundtrip() {
    let flows = generated(20_000);
    let (report, got, _) = roundtrip(Format::Sflow, &flows);
    assert_eq!((report.flows, report.skipped), (20_000, 0));
    assert_eq!(got.len(), flows.len());
    assert_eq!(report.datagrams, 20_000_u64.div_ceil(7));
    for (i, (s, g)) in flows.iter().zip(&got).enumerate() {
        assert_eq!(key(g), key(s), "flow {i}");
        assert_eq!(g.tcp_flags, s.tcp_flags, "flow {i}");
        // One sample of one packet of the flow, of the flow's mean size.
        let frame = sflow_packet(s).ethernet_frame().len() as u64 + 4;
        assert_eq!((g.packets, g.bytes), (1, frame), "flow {i}");
        let vlan = 4 * u64::from(s.src_vlan.is_some());
        let ip_len = g.bytes - 18 - vlan;
        let mean = (s.bytes + s.packets / 2) / s.packets;
        let headers_only = sflow_packet(s).payload_len == 0;
        assert!(
            ip_len == mean || (headers_only && mean < ip_len),
            "flow {i}: ip length {ip_len}, mean {mean}"
        );
        assert_eq!(g.src_vlan, s.src_vlan, "flow {i}");
        assert_eq!((g.input_if, g.output_if), (s.input_if, s.output_if), "flow {i}");
        assert_eq!(g.sampling_rate, Some(1));
    }
}

#[test]
fn templates_are_refreshed() {
    // 40 v9 datagrams at the default refresh (20 datagrams) carry the
    // template set in datagrams 0 and 20 only.
    let flows = generated(400);
    let rx = Receiver::start(true);
    let mut opts = SendOptions::new(rx.addr, Format::V9);
    opts.flows_per_datagram = Some(10);
    opts.pace = Pace::rate(100_000.0);
    let report = send(flows, &opts, &AtomicBool::new(false)).unwrap();
    let got = rx.finish();
    assert_eq!((report.datagrams, got.len()), (40, 40));
    let with: Vec<usize> = got
        .iter()
        .enumerate()
        .filter(|(_, (_, p))| u16::from_be_bytes([p[20], p[21]]) == 0) // set id 0: templates
        .map(|(i, _)| i)
        .collect();
    assert_eq!(with, [0, 20]);
    for (i, (_, p)) in got.iter().enumerate() {
        assert_eq!(u32::from_be_bytes([p[12], p[13], p[14], p[15]]), i as u32, "v9 sequence");
    }
}

#[test]
fn pacing_follows_the_rate() {
    let flows = generated(5_000);
    let rx = Receiver::start(false);
    let mut opts = SendOptions::new(rx.addr, Format::V9);
    opts.pace = Pace::rate(10_000.0);
    let t0 = Instant::now();
    let report = send(flows, &opts, &AtomicBool::new(false)).unwrap();
    let wall = t0.elapsed().as_secs_f64();
    rx.finish();
    assert_eq!(report.flows, 5_000);
    assert!((0.45..0.55).contains(&wall), "5000 flows at 10k/s took {wall} s");
    let secs = report.elapsed.as_secs_f64();
    assert!((0.49..0.52).contains(&secs), "{secs}");
    assert!((9_700.0..10_300.0).contains(&report.achieved_rate), "{}", report.achieved_rate);
}

#[test]
fn low_rates_send_partly_filled_datagrams() {
    // At 100 flows/s a v9 datagram holds the flows of 100 ms: 10.
    let flows = generated(40);
    let rx = Receiver::start(true);
    let mut opts = SendOptions::new(rx.addr, Format::V9);
    opts.pace = Pace::rate(100.0);
    let t0 = Instant::now();
    let report = send(flows, &opts, &AtomicBool::new(false)).unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let got = rx.finish();
    assert_eq!((report.flows, report.datagrams, got.len()), (40, 4, 4));
    assert!((0.38..0.45).contains(&wall), "{wall}");
}

#[test]
fn received_times_pace_a_replay() {
    // Flows 0..300 ms apart by their receive times, replayed at twice the
    // speed: about 150 ms.
    let flows: Vec<FlowRecord> = (0..31u64)
        .map(|i| FlowRecord {
            src_addr: Some(0xffff_0a00_0001),
            dst_addr: Some(0xffff_0a00_0002),
            proto: 17,
            packets: 1,
            bytes: 100,
            first: 1_709_532_000_000 + i * 10,
            last: 1_709_532_000_000 + i * 10,
            received: 1_709_532_000_000 + i * 10,
            ..Default::default()
        })
        .collect();
    let rx = Receiver::start(false);
    let mut opts = SendOptions::new(rx.addr, Format::Ipfix);
    opts.pace = Pace::Received { speed: 2.0 };
    let t0 = Instant::now();
    let report = send(flows, &opts, &AtomicBool::new(false)).unwrap();
    let wall = t0.elapsed().as_secs_f64();
    rx.finish();
    assert_eq!(report.flows, 31);
    assert!((0.14..0.2).contains(&wall), "{wall}");
}

#[test]
fn stop_ends_the_run() {
    let rx = Receiver::start(false);
    let mut opts = SendOptions::new(rx.addr, Format::Sflow);
    opts.pace = Pace::rate(1_000.0);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        flag.store(true, Ordering::Relaxed);
    });
    let t0 = Instant::now();
    // An endless stream: only `stop` ends it.
    let endless = std::iter::repeat_with(FlowRecord::default);
    let report = send(endless, &opts, &stop).unwrap();
    stopper.join().unwrap();
    rx.finish();
    assert!(t0.elapsed() < Duration::from_millis(300));
    assert!((50..=150).contains(&report.flows), "{}", report.flows);
}

#[test]
fn nothing_listening_is_counted_not_fatal() {
    // Bind and drop a socket to get a port nobody listens on.
    let addr = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut opts = SendOptions::new(addr, Format::V5);
    opts.pace = Pace::rate(20_000.0);
    // Whether the kernel reports the ICMP port unreachables (refused
    // sends) depends on the host; either way the run completes.
    let report = send(generated(300), &opts, &AtomicBool::new(false)).unwrap();
    assert_eq!(report.datagrams + report.send_errors, 300_u64.div_ceil(30) - 1, "{report:?}");
}

/// Sending throughput at an unlimited rate to a 127.0.0.1 receiver that
/// discards, blocking in `recv` (an idle collector: every datagram wakes
/// it) or polling (a busy one):
/// `cargo test --release -p weir-collect --test send throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let flows = generated(2_000_000);
    let cfg = GenConfig { seed: 3, duration_ms: 1_000_000, rate: 2_000.0, ..GenConfig::default() };
    for busy in [false, true] {
        let reader = if busy { "polling reader" } else { "blocking reader" };
        for format in [Format::V9, Format::Ipfix, Format::V5, Format::Sflow] {
            let rx = if busy { Receiver::polling() } else { Receiver::start(false) };
            let opts = SendOptions::new(rx.addr, format);
            // A prepared Vec (as `weir replay` would read flows), moved in.
            let r = send(flows.clone(), &opts, &AtomicBool::new(false)).unwrap();
            rx.finish();
            println!(
                "{reader}, {format}: {} flows in {} datagrams ({:.1} flows/datagram) in {:.3} s: {:.2} M flows/s, {:.0} k datagrams/s",
                r.flows,
                r.datagrams,
                r.flows as f64 / r.datagrams as f64,
                r.elapsed.as_secs_f64(),
                r.achieved_rate / 1e6,
                r.datagrams as f64 / r.elapsed.as_secs_f64() / 1e3
            );
        }
        // With the generator in the loop (what `weir gen --send` does).
        for format in [Format::V9, Format::Sflow] {
            let rx = if busy { Receiver::polling() } else { Receiver::start(false) };
            let opts = SendOptions::new(rx.addr, format);
            let r = send(Generator::new(cfg.clone()), &opts, &AtomicBool::new(false)).unwrap();
            rx.finish();
            println!(
                "{reader}, {format} from the generator: {} flows in {:.3} s: {:.2} M flows/s",
                r.flows,
                r.elapsed.as_secs_f64(),
                r.achieved_rate / 1e6
            );
        }
    }
}
