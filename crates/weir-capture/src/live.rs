//! Live capture from a network interface (nfpcapd -i), Linux only: a
//! packet socket for every protocol, frames of other interfaces skipped,
//! packet times from the clock at receipt. Flows go through the same
//! cache and into the same slot files as with captures read from files;
//! while the interface is quiet the clock still moves, so flows time out
//! and slots are published.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, LinkAddr, MsgFlags, SockFlag, SockProtocol, SockType,
    recvmsg, setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

use crate::slots::{PcapError, PcapOptions, PcapReport, Run};

/// `sll_pkttype` of a frame the host sent.
const PACKET_OUTGOING: u8 = 4;
/// `sll_hatype` of Ethernet devices.
const ARPHRD_ETHER: u16 = 1;
/// `sll_hatype` of the loopback device (frames carry an Ethernet header).
const ARPHRD_LOOPBACK: u16 = 772;
/// `sll_hatype` of devices without a link-layer header (tun, WireGuard).
const ARPHRD_NONE: u16 = 0xfffe;
/// Bytes read per frame: more than any frame, even with segmentation
/// offload (64 KiB plus headers), so nothing is cut.
const FRAME_BUF: usize = 256 << 10;

/// What a live capture counted besides the flow cache.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveStats {
    /// Frames of other interfaces, read and skipped.
    pub other_interfaces: u64,
    /// Loopback frames seen a second time on the way out, skipped.
    pub loopback_duplicates: u64,
    /// Frames of devices whose link type is neither Ethernet nor raw IP.
    pub unknown_devices: u64,
    /// Frames the kernel dropped because the socket's buffer was full.
    pub kernel_drops: u64,
    /// Receive buffer granted (bytes; the kernel caps the 16 MiB asked
    /// for at `net.core.rmem_max`).
    pub rcvbuf: usize,
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// An open packet socket for one interface (see [`LiveCapture::open`]).
pub struct LiveCapture {
    fd: std::os::fd::OwnedFd,
    iface: String,
    index: usize,
}

fn interface_error(iface: &str, what: &str, e: Errno) -> PcapError {
    PcapError::Interface {
        name: iface.to_string(),
        message: match e {
            Errno::EPERM | Errno::EACCES => format!(
                "{what}: {e} (live capture needs CAP_NET_RAW: run as root, or \
                 setcap cap_net_raw+ep on the weir binary)"
            ),
            _ => format!("{what}: {e}"),
        },
    }
}

impl LiveCapture {
    /// Opens a packet socket for interface `iface` (`any`: every
    /// interface): packets are captured from now on (the kernel queues
    /// them until [`LiveCapture::run`]).
    pub fn open(iface: &str) -> Result<LiveCapture, PcapError> {
        let fail = |what: &str, e: Errno| interface_error(iface, what, e);
        // "any" (as libpcap): every interface.
        let index = if iface == "any" {
            0
        } else {
            nix::net::if_::if_nametoindex(iface).map_err(|e| fail("no such interface", e))?
        };
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::EthAll,
        )
        .map_err(|e| fail("opening a packet socket", e))?;
        setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(0, 200_000))
            .map_err(|e| fail("setting the receive timeout", e))?;
        // Room for bursts; the kernel caps it at net.core.rmem_max.
        let _ = setsockopt(&fd, sockopt::RcvBuf, &(16 << 20));
        setsockopt(&fd, sockopt::RxqOvfl, &1).map_err(|e| fail("asking for drop counts", e))?;
        Ok(LiveCapture { fd, iface: iface.to_string(), index: index as usize })
    }

    /// Captures through the flow cache into slot files until `stop` is
    /// set (checked at least every 200 ms), then exports every flow still
    /// open and publishes every slot.
    pub fn run(
        self,
        opts: &PcapOptions,
        stop: &AtomicBool,
    ) -> Result<(PcapReport, LiveStats), PcapError> {
        let mut run = Run::new(opts);
        let mut stats = LiveStats {
            rcvbuf: nix::sys::socket::getsockopt(&self.fd, sockopt::RcvBuf).unwrap_or(0),
            ..LiveStats::default()
        };
        match self.capture(&mut run, &mut stats, stop) {
            Ok(()) => {
                run.tick(now_ns())?;
                Ok((run.finish()?, stats))
            }
            Err(e) => {
                // Keep what was captured: flows exported, slots published;
                // then report the error.
                let _ = run.finish();
                Err(e)
            }
        }
    }

    fn capture(
        &self,
        run: &mut Run<'_>,
        stats: &mut LiveStats,
        stop: &AtomicBool,
    ) -> Result<(), PcapError> {
        let mut buf = vec![0u8; FRAME_BUF];
        let mut cmsg = nix::cmsg_space!(u32);
        let mut last_tick = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let got = {
                let mut iov = [std::io::IoSliceMut::new(&mut buf)];
                recvmsg::<LinkAddr>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::empty(),
                )
                .map(|m| {
                    // The kernel's count of frames dropped on this socket
                    // (buffer full), sent along with each frame.
                    if let Ok(cm) = m.cmsgs() {
                        for c in cm {
                            if let ControlMessageOwned::RxqOvfl(n) = c {
                                stats.kernel_drops = u64::from(n);
                            }
                        }
                    }
                    (m.bytes, m.address)
                })
            };
            match got {
                Ok((n, Some(from))) => {
                    let now = now_ns();
                    if self.index != 0 && from.ifindex() != self.index {
                        stats.other_interfaces += 1;
                    } else if from.hatype() == ARPHRD_LOOPBACK && from.pkttype() == PACKET_OUTGOING
                    {
                        // Loopback frames are seen leaving and arriving: keep one.
                        stats.loopback_duplicates += 1;
                    } else {
                        match from.hatype() {
                            ARPHRD_ETHER | ARPHRD_LOOPBACK => {
                                let len = n.min(buf.len());
                                run.frame(now, 1, len as u32, &buf[..len])?;
                            }
                            ARPHRD_NONE => {
                                let len = n.min(buf.len());
                                run.frame(now, 101, len as u32, &buf[..len])?;
                            }
                            _ => stats.unknown_devices += 1,
                        }
                    }
                    if now.saturating_sub(last_tick) >= 200_000_000 {
                        last_tick = now;
                        run.tick(now)?;
                    }
                }
                Ok((_, None)) => {}
                Err(Errno::EAGAIN | Errno::EINTR) => {
                    last_tick = now_ns();
                    run.tick(last_tick)?;
                }
                Err(e) => return Err(interface_error(&self.iface, "receiving", e)),
            }
        }
        Ok(())
    }
}
