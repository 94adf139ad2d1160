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
    queue: SyncSender<Received>,
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
        while !stop.load(Ordering::Relaxed) {
            let (n, src) = match socket.recv_from(&mut buf) {
                Ok(x) => x,
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
            };
            stats.datagrams.fetch_add(1, Ordering::Relaxed);
            stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
            if let Some(r) = &repeat {
                for to in repeaters.iter() {
                    // A repeater that cannot keep up loses datagrams; the
                    // collector never waits for it.
                    if r.send_to(&buf[..n], to).is_err() {
                        stats.repeat_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let item = Received { payload: buf[..n].to_vec(), src, received_ms: now_ms() };
            match queue.try_send(item) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    stats.queue_drops.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut m) = drops.lock() {
                        *m.entry(src.ip()).or_default() += 1;
                    }
                }
                Err(TrySendError::Disconnected(_)) => break,
            }
        }
    })
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
