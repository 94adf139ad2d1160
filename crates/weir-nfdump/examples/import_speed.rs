//! Measures reading and importing nfcapd trees:
//! `cargo run --release -p weir-nfdump --example import_speed -- DIR... [--threads N]`.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use weir_nfdump::{ImportOptions, NameTime, NfFile, find_files, import};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let threads = match args.iter().position(|a| a == "--threads") {
        Some(i) => {
            let n = args[i + 1].parse().expect("--threads N");
            args.drain(i..i + 2);
            n
        }
        None => 1,
    };
    for src in args {
        let files = find_files(src.as_ref()).expect("list");
        let nf_bytes: u64 = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
        let t = Instant::now();
        let mut flows = 0u64;
        for f in &files {
            NfFile::open(f)
                .unwrap()
                .for_each_flow(|_| {
                    flows += 1;
                    Ok::<_, weir_nfdump::NfError>(())
                })
                .unwrap();
        }
        let read = t.elapsed().as_secs_f64();
        if std::env::var_os("READ_ONLY").is_some() {
            println!("{src}: {flows} flows, read {:.2} M flows/s", flows as f64 / read / 1e6);
            continue;
        }
        let dest = std::env::temp_dir().join(format!("weir-import-speed-{}", std::process::id()));
        let mut opts = ImportOptions::new(&src, &dest);
        opts.name_time = NameTime::Utc;
        opts.threads = threads;
        let r = import(opts).expect("import");
        if std::env::var_os("KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dest);
        } else {
            println!("kept {}", dest.display());
        }
        let secs = r.elapsed.as_secs_f64();
        println!(
            "{src}: {flows} flows, {} files; read {:.2} M flows/s; import {:.2} M flows/s ({secs:.2} s, {threads} thread(s)); \
             nfcapd {:.1} B/flow -> weir {:.1} B/flow",
            files.len(),
            flows as f64 / read / 1e6,
            r.flows as f64 / secs / 1e6,
            nf_bytes as f64 / flows as f64,
            r.weir_file_bytes as f64 / r.flows.max(1) as f64,
        );
    }
}
