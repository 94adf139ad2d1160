//! `weir anon`: every row of every copy holds the Crypto-PAn image of the
//! original's addresses, zero AS numbers and otherwise the same values;
//! footers name the exporters anonymized; originals are never touched.

use std::path::{Path, PathBuf};

use weir_anon::{ADDRESS_FIELDS, CryptoPan, ZEROED_FIELDS, parse_key};
use weir_record::{FIELDS, Field};
use weir_store::{ChunkReader, SlotFile, TimeRange, list_files};

const KEY: &str = "a key of exactly thirty-two byte";

fn weir(args: &[&str]) -> (u8, String) {
    let mut out = Vec::new();
    let code = weir_cli::run(std::iter::once("weir").chain(args.iter().copied()), &mut out)
        .unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
    (code, String::from_utf8(out).unwrap())
}

fn files(dir: &Path) -> Vec<PathBuf> {
    list_files(dir, TimeRange::ALL).unwrap().into_iter().map(|e| e.path).collect()
}

#[test]
fn copies_hold_the_anonymized_flows_of_the_originals() {
    let tmp = tempfile::tempdir().unwrap();
    let (orig, anon) = (tmp.path().join("orig"), tmp.path().join("anon"));
    let (o, a) = (orig.to_str().unwrap(), anon.to_str().unwrap());
    let (code, _) = weir(&[
        "gen",
        "--seed",
        "5",
        "--start",
        "2024-03-04T06:00",
        "--duration",
        "12m",
        "--rate",
        "50/s",
        "-w",
        o,
    ]);
    assert_eq!(code, 0);
    let (code, text) = weir(&["anon", "-K", KEY, "-r", o, "-w", a]);
    assert_eq!(code, 0, "{text}");
    let cp = CryptoPan::new(&parse_key(KEY).unwrap());
    let (src, dst) = (files(&orig), files(&anon));
    assert!(src.len() >= 3, "{src:?}");
    assert_eq!(src.len(), dst.len());
    let mut rows = 0;
    let mut reader = ChunkReader::new();
    for (s, d) in src.iter().zip(&dst) {
        assert_eq!(s.strip_prefix(&orig).unwrap(), d.strip_prefix(&anon).unwrap());
        let (fs, fd) = (SlotFile::open(s).unwrap(), SlotFile::open(d).unwrap());
        assert_eq!(fs.rows(), fd.rows());
        assert_eq!(fs.info().slot_start_s, fd.info().slot_start_s);
        let exp: Vec<u128> = fs.info().exporters.iter().map(|e| cp.addr(e.addr)).collect();
        let got: Vec<u128> = fd.info().exporters.iter().map(|e| e.addr).collect();
        assert_eq!(exp, got);
        let a: Vec<_> = (0..fs.blocks().len())
            .flat_map(|i| fs.block(i).unwrap().read_all(&mut reader).unwrap().records())
            .collect();
        let b: Vec<_> = (0..fd.blocks().len())
            .flat_map(|i| fd.block(i).unwrap().read_all(&mut reader).unwrap().records())
            .collect();
        for (x, y) in a.iter().zip(&b) {
            for f in FIELDS.iter().map(|m| m.field) {
                let (vx, vy) = (x.get(f), y.get(f));
                if ADDRESS_FIELDS.contains(&f) {
                    assert_eq!(vx.map(|v| cp.addr(v)), vy, "{f}");
                } else if ZEROED_FIELDS.contains(&f) {
                    assert_eq!(vy, vx.map(|_| 0), "{f}");
                } else {
                    assert_eq!(vx, vy, "{f}");
                }
            }
            // The data has addresses and AS numbers to hide.
            assert!(x.get(Field::SrcAddr).is_some());
        }
        rows += a.len();
    }
    assert!(text.contains(&format!("anonymized {rows} flows in {} files", src.len())), "{text}");

    // A damaged file among good ones: named and skipped, the rest copied,
    // exit 1, no copy of the damaged one left behind.
    let mixed = tmp.path().join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    std::fs::copy(&src[0], mixed.join(src[0].file_name().unwrap())).unwrap();
    let bad = mixed.join("weir.202403040700");
    let mut cut = std::fs::read(&src[1]).unwrap();
    cut.truncate(cut.len() / 2);
    std::fs::write(&bad, &cut).unwrap();
    let out2 = tmp.path().join("mixed-anon");
    let (code, text) =
        weir(&["anon", "-K", KEY, "-r", mixed.to_str().unwrap(), "-w", out2.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("weir.202403040700") && text.contains("(skipped)"), "{text}");
    assert!(text.contains("in 1 files") && text.contains("1 files skipped"), "{text}");
    let left: Vec<_> = std::fs::read_dir(&out2).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![src[0].file_name().unwrap().to_os_string()]);

    // Never over existing copies, never into the input tree.
    let (code, text) = weir(&["anon", "-K", KEY, "-r", o, "-w", a]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("refusing to overwrite") && text.contains("in 0 files"), "{text}");
    let mut out = Vec::new();
    let inside = orig.join("x");
    let err = weir_cli::run(
        ["weir", "anon", "-K", KEY, "-r", o, "-w", inside.to_str().unwrap()],
        &mut out,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("write the copies elsewhere"), "{err:#}");
    assert!(!inside.exists());
    // Spelled another way, still inside.
    let sneaky = format!("{a}/../orig/./y");
    let err =
        weir_cli::run(["weir", "anon", "-K", KEY, "-r", o, "-w", &sneaky], &mut out).unwrap_err();
    assert!(format!("{err:#}").contains("write the copies elsewhere"), "{err:#}");
    let err =
        weir_cli::run(["weir", "anon", "-K", "short", "-r", o, "-w", a], &mut out).unwrap_err();
    assert!(format!("{err:#}").contains("32 characters"), "{err:#}");
}
