//! `weir profile`, `weir expire`, `weir graph` and `weir query --profile`
//! as a shell sees them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn weir() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.env("TZ", "UTC").env_remove("WEIR_PROFILES").env_remove("WEIR_DATA");
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    weir().current_dir(dir).args(args).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{args:?}: {err}");
    String::from_utf8(o.stdout).unwrap()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles")
}

/// Two hours from 06:00 with a slammer outbreak at 07:00 for 20 minutes,
/// under `<dir>/flows`.
fn history(dir: &Path) {
    ok(
        dir,
        &[
            "gen",
            "-w",
            "flows",
            "--start",
            "2024-03-04T06:00",
            "--duration",
            "2h",
            "--rate",
            "50/s",
            "--slammer",
            "2024-03-04T07:00+20m",
            "--slammer-rate",
            "100/s",
        ],
    );
}

fn summary_flows(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("Summary:"))
        .unwrap_or_else(|| panic!("no summary in {text}"))
        .to_string()
}

#[test]
fn profile_lifecycle_add_list_show_modify_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let slammer = examples().join("slammer.toml");
    let out = ok(d, &["profile", "add", slammer.to_str().unwrap()]);
    assert!(out.contains("added profile 'slammer'"), "{out}");
    assert!(d.join("profiles/slammer.toml").is_file(), "default profiles directory");
    let again = run(d, &["profile", "add", slammer.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    ok(
        d,
        &[
            "profile",
            "add",
            "web",
            "--start",
            "2024-03-04",
            "--channel",
            "http=port 80",
            "--channel",
            "-https=port 443",
        ],
    );
    let list = ok(d, &["profile", "list"]);
    assert!(
        list.contains("slammer") && list.contains("web") && list.contains("not built"),
        "{list}"
    );
    let show = ok(d, &["profile", "show", "web"]);
    assert!(show.contains("name = \"https\"") && show.contains("sign = \"-\""), "{show}");
    let m =
        ok(d, &["profile", "modify", "web", "--channel", "http=port 8080", "--description", "w"]);
    assert!(m.contains("modified"), "{m}");
    assert!(ok(d, &["profile", "show", "web"]).contains("port 8080"));
    ok(d, &["profile", "delete", "web"]);
    assert!(!d.join("profiles/web.toml").exists() && !d.join("profiles/web").exists());
    let gone = run(d, &["profile", "show", "web"]);
    assert_eq!(gone.status.code(), Some(255));
}

#[test]
fn profile_names_that_try_to_escape_the_profiles_directory_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("profiles")).unwrap();
    std::fs::write(d.join("victim.toml"), "keep").unwrap();
    for args in [
        vec!["profile", "add", "../victim", "--start", "2024-03-04", "--channel", "a=any"],
        vec!["profile", "add", "a/b", "--start", "2024-03-04", "--channel", "a=any"],
        vec!["profile", "add", ".hidden", "--start", "2024-03-04", "--channel", "a=any"],
        vec!["profile", "add", "ok", "--start", "2024-03-04", "--channel", "../../x=any"],
        vec!["profile", "show", "../victim"],
        vec!["profile", "delete", "../victim"],
        vec!["profile", "build", "/etc/passwd"],
        vec!["profile", "update", ".."],
    ] {
        let o = run(d, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(255), "{args:?}: {err}");
        assert!(err.contains("invalid") && err.contains("name"), "{args:?}: {err}");
    }
    // A definition file whose name escapes.
    std::fs::write(
        d.join("evil.toml"),
        "name = '../victim'\nstart = '2024-03-04'\n[[channel]]\nname = 'a'\n",
    )
    .unwrap();
    let o = run(d, &["profile", "add", "evil.toml"]);
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(std::fs::read_to_string(d.join("victim.toml")).unwrap(), "keep");
    assert!(!d.join("profiles/ok.toml").exists());
    // A broken TOML names the file and the line.
    std::fs::write(d.join("broken.toml"), "name = \"x\"\nstart = [\n").unwrap();
    let o = run(d, &["profile", "add", "broken.toml"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("broken.toml") && err.contains("line"), "{err}");
}

