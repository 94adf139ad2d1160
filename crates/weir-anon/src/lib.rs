//! Prefix-preserving address anonymization: Crypto-PAn (J. Xu, J. Fan, M.
//! Ammar, S. Moon, ICNP 2002), as nfdump's nfanon applies it to flows.
//!
//! Two addresses that share a k-bit prefix map to two addresses that share
//! a k-bit prefix, the mapping is one-to-one, and the same 32-byte key
//! gives the same mapping in every file and run, so anonymized data sets
//! can still be compared and merged. Bit `i` of an address is flipped by
//! the top bit of AES-128 over the address's first `i` bits padded with a
//! secret pad; IPv4 addresses (stored IPv4-mapped) use the 32-bit form of
//! the reference implementation, IPv6 addresses the same construction over
//! 128 bits.
//!
//! [`Anonymizer::batch`] rewrites a [`FlowBatch`]: every address column
//! (source, destination, next hop, BGP next hop, exporter) is anonymized,
//! AS numbers and MAC addresses are zeroed.
//!
//! ```
//! use weir_anon::{CryptoPan, parse_key};
//! let cp = CryptoPan::new(&parse_key("0123456789abcdef0123456789abcdef").unwrap());
//! let a = cp.ipv4(u32::from_be_bytes([192, 0, 2, 1]));
//! let b = cp.ipv4(u32::from_be_bytes([192, 0, 2, 200]));
//! assert_eq!(a >> 8, b >> 8); // same /24, still the same /24
//! assert_ne!(a, b);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::collections::HashMap;

use aes::Aes128;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use weir_record::{Column, Field, FlowBatch, Values};

/// A Crypto-PAn key schedule: the AES key and the secret pad.
#[derive(Clone)]
pub struct CryptoPan {
    aes: Aes128,
    pad: [u8; 16],
}

impl std::fmt::Debug for CryptoPan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CryptoPan { .. }")
    }
}

/// Parses a key as nfanon takes it: 32 characters used as bytes, or `0x`
/// and 64 hex digits.
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let mut key = [0u8; 32];
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(format!("a hex key is 0x and 64 hex digits, not {} characters", hex.len()));
        }
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| {
                format!("not a hex digit pair at {}: {:?}", 2 + 2 * i, &hex[2 * i..2 * i + 2])
            })?;
        }
        return Ok(key);
    }
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return Err(format!(
            "a key is 32 characters (or 0x and 64 hex digits), not {} bytes",
            bytes.len()
        ));
    }
    key.copy_from_slice(bytes);
    Ok(key)
}

impl CryptoPan {
    /// The schedule of a 32-byte key: bytes 0..16 are the AES key, the pad
    /// is the encryption of bytes 16..32.
    pub fn new(key: &[u8; 32]) -> CryptoPan {
        let aes = Aes128::new(GenericArray::from_slice(&key[..16]));
        let mut pad = GenericArray::clone_from_slice(&key[16..]);
        aes.encrypt_block(&mut pad);
        let mut p = [0u8; 16];
        p.copy_from_slice(&pad);
        CryptoPan { aes, pad: p }
    }

    /// The top bit of AES over `block`.
    fn bit(&self, block: [u8; 16]) -> u8 {
        let mut b = GenericArray::from(block);
        self.aes.encrypt_block(&mut b);
        b[0] >> 7
    }

    /// An IPv4 address (host order value of the four octets).
    pub fn ipv4(&self, addr: u32) -> u32 {
        let pad4 = u32::from_be_bytes([self.pad[0], self.pad[1], self.pad[2], self.pad[3]]);
        let mut block = self.pad;
        let mut otp = 0u32;
        for pos in 0..32u32 {
            // The address's first `pos` bits, the pad's after them.
            let keep = if pos == 0 { 0 } else { u32::MAX << (32 - pos) };
            let prefix = (addr & keep) | (pad4 & !keep);
            block[..4].copy_from_slice(&prefix.to_be_bytes());
            otp |= u32::from(self.bit(block)) << (31 - pos);
        }
        addr ^ otp
    }

