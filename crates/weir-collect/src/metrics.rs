//! The Prometheus endpoint: text exposition format over a minimal HTTP/1.0
//! responder. The decode thread renders a fresh page about once a second;
//! the server thread only copies it out, so scrapes never slow decoding.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use weir_decode::Accounts;

use crate::listen::Listener;
use crate::slots::FinishStats;

/// The latest rendered page.
pub(crate) type Page = Arc<Mutex<String>>;

fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Renders every counter in Prometheus text format.
pub(crate) fn render(
    accounts: &Accounts,
    listeners: &[(Listener, &'static str)],
    finish: &FinishStats,
    unknown: &HashMap<IpAddr, u64>,
) -> String {
    let mut o = String::new();
    let mut family =
        |name: &str, help: &str, kind: &str, rows: &mut dyn Iterator<Item = (String, u64)>| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(o, "{name}{labels} {v}");
            }
        };
    let ex = |k: &weir_decode::AccountKey| {
        format!(
            "exporter=\"{}\",protocol=\"{}\",domain=\"{}\"",
            k.exporter,
            k.protocol.map_or("unknown", |p| p.name()),
            k.domain
        )
    };
    let per = |f: fn(&weir_decode::Account) -> u64| -> Vec<(String, u64)> {
        accounts.iter().map(|(k, a)| (format!("{{{}}}", ex(k)), f(a))).collect()
    };
    family(
        "weir_datagrams_total",
        "Datagrams received per exporter.",
        "counter",
        &mut per(|a| a.datagrams).into_iter(),
    );
    family(
        "weir_payload_bytes_total",
        "UDP payload bytes received per exporter.",
        "counter",
        &mut per(|a| a.payload_bytes).into_iter(),
    );
    family(
        "weir_flows_total",
        "Flows decoded per exporter.",
        "counter",
        &mut per(|a| a.flows).into_iter(),
    );
    family(
        "weir_flow_packets_total",
        "Packets in decoded flows (after sampling).",
        "counter",
        &mut per(|a| a.packets).into_iter(),
    );
    family(
        "weir_flow_bytes_total",
        "Bytes in decoded flows (after sampling).",
        "counter",
        &mut per(|a| a.bytes).into_iter(),
    );
    family(
        "weir_sequence_failures_total",
        "Sequence numbers missed per exporter.",
        "counter",
        &mut per(|a| a.sequence_failures).into_iter(),
    );
    family(
        "weir_unknown_template_sets_total",
        "Data sets whose template was unknown.",
        "counter",
        &mut per(|a| a.unknown_template_sets).into_iter(),
    );
    let errs: Vec<(String, u64)> = accounts
        .iter()
        .flat_map(|(k, a)| {
            a.errors.iter().map(move |(kind, n)| (format!("{{{},kind=\"{kind}\"}}", ex(k)), *n))
        })
        .collect();
    family(
        "weir_decode_errors_total",
        "Decode errors per exporter and kind.",
        "counter",
        &mut errs.into_iter(),
    );
    let lis = |f: fn(&crate::listen::ListenerStats) -> u64| -> Vec<(String, u64)> {
        listeners
            .iter()
            .map(|(l, kind)| (format!("{{listener=\"{}\",kind=\"{kind}\"}}", l.addr), f(&l.stats)))
            .collect()
    };
    family(
        "weir_received_datagrams_total",
        "Datagrams received per listener.",
        "counter",
        &mut lis(|s| s.datagrams.load(Ordering::Relaxed)).into_iter(),
    );
    family(
        "weir_queue_dropped_datagrams_total",
        "Datagrams dropped because the decode queue was full.",
        "counter",
        &mut lis(|s| s.queue_drops.load(Ordering::Relaxed)).into_iter(),
    );
    family(
        "weir_repeat_errors_total",
        "Datagrams a repeater could not forward.",
        "counter",
        &mut lis(|s| s.repeat_errors.load(Ordering::Relaxed)).into_iter(),
    );
    family(
        "weir_repeat_unspoofed_total",
        "Datagrams the spoofing repeater (-A) forwarded from its own address (IPv6, or larger than the MTU).",
        "counter",
        &mut lis(|s| s.repeat_unspoofed.load(Ordering::Relaxed)).into_iter(),
    );
    let kdrops: Vec<(String, u64)> = listeners
        .iter()
        .filter_map(|(l, kind)| {
            Some((
                format!("{{listener=\"{}\",kind=\"{kind}\"}}", l.addr),
                crate::listen::kernel_drops(l)?,
            ))
        })
        .collect();
    family(
        "weir_socket_dropped_datagrams",
        "Datagrams the kernel dropped on the socket (receive buffer full).",
        "gauge",
        &mut kdrops.into_iter(),
    );
    let unk: Vec<(String, u64)> = unknown
        .iter()
        .map(|(ip, n)| (format!("{{exporter=\"{}\"}}", label(&ip.to_string())), *n))
        .collect();
    family(
        "weir_unknown_exporter_datagrams_total",
        "Datagrams dropped because their exporter belongs to no source.",
        "counter",
        &mut unk.into_iter(),
    );
    let one = |v: u64| vec![(String::new(), v)].into_iter();
    family(
        "weir_files_written_total",
        "Slot files published.",
        "counter",
        &mut one(finish.files_written.load(Ordering::Relaxed)),
    );
    family(
        "weir_write_errors_total",
        "Slot files that could not be written.",
        "counter",
        &mut one(finish.write_errors.load(Ordering::Relaxed)),
    );
    family(
        "weir_flows_lost_total",
        "Flows decoded but not stored (disk errors).",
        "counter",
        &mut one(finish.flows_lost.load(Ordering::Relaxed)),
    );
    family(
        "weir_last_rotation_timestamp_ms",
        "When the last slot was published (ms since the epoch).",
        "gauge",
        &mut one(finish.last_rotation_ms.load(Ordering::Relaxed)),
    );
    family(
        "weir_last_rotation_duration_us",
        "How long publishing the last slot took (µs).",
        "gauge",
        &mut one(finish.last_rotation_micros.load(Ordering::Relaxed)),
    );
    let h = &finish.headers;
    let not_kept = vec![
        ("{reason=\"link_type\"}".to_string(), h.skipped.load(Ordering::Relaxed)),
        ("{reason=\"write_error\"}".to_string(), h.lost.load(Ordering::Relaxed)),
    ];
    family(
        "weir_sflow_headers_stored_total",
        "sFlow sampled packet headers written to the slots' pcaps (--sflow-pcap).",
        "counter",
        &mut one(h.stored.load(Ordering::Relaxed)),
    );
    family(
        "weir_sflow_headers_not_stored_total",
        "sFlow sampled packet headers not written, by reason (--sflow-pcap).",
        "counter",
        &mut not_kept.into_iter(),
    );
    o
}

/// Binds the metrics endpoint.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `page` at `/metrics` until `stop`.
pub(crate) fn serve(
    listener: TcpListener,
    page: Page,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let h = std::thread::Builder::new().name("metrics".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                    let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
                    let mut req = [0u8; 2048];
                    let n = conn.read(&mut req).unwrap_or(0);
                    let line = String::from_utf8_lossy(&req[..n]);
                    let path = line.split_whitespace().nth(1).unwrap_or("");
                    let (status, body) = if path == "/metrics" || path == "/" {
                        ("200 OK", page.lock().map(|p| p.clone()).unwrap_or_default())
                    } else {
                        ("404 Not Found", "not found: try /metrics\n".to_string())
                    };
                    let _ = write!(
                        conn,
                        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    })?;
    Ok(h)
}
