//! UDP listeners: one receive thread per socket, feeding a bounded queue.
//! The receive path never waits on disk, decoding or rotation: when the
//! queue is full the datagram is dropped and counted.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};

/// One received datagram on its way to the decoder.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) payload: Vec<u8>,
    pub(crate) src: SocketAddr,
    pub(crate) received_ms: u64,
}

/// Counters of one listener, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub(crate) struct ListenerStats {
    pub(crate) datagrams: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) queue_drops: AtomicU64,
    pub(crate) repeat_errors: AtomicU64,
}

/// Queue drops per exporter, drained into slot footers at rotation.
pub(crate) type DropMap = Arc<Mutex<HashMap<IpAddr, u64>>>;

/// A bound socket and its counters.
pub(crate) struct Listener {
    pub(crate) addr: SocketAddr,
    pub(crate) socket: UdpSocket,
    pub(crate) stats: Arc<ListenerStats>,
}

/// How long a receive thread blocks before it looks at the stop flag.
const RECV_TIMEOUT: Duration = Duration::from_millis(200);

/// Binds `addr` with SO_REUSEADDR, IPv6-only for `::` (so that `0.0.0.0`
/// and `[::]` can both be bound), the requested receive buffer, and a read
/// timeout so that threads notice shutdown.
pub(crate) fn bind(addr: SocketAddr, rcvbuf: Option<usize>) -> io::Result<Listener> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if let Some(n) = rcvbuf {
        s.set_recv_buffer_size(n)?;
    }
    s.bind(&addr.into())?;
    let socket: UdpSocket = s.into();
    socket.set_read_timeout(Some(RECV_TIMEOUT))?;
    let addr = socket.local_addr()?;
    Ok(Listener { addr, socket, stats: Arc::new(ListenerStats::default()) })
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Starts the receive thread of a listener.
pub(crate) fn spawn(
    l: &Listener,
    queue: SyncSender<Vec<Received>>,
    repeaters: Arc<Vec<SocketAddr>>,
    drops: DropMap,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let socket = l.socket.try_clone()?;
    let stats = l.stats.clone();
    let repeat = if repeaters.is_empty() {
        None
    } else {
        let any: SocketAddr =
            if l.addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }.parse().expect("literal");
        let s = UdpSocket::bind(any)?;
        s.set_nonblocking(true)?;
        Some(s)
    };
    std::thread::Builder::new().name(format!("recv {}", l.addr)).spawn(move || {
        let mut buf = vec![0u8; 65_536];
        let mut batch: Vec<Received> = Vec::with_capacity(BATCH);
        while !stop.load(Ordering::Relaxed) {
            // Block for the first datagram, then drain what the socket
            // already holds without blocking: one hand-off (and one wake-up
            // of the decode thread) per batch instead of per datagram.
            match socket.recv_from(&mut buf) {
                Ok((n, src)) => {
                    batch.push(received(&buf[..n], src, &stats, repeat.as_ref(), &repeaters))
                }
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
                {
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
            // Traffic is flowing: poll every POLL_INTERVAL, draining what
            // arrived, until a round finds the socket empty. This turns one
            // wake-up per datagram (two threads) into at most one per
            // interval; the socket buffer (-B) absorbs the interval.
            if socket.set_nonblocking(true).is_ok() {
                // The first round runs right after the blocking receive;
                // polling ends when a round after a sleep finds nothing.
                let mut slept = false;
                loop {
                    let mut got = 0usize;
                    while let Ok((n, src)) = socket.recv_from(&mut buf) {
                        got += 1;
                        batch.push(received(&buf[..n], src, &stats, repeat.as_ref(), &repeaters));
                        if batch.len() >= BATCH {
                            hand_off(&queue, &mut batch, &stats, &drops);
                        }
                    }
                    if !batch.is_empty() {
                        hand_off(&queue, &mut batch, &stats, &drops);
                    }
                    if (slept && got == 0) || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // A round that found a lot means the socket fills faster
                    // than we sleep: drain again at once instead.
                    if got < BATCH {
                        std::thread::sleep(POLL_INTERVAL);
                    }
                    slept = true;
                }
                let _ = socket.set_nonblocking(false);
            } else if !batch.is_empty() {
                hand_off(&queue, &mut batch, &stats, &drops);
            }
        }
    })
}

/// Most datagrams handed to the decode thread at once.
pub(crate) const BATCH: usize = 64;

/// While traffic flows, how often the receive thread drains its socket.
/// 1 ms of 2 M flows/s is about 100 KiB of datagrams, well inside a default
/// socket buffer, and 1 000 wake-ups a second cost next to nothing.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Hands a batch to the decode thread; a full queue drops and counts it.
fn hand_off(
    queue: &SyncSender<Vec<Received>>,
    batch: &mut Vec<Received>,
    stats: &ListenerStats,
    drops: &DropMap,
) {
    let n = batch.len() as u64;
    match queue.try_send(std::mem::replace(batch, Vec::with_capacity(BATCH))) {
        Ok(()) => {}
        Err(TrySendError::Full(lost)) | Err(TrySendError::Disconnected(lost)) => {
            stats.queue_drops.fetch_add(n, Ordering::Relaxed);
            if let Ok(mut m) = drops.lock() {
                for r in &lost {
                    // Bounded like every map keyed by addresses from the wire.
                    let ip = if m.len() >= 4096 && !m.contains_key(&r.src.ip()) {
                        IpAddr::from([0u8; 16])
                    } else {
                        r.src.ip()
                    };
                    *m.entry(ip).or_default() += 1;
                }
            }
        }
    }
}

/// Counts, repeats and copies one datagram.
fn received(
    data: &[u8],
    src: SocketAddr,
    stats: &ListenerStats,
    repeat: Option<&UdpSocket>,
    repeaters: &[SocketAddr],
) -> Received {
    stats.datagrams.fetch_add(1, Ordering::Relaxed);
    stats.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
    if let Some(r) = repeat {
        for to in repeaters {
            // A repeater that cannot keep up loses datagrams; the
            // collector never waits for it.
            if r.send_to(data, to).is_err() {
                stats.repeat_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Received { payload: data.to_vec(), src, received_ms: now_ms() }
}

/// Datagrams the kernel dropped on this socket because its buffer was
/// full (Linux: the `drops` column of /proc/net/udp{,6} for the socket's
/// inode). `None` where that cannot be read.
pub(crate) fn kernel_drops(l: &Listener) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", l.socket.as_raw_fd())).ok()?;
    let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.to_string();
    let table = if l.addr.is_ipv6() { "/proc/net/udp6" } else { "/proc/net/udp" };
    let text = std::fs::read_to_string(table).ok()?;
    text.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.get(9) == Some(&inode.as_str())).then(|| cols.last()?.parse().ok()).flatten()
    })
}