#[test]
fn retroactive_slammer_build_then_queries_on_the_profile_equal_plain_queries() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    history(d);
    std::fs::create_dir_all(d.join("profiles")).unwrap();
    let def = std::fs::read_to_string(examples().join("slammer.toml"))
        .unwrap()
        .replace("2024-03-04T09:00", "2024-03-04T06:00");
    std::fs::write(d.join("slammer.toml"), def).unwrap();
    ok(d, &["profile", "add", "slammer.toml"]);
    let out = ok(d, &["profile", "build", "slammer", "--no-progress"]);
    assert!(out.starts_with("slammer: 24 slots, 24 files"), "{out}");
    let plain = ok(d, &["query", "-R", "flows", "-o", "null", "proto udp and dst port 1434"]);
    let prof = ok(d, &["query", "-R", "flows", "--profile", "slammer", "-o", "null"]);
    assert_eq!(summary_flows(&prof), summary_flows(&plain));
    let by_path = ok(
        d,
        &[
            "query",
            "-R",
            "flows",
            "--profile",
            "profiles/slammer.toml",
            "--channel",
            "slammer",
            "-o",
            "null",
        ],
    );
    assert_eq!(summary_flows(&by_path), summary_flows(&plain));
    let bad = run(d, &["query", "-R", "flows", "--profile", "slammer", "--channel", "nope"]);
    assert_eq!(bad.status.code(), Some(255));
    // Update after the build: nothing new, idempotent.
    let up = ok(d, &["profile", "update"]);
    assert!(up.contains("slammer: 0 new slots"), "{up}");
    // The graph of the build, as SVG, equals the golden file
    // (SNAPSHOTS=overwrite rewrites it).
    let range = ["--from", "2024-03-04T06:00", "--to", "2024-03-04T08:00", "--size", "640x240"];
    let mut args = vec!["graph", "slammer", "-o", "slammer.svg"];
    args.extend(range);
    ok(d, &args);
    let svg = std::fs::read_to_string(d.join("slammer.svg")).unwrap();
    assert_golden("slammer.svg", &svg);
    let mut args = vec!["graph", "slammer", "--by-proto", "--unit", "packets", "-o", "p.png"];
    args.extend(range);
    ok(d, &args);
    assert_eq!(&std::fs::read(d.join("p.png")).unwrap()[1..4], b"PNG");
}

fn assert_golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/graph").join(name);
    if std::env::var_os("SNAPSHOTS").is_some_and(|v| v == "overwrite") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{}: missing; bless with SNAPSHOTS=overwrite", path.display()));
    assert!(want == got, "{} differs (bless with SNAPSHOTS=overwrite)", path.display());
}

#[test]
fn expiry_by_age_by_size_and_with_the_watermark() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    history(d);
    let day = d.join("flows/2024/03/04");
    let open = day.join(format!(".weir.202403040800.{}.0.tmp", std::process::id()));
    std::fs::write(&open, b"open slot").unwrap();
    let list = ok(d, &["expire", "flows", "-l"]);
    assert!(list.contains("Numfiles:  24") && list.contains("Status:    OK"), "{list}");
    // Age: 1 hour at 08:00, watermark 100 %: the slots before 07:00 go.
    let dry = ok(
        d,
        &[
            "expire",
            "flows",
            "--max-age",
            "1h",
            "-w",
            "100",
            "--now",
            "2024-03-04T08:00",
            "--dry-run",
        ],
    );
    assert!(dry.contains("Would expire files:      12"), "{dry}");
    assert_eq!(std::fs::read_dir(&day).unwrap().count(), 25, "dry run deletes nothing");
    let out =
        ok(d, &["expire", "flows", "--max-age", "1h", "-w", "100", "--now", "2024-03-04T08:00"]);
    assert!(out.contains("Expired files:      12") && out.contains("Numfiles:  12"), "{out}");
    // Watermark 50 %: down to half an hour.
    let out =
        ok(d, &["expire", "flows", "--max-age", "50m", "-w", "50", "--now", "2024-03-04T08:00"]);
    assert!(out.contains("Numfiles:  5"), "{out}");
    // Nothing over: quiet prints nothing.
    let q = ok(d, &["expire", "flows", "--max-age", "1h", "--now", "2024-03-04T08:00", "-q"]);
    assert_eq!(q, "");
    // Size: down to 95 % of the size of two files.
    let two: u64 = {
        let mut v: Vec<u64> = std::fs::read_dir(&day)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| {
                use std::os::unix::fs::MetadataExt;
                e.metadata().unwrap().blocks() * 512
            })
            .collect();
        v.sort();
        v.iter().rev().take(2).sum()
    };
    let out = ok(d, &["expire", "flows", "--max-size", &two.to_string()]);
    assert!(out.contains("Numfiles:  2") || out.contains("Numfiles:  1"), "{out}");
    assert!(open.exists(), "the open slot is never touched");
    // Everything older than a day: the day directory empties and goes, the open slot stays.
    std::fs::remove_file(&open).unwrap();
    ok(d, &["expire", "flows", "--max-age", "1d", "--now", "2024-03-10"]);
    assert!(!d.join("flows/2024").exists(), "empty directories removed");
    assert!(d.join("flows").is_dir(), "the root stays");
}

#[test]
fn a_materialized_profile_is_updated_then_expired_by_its_own_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    history(d);
    std::fs::write(
        d.join("udp.toml"),
        "name = 'udp'\nstart = '2024-03-04T06:00'\nstorage = 'materialized'\n\
         [expire]\nmax_size = '1M'\n[[channel]]\nname = 'udp'\nfilter = 'proto udp'\n",
    )
    .unwrap();
    ok(d, &["profile", "add", "udp.toml"]);
    let out = ok(d, &["profile", "update", "--expire"]);
    assert!(out.contains("udp: 24 new slots") && out.contains("udp: expired "), "{out}");
    let listed = ok(d, &["expire", "profiles/udp/data", "-l"]);
    let size: u64 = listed
        .lines()
        .find_map(|l| l.strip_prefix("Filesize:  "))
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(size <= 1 << 20, "{listed}");
    // The profile's flows still answer queries (what is left of them).
    let q = ok(d, &["query", "--profile", "udp", "-o", "null"]);
    assert!(q.contains("Summary: total flows: "), "{q}");
}
