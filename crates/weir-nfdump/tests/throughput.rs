//! Import throughput and size, printed (run with `--nocapture`; meaningful
//! numbers need `--release`). `WEIR_NFDUMP_FLOWS` sets the flow count.
#![allow(clippy::print_stderr)]

mod common;

use std::time::Instant;

use common::*;
use weir_encode::netflow::{Template, TemplateEncoder, TemplateProtocol};
use weir_nfdump::{ImportOptions, NameTime, NfFile, import};

#[test]
fn import_throughput_and_size() {
    if !nfdump_installed("import_throughput_and_size") {
        return;
    }
    let n: usize =
        std::env::var("WEIR_NFDUMP_FLOWS").ok().and_then(|v| v.parse().ok()).unwrap_or(30_000);
    for (flags, name) in [(&[][..], "uncompressed"), (&["-y"][..], "LZ4"), (&["-z"][..], "LZO")] {
        let dir = tempfile::tempdir().unwrap();
        let mut cap = Nfcapd::start(dir.path(), "bench", flags);
        let now = now_ms();
        let mut rng = Rng::new(77);
        let p = TemplateProtocol::V9;
        let mut enc = TemplateEncoder::new(p, 1, now - 3_600_000);
        enc.add_template(Template::ipv4(256, p));
        enc.add_template(Template::ipv6(257, p));
        // A typical mix: 90 % IPv4, 10 % IPv6, the usual v9 fields.
        for chunk in 0..n / 1000 {
            let v6 = chunk % 10 == 9;
            let flows = full_flows(&mut rng, 1000, now, v6);
            cap.send(&enc.data(if v6 { 257 } else { 256 }, &flows, now, chunk == 0));
        }
        let files = cap.stop();
        let nf_bytes: u64 = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();

        let t = Instant::now();
        let mut read = 0u64;
        for f in &files {
            NfFile::open(f)
                .unwrap()
                .for_each_flow(|_| {
                    read += 1;
                    Ok::<_, weir_nfdump::NfError>(())
                })
                .unwrap();
        }
        let read_s = t.elapsed().as_secs_f64();

        let dest = tempfile::tempdir().unwrap();
        let mut opts = ImportOptions::new(dir.path(), dest.path());
        opts.name_time = NameTime::Utc;
        let r = import(opts).unwrap();
        assert_eq!(r.flows, read);
        let secs = r.elapsed.as_secs_f64();
        eprintln!(
            "{name:>12}: {read} flows in {} file(s); read {:.2} M flows/s; import {:.2} M flows/s ({:.3} s); \
             nfcapd {:.1} bytes/flow, weir {:.1} bytes/flow",
            files.len(),
            read as f64 / read_s / 1e6,
            r.flows as f64 / secs / 1e6,
            secs,
            nf_bytes as f64 / read as f64,
            r.weir_file_bytes as f64 / r.flows as f64,
        );
    }
}
