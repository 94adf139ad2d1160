//! Any datagram, any protocol: the decoder must never panic, and a
//! datagram it rejects must be counted as a decode error of its exporter.
//! The first byte picks the version so that every decoder gets its share
//! of inputs; templates learnt from earlier inputs stay in the decoder
//! state (like a long-running collector).
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use weir_decode::{Datagram, Decoder, DecoderConfig, Sink};
use weir_record::FlowRecord;

struct Count(u64);
impl Sink for Count {
    fn flow(&mut self, f: &FlowRecord) {
        // Invariants of every decoded flow.
        assert!(f.first <= f.last || f.last == 0, "first after last: {f:?}");
        self.0 += 1;
    }
}

thread_local! {
    static DEC: RefCell<Decoder> = RefCell::new(Decoder::new(DecoderConfig::default()));
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let mut payload = data[1..].to_vec();
    let version: &[u8] = match data[0] % 6 {
        0 => &[0, 1],
        1 => &[0, 5],
        2 => &[0, 7],
        3 => &[0, 9],
        4 => &[0, 10],
        _ => &[0, 0, 0, 5],
    };
    if payload.len() >= version.len() {
        payload[..version.len()].copy_from_slice(version);
    }
    let dg = Datagram { exporter: "192.0.2.1:2055".parse().unwrap(), received_ms: 1_709_532_000_000, payload: &payload };
    DEC.with(|d| {
        let mut d = d.borrow_mut();
        let before: u64 = d.accounts().iter().map(|(_, a)| a.datagrams).sum();
        let mut sink = Count(0);
        let _ = d.decode(&dg, &mut sink);
        let after: u64 = d.accounts().iter().map(|(_, a)| a.datagrams).sum();
        assert_eq!(after, before + 1, "every datagram is counted");
    });
});
