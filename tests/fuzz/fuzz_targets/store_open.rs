//! Arbitrary bytes as a slot file: open/verify/read give `Err`, never a
//! panic or an out-of-bounds read.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use weir_store::{ChunkReader, SlotFile};

fuzz_target!(|data: &[u8]| {
    let mut f = tempfile_in_tmp();
    f.1.write_all(data).unwrap();
    drop(f.1);
    if let Ok(file) = SlotFile::open(&f.0) {
        let _ = file.verify();
        let mut r = ChunkReader::new();
        for i in 0..file.blocks().len() {
            if let Ok(b) = file.block(i) {
                let _ = b.read_all(&mut r);
            }
        }
    }
    let _ = std::fs::remove_file(&f.0);
});

fn tempfile_in_tmp() -> (std::path::PathBuf, std::fs::File) {
    let p = std::env::temp_dir().join(format!("weir-fuzz-{}.weir", std::process::id()));
    let f = std::fs::File::create(&p).unwrap();
    (p, f)
}
