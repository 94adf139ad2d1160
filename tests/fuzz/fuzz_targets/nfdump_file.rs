//! nfcapd files from disk (weir import): any bytes give flows or an error
//! with an offset, never a panic, and decompression stays bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = weir_nfdump::parse(data);
});