    /// An IPv6 address (host order value of the 16 octets).
    pub fn ipv6(&self, addr: u128) -> u128 {
        let pad = u128::from_be_bytes(self.pad);
        let mut otp = 0u128;
        for pos in 0..128u32 {
            let keep = if pos == 0 { 0 } else { u128::MAX << (128 - pos) };
            let prefix = (addr & keep) | (pad & !keep);
            otp |= u128::from(self.bit(prefix.to_be_bytes())) << (127 - pos);
        }
        addr ^ otp
    }

    /// An address as weir stores it: IPv4-mapped IPv4 addresses stay
    /// IPv4-mapped (the IPv4 form applies to their last 32 bits).
    pub fn addr(&self, a: u128) -> u128 {
        if a >> 32 == 0xffff {
            0xffff_0000_0000 | u128::from(self.ipv4(a as u32))
        } else {
            self.ipv6(a)
        }
    }
}

/// The address columns anonymized.
pub const ADDRESS_FIELDS: [Field; 5] =
    [Field::SrcAddr, Field::DstAddr, Field::NextHop, Field::BgpNextHop, Field::ExporterAddr];

/// The columns zeroed: AS numbers (as nfanon) and MAC addresses.
pub const ZEROED_FIELDS: [Field; 8] = [
    Field::SrcAs,
    Field::DstAs,
    Field::NextAs,
    Field::PrevAs,
    Field::InSrcMac,
    Field::InDstMac,
    Field::OutSrcMac,
    Field::OutDstMac,
];

/// Most addresses remembered by an [`Anonymizer`] before it starts over
/// (an address costs 32 or 128 AES blocks; flows repeat addresses).
const CACHE_MAX: usize = 1 << 20;

/// Anonymizes flows with a key, remembering recent addresses.
#[derive(Debug)]
pub struct Anonymizer {
    cp: CryptoPan,
    cache: HashMap<u128, u128>,
    /// Addresses anonymized (not counting repeats served from memory).
    pub computed: u64,
}

impl Anonymizer {
    /// An anonymizer for `key`.
    pub fn new(key: &[u8; 32]) -> Anonymizer {
        Anonymizer { cp: CryptoPan::new(key), cache: HashMap::new(), computed: 0 }
    }

    /// The anonymized form of a stored address.
    pub fn addr(&mut self, a: u128) -> u128 {
        if let Some(&b) = self.cache.get(&a) {
            return b;
        }
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        let b = self.cp.addr(a);
        self.computed += 1;
        self.cache.insert(a, b);
        b
    }

