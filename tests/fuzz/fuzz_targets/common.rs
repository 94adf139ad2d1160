//! Shared by the decode targets: one long-lived decoder per process (so
//! templates learnt from earlier inputs meet later ones, as in a
//! collector), and the invariants every input must keep.

use std::cell::RefCell;

use weir_decode::{Datagram, Decoder, DecoderConfig, Sink};
use weir_record::FlowRecord;

struct Check;

impl Sink for Check {
    fn flow(&mut self, f: &FlowRecord) {
        assert!(f.first <= f.last, "first after last: {f:?}");
    }
}

thread_local! {
    static DEC: RefCell<Decoder> = RefCell::new(Decoder::new(DecoderConfig::default()));
}

/// Decodes `body` behind the given version bytes; every datagram must be
/// counted, decodable or not, and nothing may panic.
pub fn run(version: &[u8], body: &[u8]) {
    let mut payload = version.to_vec();
    payload.extend_from_slice(body);
    let dg = Datagram {
        exporter: "192.0.2.1:2055".parse().unwrap(),
        received_ms: 1_709_532_000_000,
        payload: &payload,
    };
    DEC.with(|d| {
        let mut d = d.borrow_mut();
        let before: u64 = d.accounts().iter().map(|(_, a)| a.datagrams).sum();
        let _ = d.decode(&dg, &mut Check);
        let after: u64 = d.accounts().iter().map(|(_, a)| a.datagrams).sum();
        assert_eq!(after, before + 1, "every datagram is counted");
    });
}
