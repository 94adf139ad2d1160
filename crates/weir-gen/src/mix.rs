//! Traffic mixes: services with their packet sizes, ICMP messages, TCP flag
//! combinations and TOS values, all as weights in tenths of a percent.

use crate::dist::{ParetoFloor, Weighted};

/// A server port and how its packets look.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Service {
    /// The server's port.
    pub port: u16,
    /// Request/response protocols (DNS, NTP, ...): mostly one packet per flow.
    pub transactional: bool,
    /// Per-packet size range in bytes, client to server.
    pub up: (u16, u16),
    /// Per-packet size range in bytes, server to client.
    pub down: (u16, u16),
}

const fn svc(port: u16, transactional: bool, up: (u16, u16), down: (u16, u16)) -> Service {
    Service { port, transactional, up, down }
}

/// Pure ACK stream.
const ACK: (u16, u16) = (52, 80);
/// Full-size data segments.
const DATA: (u16, u16) = (1000, 1460);

/// TCP services by weight (sum 1000).
pub(crate) const TCP: [(Service, u16); 18] = [
    (svc(443, false, ACK, DATA), 400),
    (svc(80, false, ACK, DATA), 150),
    (svc(22, false, (52, 300), (52, 1460)), 60),
    (svc(25, false, DATA, ACK), 30),
    (svc(587, false, DATA, ACK), 20),
    (svc(993, false, ACK, DATA), 40),
    (svc(3389, false, (60, 400), (200, 1460)), 30),
    (svc(8080, false, ACK, DATA), 50),
    (svc(445, false, (100, 1460), (100, 1460)), 40),
    (svc(179, false, (52, 200), (52, 200)), 10),
    (svc(8443, false, ACK, DATA), 60),
    (svc(3306, false, (60, 400), (100, 1460)), 30),
    (svc(5432, false, (60, 400), (100, 1460)), 20),
    (svc(143, false, ACK, DATA), 10),
    (svc(21, false, (52, 120), (52, 200)), 10),
    (svc(853, false, (60, 200), (80, 400)), 20),
    (svc(110, false, ACK, DATA), 10),
    (svc(5222, false, (60, 400), (60, 400)), 10),
];

/// UDP services by weight (sum 1000).
pub(crate) const UDP: [(Service, u16); 12] = [
    (svc(53, true, (60, 100), (80, 200)), 450),
    (svc(443, false, (50, 150), (1200, 1350)), 250),
    (svc(123, true, (76, 76), (90, 90)), 100),
    (svc(161, true, (80, 200), (100, 600)), 40),
    (svc(500, true, (100, 400), (100, 400)), 30),
    (svc(4500, false, (100, 1400), (100, 1400)), 40),
    (svc(1194, false, (100, 1400), (100, 1400)), 20),
    (svc(5060, true, (300, 1000), (300, 1000)), 20),
    (svc(514, true, (80, 600), (80, 600)), 20),
    (svc(137, true, (78, 78), (90, 250)), 10),
    (svc(1900, true, (100, 400), (200, 500)), 10),
    (svc(3478, true, (60, 200), (60, 200)), 10),
];

/// ICMP messages as `(type << 8 | code)` for the client's and the server's
/// side of the exchange (echo request and reply; errors are one-sided).
pub(crate) const ICMP4: [((u16, u16), u16); 4] = [
    ((0x0800, 0x0000), 700),
    ((0x0303, 0x0303), 150),
    ((0x0301, 0x0301), 50),
    ((0x0b00, 0x0b00), 100),
];

/// ICMPv6: echo 128/129, unreachable 1/4, neighbour solicitation/advert
/// 135/136, time exceeded 3/0.
pub(crate) const ICMP6: [((u16, u16), u16); 4] = [
    ((0x8000, 0x8100), 700),
    ((0x0104, 0x0104), 150),
    ((0x8700, 0x8800), 100),
    ((0x0300, 0x0300), 50),
];

/// TCP flags of single-packet flows: SYN scans, resets, lone ACKs.
pub(crate) const FLAGS_SINGLE: [(u8, u16); 4] =
    [(0x02, 500), (0x04, 150), (0x14, 150), (0x10, 200)];
/// Two-packet flows: SYN/SYN-ACK, FIN-ACK, reset, SYN retransmit.
pub(crate) const FLAGS_PAIR: [(u8, u16); 4] = [(0x12, 400), (0x11, 200), (0x14, 200), (0x02, 200)];
/// Complete or nearly complete connections.
pub(crate) const FLAGS_FULL: [(u8, u16); 5] =
    [(0x1b, 700), (0x1a, 100), (0x1e, 80), (0x18, 70), (0x10, 50)];
/// Records cut by the active timeout: the middle of a long connection.
pub(crate) const FLAGS_LONG: [(u8, u16); 2] = [(0x10, 400), (0x18, 600)];

/// TOS byte: best effort, AF11, EF, AF21.
pub(crate) const TOS: [(u8, u16); 4] = [(0x00, 900), (0x28, 40), (0xb8, 30), (0x48, 30)];

/// Pareto shape of the packet count of non-trivial flows.
const PACKETS_ALPHA: f64 = 1.15;

/// The mixes as fast samplers.
#[derive(Debug, Clone)]
pub(crate) struct Mixes {
    pub tcp: Weighted<Service>,
    pub udp: Weighted<Service>,
    pub icmp4: Weighted<(u16, u16)>,
    pub icmp6: Weighted<(u16, u16)>,
    pub flags_single: Weighted<u8>,
    pub flags_pair: Weighted<u8>,
    pub flags_full: Weighted<u8>,
    pub flags_long: Weighted<u8>,
    pub tos: Weighted<u8>,
    /// Packet counts of non-trivial flows, minus one.
    pub packets: ParetoFloor,
}

impl Mixes {
    pub(crate) fn new() -> Mixes {
        Mixes {
            tcp: Weighted::new(&TCP),
            udp: Weighted::new(&UDP),
            icmp4: Weighted::new(&ICMP4),
            icmp6: Weighted::new(&ICMP6),
            flags_single: Weighted::new(&FLAGS_SINGLE),
            flags_pair: Weighted::new(&FLAGS_PAIR),
            flags_full: Weighted::new(&FLAGS_FULL),
            flags_long: Weighted::new(&FLAGS_LONG),
            tos: Weighted::new(&TOS),
            packets: ParetoFloor::new(PACKETS_ALPHA),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total<T>(t: &[(T, u16)]) -> u32 {
        t.iter().map(|e| u32::from(e.1)).sum()
    }

    #[test]
    fn weights_are_per_mille() {
        assert_eq!(total(&TCP), 1000);
        assert_eq!(total(&UDP), 1000);
        assert_eq!(total(&ICMP4), 1000);
        assert_eq!(total(&ICMP6), 1000);
        assert_eq!(total(&FLAGS_SINGLE), 1000);
        assert_eq!(total(&FLAGS_PAIR), 1000);
        assert_eq!(total(&FLAGS_FULL), 1000);
        assert_eq!(total(&FLAGS_LONG), 1000);
        assert_eq!(total(&TOS), 1000);
    }

    #[test]
    fn sizes_are_sane() {
        for (s, _) in TCP.iter().chain(UDP.iter()) {
            assert!(s.up.0 >= 40 && s.up.0 <= s.up.1 && s.up.1 <= 1500, "{}", s.port);
            assert!(s.down.0 >= 40 && s.down.0 <= s.down.1 && s.down.1 <= 1500, "{}", s.port);
        }
    }
}
