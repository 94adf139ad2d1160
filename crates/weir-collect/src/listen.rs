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

#[cfg(target_os = "linux")]
use nix::errno::Errno;
#[cfg(target_os = "linux")]
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use socket2::{Domain, Protocol, Socket, Type};
#[cfg(target_os = "linux")]
use std::io::IoSliceMut;
use weir_encode::pcap::{MAX_UDP4_PAYLOAD, ipv4_udp_packet};

/// Datagrams received in one go, on their way to the decoder: payloads
/// back to back in one buffer, so that a datagram costs one copy and no
/// allocation. Batches go back to a [`Pool`] after decoding and are reused.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    data: Vec<u8>,
    items: Vec<Item>,
}

#[derive(Debug, Clone, Copy)]
struct Item {
    end: usize,
    src: SocketAddr,
    received_ms: u64,
}

impl Batch {
    fn push(&mut self, payload: &[u8], src: SocketAddr, received_ms: u64) {
        self.data.extend_from_slice(payload);
        self.items.push(Item { end: self.data.len(), src, received_ms });
    }

    /// Number of datagrams.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// (payload, source, received ms) of every datagram, in arrival order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr, u64)> + '_ {
        let mut start = 0;
        self.items.iter().map(move |it| {
            let p = self.data.get(start..it.end).unwrap_or_default();
            start = it.end;
            (p, it.src, it.received_ms)
        })
    }

    fn clear(&mut self) {
        self.data.clear();
        self.items.clear();
    }
}

/// Emptied batches waiting to be reused by the receive threads.
#[derive(Debug, Default, Clone)]
pub(crate) struct Pool(Arc<Mutex<Vec<Batch>>>);

/// Batches kept for reuse at most (each holds up to [`BATCH`] datagrams).
const POOL_BATCHES: usize = 256;
/// Largest buffer a pooled batch keeps: 64 datagrams of up to 4 KiB.
const POOL_BATCH_BYTES: usize = BATCH * 4096;

impl Pool {
    /// A batch to fill: a reused one if there is one.
    fn take(&self) -> Batch {
        self.0.lock().ok().and_then(|mut v| v.pop()).unwrap_or_else(|| Batch {
            data: Vec::with_capacity(BATCH * 1500),
            items: Vec::with_capacity(BATCH),
        })
    }

    /// Gives a decoded batch back for reuse. A batch that grew for large
    /// datagrams is freed instead, so that the pool keeps at most
    /// [`POOL_BATCHES`] × [`POOL_BATCH_BYTES`] after a burst of them.
    pub(crate) fn give(&self, mut b: Batch) {
        if b.data.capacity() > POOL_BATCH_BYTES {
            return;
        }
        b.clear();
        if let Ok(mut v) = self.0.lock()
            && v.len() < POOL_BATCHES
        {
            v.push(b);
        }
    }
}

