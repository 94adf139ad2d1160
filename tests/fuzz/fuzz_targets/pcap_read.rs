//! Arbitrary bytes as a capture file: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = weir_decode::pcap::read_capture(data) {
        assert!(c.datagrams.len() <= c.frames);
    }
});