    /// Rewrites a batch in place: address columns anonymized (rows
    /// without a value stay without), AS numbers and MAC addresses 0.
    pub fn batch(&mut self, batch: &mut FlowBatch) {
        for f in ADDRESS_FIELDS {
            if let Some(mut col) = batch.take_column(f) {
                if let Values::U128(v) = &mut col.values {
                    for (i, x) in v.iter_mut().enumerate() {
                        if col.validity.as_ref().is_none_or(|b| b.get(i)) {
                            *x = self.addr(*x);
                        }
                    }
                }
                batch.set_column(f, col);
            }
        }
        for f in ZEROED_FIELDS {
            if let Some(col) = batch.take_column(f) {
                let zero = match col.values {
                    Values::U64(v) => Values::U64(vec![0; v.len()]),
                    Values::U128(v) => Values::U128(vec![0; v.len()]),
                };
                batch.set_column(f, Column { values: zero, validity: col.validity });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of the Crypto-PAn reference distribution's sample.
    const KEY: [u8; 32] = [
        21, 34, 23, 141, 51, 164, 207, 128, 19, 10, 91, 22, 73, 144, 125, 16, 216, 152, 143, 131,
        121, 121, 101, 39, 98, 87, 76, 45, 42, 132, 34, 2,
    ];

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
    }

    fn v6(s: &str) -> u128 {
        u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
    }

    /// Pairs from the reference distribution's sample trace (raw and
    /// sanitized), as other implementations test them.
    #[test]
    fn reference_ipv4_sample() {
        let cp = CryptoPan::new(&KEY);
        for (raw, anon) in [
            ("128.11.68.132", "135.242.180.132"),
            ("129.118.74.4", "134.136.186.123"),
            ("141.223.7.43", "141.167.8.160"),
            ("192.102.249.13", "252.138.62.131"),
            ("207.105.49.5", "241.118.205.138"),
            ("24.5.0.80", "100.9.15.210"),
            ("4.3.88.225", "124.60.155.63"),
            ("64.14.118.196", "0.255.183.58"),
        ] {
            assert_eq!(cp.ipv4(v4(raw)), v4(anon), "{raw}");
        }
    }

    /// IPv6 over 128 bits: the mapping other 128-bit implementations give.
    #[test]
    fn ipv6_over_128_bits() {
        let cp = CryptoPan::new(&KEY);
        for (raw, anon) in [
            ("::1", "78ff:f001:9fc0:20df:8380:b1f1:704:ed"),
            ("2001:db8::1", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e"),
            ("2001:db8::2", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1c"),
        ] {
            assert_eq!(cp.ipv6(v6(raw)), v6(anon), "{raw}");
        }
    }

    #[test]
    fn prefixes_are_preserved_and_mapped_addresses_stay_mapped() {
        let cp = CryptoPan::new(&parse_key("weir test key, 32 bytes exactly!").unwrap());
        let addrs: Vec<u32> =
            (0..200u32).map(|i| 0x0a00_0000 | i.wrapping_mul(2_654_435_761) >> 8).collect();
        for &a in &addrs {
            for &b in &addrs {
                let common = (a ^ b).leading_zeros();
                assert_eq!((cp.ipv4(a) ^ cp.ipv4(b)).leading_zeros(), common, "{a:x} {b:x}");
            }
        }
        let mapped = 0xffff_0000_0000u128 | 0xc000_0201;
        assert_eq!(cp.addr(mapped), 0xffff_0000_0000 | u128::from(cp.ipv4(0xc000_0201)));
    }

    #[test]
    fn keys_are_32_characters_or_64_hex_digits() {
        let hex = format!("0x{}", "0f".repeat(32));
        assert_eq!(parse_key(&hex).unwrap(), [0x0f; 32]);
        assert!(parse_key("short").unwrap_err().contains("32 characters"));
        assert!(parse_key(&format!("0x{}", "0g".repeat(32))).unwrap_err().contains("hex digit"));
        assert!(parse_key("0x00").unwrap_err().contains("64 hex digits"));
    }

    #[test]
    fn batches_keep_gaps_and_zero_as_numbers() {
        let mut b = FlowBatch::new(2);
        let src = vec![0xffff_0000_0000u128 | 0x0a00_0001, 0xffff_0000_0000 | 0x0a00_0002];
        let mut valid = weir_record::Bitmap::ones(2);
        valid.set(1, false);
        b.set_column(
            Field::SrcAddr,
            Column { values: Values::U128(src.clone()), validity: Some(valid) },
        );
        b.set_column(Field::SrcAs, Column::full(Values::U64(vec![64500, 64501])));
        let mut an = Anonymizer::new(&KEY);
        an.batch(&mut b);
        let col = b.column(Field::SrcAddr).unwrap();
        assert_eq!(col.get(0), Some(CryptoPan::new(&KEY).addr(src[0])));
        assert_eq!(col.get(1), None);
        assert_eq!(b.column(Field::SrcAs).unwrap().values.as_u64().unwrap(), &[0, 0]);
        assert_eq!(an.computed, 1);
    }
}