/// Counters of one listener, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub(crate) struct ListenerStats {
    pub(crate) datagrams: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) queue_drops: AtomicU64,
    pub(crate) repeat_errors: AtomicU64,
    /// Datagrams the spoofing repeater (`-A`) sent from its own address:
    /// IPv6, or refused by the raw socket (larger than the route's MTU).
    pub(crate) repeat_unspoofed: AtomicU64,
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
/// timeout so that threads notice shutdown. A multicast `addr` (nfcapd
/// -J) is bound as such, so that only the group's datagrams arrive, and
/// its group joined: IPv4 on the interface with address `mcast_if` (the
/// kernel's choice when `None`), IPv6 on the kernel's choice.
pub(crate) fn bind(
    addr: SocketAddr,
    rcvbuf: Option<usize>,
    mcast_if: Option<std::net::Ipv4Addr>,
) -> io::Result<Listener> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if let Some(n) = rcvbuf {
        s.set_recv_buffer_size(n)?;
    }
    s.bind(&addr.into())?;
    match addr.ip() {
        IpAddr::V4(g) if g.is_multicast() => {
            s.join_multicast_v4(&g, &mcast_if.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED))?;
        }
        IpAddr::V6(g) if g.is_multicast() => {
            let scope = match addr {
                SocketAddr::V6(a) => a.scope_id(),
                SocketAddr::V4(_) => 0,
            };
            s.join_multicast_v6(&g, scope)?;
        }
        _ => {}
    }
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
    queue: SyncSender<Batch>,
    pool: Pool,
    repeaters: Arc<Vec<SocketAddr>>,
    spoof: Option<&Socket>,
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
        let raw = spoof.map(Socket::try_clone).transpose()?;
        Some(Repeat { plain: s, raw, packet: Vec::with_capacity(2048) })
    };
    std::thread::Builder::new().name(format!("recv {}", l.addr)).spawn(move || {
        let mut many = Many::new();
        let mut rx = Receiving {
            batch: pool.take(),
            pool,
            queue,
            stats,
            drops,
            repeat,
            repeaters,
            bytes: 0,
        };
        while !stop.load(Ordering::Relaxed) {
            // Block for the first datagram, then drain what the socket
            // already holds without blocking: one hand-off (and one wake-up
            // of the decode thread) per batch instead of per datagram.
            let buf = many.first_slot();
            match socket.recv_from(buf) {
                Ok((n, src)) => rx.received(&buf[..n], src, now_ms()),
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
                    let got = many.drain(&socket, &mut rx);
                    if !rx.batch.is_empty() {
                        rx.hand_off();
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
            } else if !rx.batch.is_empty() {
                rx.hand_off();
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

/// Where datagrams are repeated from: a UDP socket, and for `-A` a raw
/// IPv4 socket that sends them with the exporter's own address.
struct Repeat {
    plain: UdpSocket,
    raw: Option<Socket>,
    /// The IPv4 + UDP packet being built for the raw socket.
    packet: Vec<u8>,
}

/// A raw IPv4 socket whose packets carry their own IP header
/// (IPPROTO_RAW implies IP_HDRINCL).
pub(crate) fn raw_socket() -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255))).map_err(|e| {
        io::Error::new(e.kind(), format!("a raw socket needs CAP_NET_RAW (root): {e}"))
    })?;
    s.set_nonblocking(true)?;
    Ok(s)
}

impl Repeat {
    /// Sends `data`, received from `src`, to `to`: with `src` as the
    /// packet's source when spoofing and both are IPv4; else, and when the
    /// raw socket refuses the packet (larger than the route's MTU: a raw
    /// socket does not fragment), from our own address, counted in
    /// `unspoofed`.
    fn send(
        &mut self,
        data: &[u8],
        src: SocketAddr,
        to: &SocketAddr,
        unspoofed: &AtomicU64,
    ) -> io::Result<()> {
        if let (Some(raw), SocketAddr::V4(s), SocketAddr::V4(t)) = (&self.raw, src, to) {
            if data.len() <= MAX_UDP4_PAYLOAD {
                ipv4_udp_packet(s, *t, data, &mut self.packet);
                if raw.send_to(&self.packet, &(*to).into()).is_ok() {
                    return Ok(());
                }
            }
            unspoofed.fetch_add(1, Ordering::Relaxed);
        }
        self.plain.send_to(data, to).map(|_| ())
    }
}

/// Datagrams taken per `recvmmsg` call.
#[cfg(target_os = "linux")]
const MANY: usize = 64;

/// Room for each: the largest UDP payload. The slots are 4 MiB of address
/// space, but only the pages datagrams were written to are ever touched
/// (one per slot for datagrams of a path MTU: 256 KiB).
const MANY_SLOT: usize = 65_536;

/// Takes what a socket holds. On Linux up to [`MANY`] datagrams per system
/// call (`recvmmsg`): the per-call costs of the kernel (system call,
/// socket lookup, locking) and the clock read are paid once per call
/// instead of once per datagram. Elsewhere one `recv_from` per datagram.
struct Many {
    #[cfg(target_os = "linux")]
    headers: MultiHeaders<SockaddrStorage>,
    buf: Vec<u8>,
}

impl Many {
    #[cfg(target_os = "linux")]
    fn new() -> Many {
        Many { headers: MultiHeaders::preallocate(MANY, None), buf: vec![0u8; MANY * MANY_SLOT] }
    }

    #[cfg(not(target_os = "linux"))]
    fn new() -> Many {
        Many { buf: vec![0u8; MANY_SLOT] }
    }

    /// The first slot: room for one datagram, for the blocking receive
    /// that waits for traffic.
    fn first_slot(&mut self) -> &mut [u8] {
        &mut self.buf[..MANY_SLOT]
    }

    /// Takes what `socket` holds without blocking, into `rx`; returns how
    /// many datagrams.
    #[cfg(target_os = "linux")]
    fn drain(&mut self, socket: &UdpSocket, rx: &mut Receiving) -> usize {
        use std::os::fd::AsRawFd;
        let mut got = 0;
        loop {
            let mut slots = self.buf.chunks_exact_mut(MANY_SLOT);
            let mut iovs: [[IoSliceMut<'_>; 1]; MANY] =
                std::array::from_fn(|_| [IoSliceMut::new(slots.next().unwrap_or_default())]);
            let msgs = match recvmmsg(
                socket.as_raw_fd(),
                &mut self.headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) {
                Ok(m) => m,
                Err(Errno::EAGAIN | Errno::EINTR) => return got,
                // Nothing was taken; the next round tries again.
                Err(e) => {
                    tracing::debug!(error = %e, "recvmmsg failed");
                    return got;
                }
            };
            let now = now_ms();
            let mut n = 0;
            for m in msgs {
                n += 1;
                // UDP always has a source; none is kept as 0.0.0.0:0.
                let src = m.address.as_ref().and_then(std_addr).unwrap_or(UNKNOWN_SOURCE);
                rx.received(m.iovs().next().unwrap_or_default(), src, now);
            }
            got += n;
            if n < MANY {
                return got;
            }
        }
    }

    /// Takes what `socket` (non-blocking) holds, into `rx`; returns how
    /// many datagrams.
    #[cfg(not(target_os = "linux"))]
    fn drain(&mut self, socket: &UdpSocket, rx: &mut Receiving) -> usize {
        let mut got = 0;
        while let Ok((n, src)) = socket.recv_from(&mut self.buf) {
            got += 1;
            rx.received(&self.buf[..n], src, now_ms());
        }
        got
    }
}

/// The source of a datagram the kernel gave none for.
#[cfg(target_os = "linux")]
const UNKNOWN_SOURCE: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// A socket address from the kernel as the standard type.
#[cfg(target_os = "linux")]
fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// A receive thread's state.
struct Receiving {
    batch: Batch,
    pool: Pool,
    queue: SyncSender<Batch>,
    stats: Arc<ListenerStats>,
    drops: DropMap,
    repeat: Option<Repeat>,
    repeaters: Arc<Vec<SocketAddr>>,
    /// Bytes of the batch being filled (counted at hand-off).
    bytes: u64,
}

impl Receiving {
    /// Repeats and copies one datagram into the batch, and hands the batch
    /// off once it is full.
    fn received(&mut self, data: &[u8], src: SocketAddr, now_ms: u64) {
        if let Some(r) = &mut self.repeat {
            for to in self.repeaters.iter() {
                // A repeater that cannot keep up loses datagrams; the
                // collector never waits for it.
                if r.send(data, src, to, &self.stats.repeat_unspoofed).is_err() {
                    self.stats.repeat_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.bytes += data.len() as u64;
        self.batch.push(data, src, now_ms);
        if self.batch.len() >= BATCH {
            self.hand_off();
        }
    }

    /// Hands the batch to the decode thread; a full queue drops and counts
    /// it (the batch is then reused at once).
    fn hand_off(&mut self) {
        let n = self.batch.len() as u64;
        self.stats.datagrams.fetch_add(n, Ordering::Relaxed);
        self.stats.bytes.fetch_add(std::mem::take(&mut self.bytes), Ordering::Relaxed);
        let next = self.pool.take();
        match self.queue.try_send(std::mem::replace(&mut self.batch, next)) {
            Ok(()) => {}
            Err(TrySendError::Full(lost)) | Err(TrySendError::Disconnected(lost)) => {
                self.stats.queue_drops.fetch_add(n, Ordering::Relaxed);
                if let Ok(mut m) = self.drops.lock() {
                    for (_, src, _) in lost.iter() {
                        // Bounded like every map keyed by addresses from the wire.
                        let ip = if m.len() >= 4096 && !m.contains_key(&src.ip()) {
                            IpAddr::from([0u8; 16])
                        } else {
                            src.ip()
                        };
                        *m.entry(ip).or_default() += 1;
                    }
                }
                self.pool.give(lost);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Datagrams come back whole and in order, also after the batch was
    /// given back to the pool and taken again.
    #[test]
    fn batch_keeps_datagrams_whole_and_in_order() {
        let src: SocketAddr = "192.0.2.1:2055".parse().unwrap();
        let pool = Pool::default();
        for round in 0..2u8 {
            let mut b = pool.take();
            let sizes = [1400usize, 0, 1, 65_507, 300];
            for (i, &n) in sizes.iter().enumerate() {
                b.push(&vec![round * 10 + i as u8; n], src, i as u64);
            }
            let got: Vec<(usize, u8, u64)> =
                b.iter().map(|(p, _, t)| (p.len(), p.first().copied().unwrap_or(0), t)).collect();
            let want: Vec<(usize, u8, u64)> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| (n, if n > 0 { round * 10 + i as u8 } else { 0 }, i as u64))
                .collect();
            assert_eq!(got, want);
            assert_eq!(b.len(), sizes.len());
            // 65 KiB of datagrams: larger than a pooled batch may keep.
            pool.give(b);
        }
    }
}
