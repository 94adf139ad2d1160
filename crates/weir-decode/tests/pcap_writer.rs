//! weir-encode's pcap writer read back by weir-decode's capture reader.

use weir_decode::pcap::frames;
use weir_encode::pcap::{LINKTYPE_ETHERNET, PcapWriter};

#[test]
fn written_packets_read_back() {
    let mut w = PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET).unwrap();
    w.packet(1_700_000_000_123_456_789, 1500, &[1, 2, 3, 4]).unwrap();
    w.packet(1_700_000_001_000_000_000, 2, &[9; 10]).unwrap();
    assert_eq!(w.packets(), 2);
    let bytes = w.into_inner();
    let frames: Vec<_> = frames(&bytes).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].ts_ns, 1_700_000_000_123_456_000);
    assert_eq!((frames[0].orig_len, frames[0].data), (1500, &[1u8, 2, 3, 4][..]));
    assert_eq!((frames[1].linktype, frames[1].orig_len), (1, 10));
}

#[test]
fn resumed_stream_and_cut_tail() {
    let mut w = PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET).unwrap();
    w.packet(1_000_000_000, 60, &[7; 60]).unwrap();
    let mut w = PcapWriter::resume(w.into_inner());
    w.packet(2_000_000_000, 60, &[8; 60]).unwrap();
    let bytes = w.into_inner();
    assert_eq!(bytes.len(), 24 + 2 * (16 + 60));
    let n = frames(&bytes).unwrap().filter(Result::is_ok).count();
    assert_eq!(n, 2);
    // Cut anywhere inside the second record: the readable part ends after
    // the first one.
    for cut in 24 + 76 + 1..bytes.len() {
        let mut it = frames(&bytes[..cut]).unwrap();
        let mut good = 0;
        let mut end = 24;
        while let Some(Ok(_)) = it.next() {
            good += 1;
            end = it.offset();
        }
        assert_eq!((good, end), (1, 24 + 76), "cut at {cut}");
    }
}
