//! Address normalisation: every IP address is a `u128`, IPv4 mapped into
//! `::ffff:0:0/96`, so one column type holds both families and IPv4 ranges
//! stay contiguous for zone maps.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const V4_MAPPED_PREFIX: u128 = 0xffff_0000_0000;

/// The `u128` form of an address (IPv4 becomes `::ffff:a.b.c.d`).
#[inline]
pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => V4_MAPPED_PREFIX | u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Whether a stored address is IPv4.
#[inline]
pub fn is_ipv4_mapped(v: u128) -> bool {
    v >> 32 == 0xffff
}

/// The address a stored value stands for.
#[inline]
pub fn u128_to_ip(v: u128) -> IpAddr {
    if is_ipv4_mapped(v) {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

/// `aa:bb:cc:dd:ee:ff` for the low 48 bits of `v`.
pub fn format_mac(v: u64) -> String {
    let b = v.to_be_bytes();
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[2], b[3], b[4], b[5], b[6], b[7])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_and_v6_round_trip() {
        for s in ["0.0.0.0", "10.1.2.3", "255.255.255.255", "::", "2001:db8::1", "::1"] {
            let ip: IpAddr = s.parse().unwrap();
            assert_eq!(u128_to_ip(ip_to_u128(ip)), ip, "{s}");
        }
        assert!(is_ipv4_mapped(ip_to_u128("10.0.0.1".parse().unwrap())));
        assert!(!is_ipv4_mapped(ip_to_u128("2001:db8::1".parse().unwrap())));
    }

    #[test]
    fn mac_format() {
        assert_eq!(format_mac(0x0a50_56c0_0001), "0a:50:56:c0:00:01");
    }
}
