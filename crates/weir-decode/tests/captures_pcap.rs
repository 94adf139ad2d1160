//! The capture reader against every capture in ../shared/captures: each
//! frame that tshark decoded export records from (the `frame` column of the
//! `.expected.csv`) must come out of `read_capture` as a UDP datagram, and
//! no capture may stop early.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn captures_dir() -> Option<PathBuf> {
    let d = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/captures"));
    d.is_dir().then_some(d)
}

#[test]
fn every_decoded_frame_is_found_as_a_udp_datagram() {
    let Some(dir) = captures_dir() else {
        eprintln!("skipped: ../shared/captures is not here");
        return;
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let stem = name.rsplit_once('.').unwrap().0;
        let csv = dir.join(format!("{stem}.expected.csv"));
        let bytes = std::fs::read(&path).unwrap();
        let cap = weir_decode::pcap::read_capture(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(cap.error.is_none(), "{name}: {:?}", cap.error);
        let ours: BTreeSet<usize> = cap.datagrams.iter().map(|d| d.frame).collect();
        let text =
            std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == "frame").unwrap();
        let expected: BTreeSet<usize> =
            lines.filter_map(|l| l.split(',').nth(col)?.parse().ok()).collect();
        let missing: Vec<_> = expected.difference(&ours).collect();
        assert!(missing.is_empty(), "{name}: frames {missing:?} not found as UDP datagrams");
        checked += 1;
    }
    assert!(checked >= 80, "only {checked} captures found");
}
