//! NetFlow/IPFIX/sFlow fuzzing, one protocol per target: arbitrary bytes
//! after the version number (v1; v7 shares its code path with v5).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| common::run(&[0, 1], data));
