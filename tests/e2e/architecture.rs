//! Imports point down the layer table; heavy dependencies stay confined.

use std::collections::BTreeMap;
use std::process::Command;

/// Layer of each workspace crate (docs/ARCHITECTURE.md).
fn layers() -> BTreeMap<&'static str, u8> {
    BTreeMap::from([
        ("weir-record", 0),
        ("weir-store", 1),
        ("weir-gen", 1),
        ("weir-decode", 1),
        ("weir-encode", 1),
        ("weir-filter", 1),
        ("weir-anon", 1),
        ("weir-collect", 2),
        ("weir-query", 2),
        ("weir-nfdump", 2),
        ("weir-capture", 2),
        ("weir-print", 3),
        ("weir-profile", 3),
        ("weir-plot", 4),
        ("weir-cli", 5),
    ])
}

/// Heavy dependency -> the only crates allowed to depend on it directly.
const CONFINED: &[(&str, &[&str])] = &[
    ("nom", &["weir-decode"]),
    ("pest", &["weir-filter"]),
    ("pest_derive", &["weir-filter"]),
    ("memmap2", &["weir-store"]),
    ("zstd", &["weir-store", "weir-nfdump"]),
    ("lz4_flex", &["weir-nfdump"]),
    ("bzip2", &["weir-nfdump"]),
    ("flate2", &["weir-capture"]),
    ("aes", &["weir-anon"]),
    ("rayon", &["weir-query"]),
    ("plotters", &["weir-plot"]),
    ("clap", &["weir-cli"]),
    ("anyhow", &["weir-cli"]),
];

#[derive(Debug)]
struct Dep {
    name: String,
    kind: Option<String>,
}

fn metadata() -> BTreeMap<String, Vec<Dep>> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    parse_packages(&text)
}

/// A minimal reader for the parts of cargo's metadata JSON we need: each
/// package's name and its dependencies' names and kinds.
fn parse_packages(json: &str) -> BTreeMap<String, Vec<Dep>> {
    let mut out = BTreeMap::new();
    let pkgs = json.split("\"packages\":[").nth(1).expect("packages array");
    // Packages start with {"name":"...","version"; dependencies are objects
    // with "name","source","req","kind".
    for pkg in pkgs.split("{\"name\":\"").skip(1) {
        let Some((name, rest)) = pkg.split_once('"') else { continue };
        if !rest.starts_with(",\"version\"") {
            continue;
        }
        let deps_part = rest.split("\"dependencies\":[").nth(1).unwrap_or("");
        let deps_part = deps_part.split("],\"targets\"").next().unwrap_or("");
        let deps = deps_part
            .split("{\"name\":\"")
            .skip(1)
            .filter_map(|d| {
                let (n, r) = d.split_once('"')?;
                let kind = r
                    .split("\"kind\":")
                    .nth(1)
                    .map(|k| k.trim_start_matches('"').split('"').next().unwrap_or("").to_string());
                let kind = kind.filter(|k| k != "null" && !k.starts_with("null"));
                Some(Dep { name: n.to_string(), kind })
            })
            .collect();
        out.insert(name.to_string(), deps);
    }
    out
}

#[test]
fn workspace_crates_import_only_lower_layers() {
    let layers = layers();
    let meta = metadata();
    assert!(meta.contains_key("weir-record") && meta.contains_key("weir-cli"), "{:?}", meta.keys());
    for (pkg, deps) in &meta {
        let Some(&mine) = layers.get(pkg.as_str()) else {
            assert_eq!(pkg, "weir-e2e", "crate {pkg} missing from the layer table");
            continue;
        };
        for d in deps.iter().filter(|d| d.kind.is_none()) {
            if let Some(&theirs) = layers.get(d.name.as_str()) {
                assert!(theirs < mine, "{pkg} (L{mine}) must not import {} (L{theirs})", d.name);
            }
        }
    }
}

#[test]
fn heavy_dependencies_stay_in_their_crate() {
    let meta = metadata();
    for (pkg, deps) in &meta {
        if pkg == "weir-e2e" {
            continue;
        }
        for d in deps.iter().filter(|d| d.kind.is_none()) {
            if let Some((_, allowed)) = CONFINED.iter().find(|(n, _)| *n == d.name) {
                assert!(
                    allowed.contains(&pkg.as_str()),
                    "{pkg} must not depend on {} (only {allowed:?})",
                    d.name
                );
            }
        }
    }
}
