//! Packets and flows both ways.
//!
//! * **pcap → flows** (nfpcapd): [`FlowCache`] is a NetFlow-style flow
//!   cache keyed by the 5-tuple, ToS and VLAN, with active and inactive
//!   timeouts driven by packet time, TCP FIN/RST ending flows, IPv4 and
//!   IPv6 fragments attributed to their first fragment's ports, and
//!   VLAN/MPLS decapsulation (by `weir_decode::packet`). [`pcap_to_slots`]
//!   runs captures (pcap, pcapng, gzip) through it into slot files, and
//!   [`LiveCapture`] (Linux) the packets of a network interface.
//!
//! The other direction, sFlow → pcap (sflowtool -t), needs no flow cache:
//! `weir_decode::sampled` walks an sFlow v5 datagram to the raw packet
//! headers its samples carry and `weir_encode::pcap` writes them as a pcap
//! stream; `weir sflow2pcap` and the collector's `--sflow-pcap` use them.
//!
//! Nothing here panics on bad input: damaged captures, garbage frames and
//! malformed sFlow are counted in the reports and the rest is processed.
//!
//! ```
//! use weir_capture::{CacheConfig, FlowCache, PacketOutcome};
//! // Ethernet + IPv4 + UDP 1234 -> 53, twice, one second apart.
//! let mut f = vec![0u8; 14 + 20 + 8];
//! f[12..14].copy_from_slice(&[0x08, 0x00]);
//! f[14] = 0x45;
//! f[14 + 3] = 28; // total length
//! f[14 + 9] = 17;
//! f[14 + 12..14 + 16].copy_from_slice(&[192, 0, 2, 1]);
//! f[14 + 16..14 + 20].copy_from_slice(&[192, 0, 2, 2]);
//! f[34..38].copy_from_slice(&[0x04, 0xd2, 0, 53]);
//! let mut cache = FlowCache::new(CacheConfig::default());
//! let mut flows = Vec::new();
//! assert_eq!(cache.packet(1_000_000_000, 1, 42, &f, &mut flows), PacketOutcome::Counted);
//! cache.packet(2_000_000_000, 1, 42, &f, &mut flows);
//! cache.flush(&mut flows);
//! assert_eq!(flows.len(), 1);
//! assert_eq!((flows[0].packets, flows[0].bytes, flows[0].dst_port), (2, 56, 53));
//! assert_eq!((flows[0].first, flows[0].last), (1000, 2000));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cache;
mod input;
#[cfg(target_os = "linux")]
mod live;
mod slots;

pub use cache::{CacheConfig, CacheStats, FlowCache, PacketOutcome};
pub use input::{FramesError, InputError, gunzip_if_gzip, read_frames};
#[cfg(target_os = "linux")]
pub use live::{LiveCapture, LiveStats};
pub use slots::{PcapError, PcapOptions, PcapReport, pcap_to_slots};
