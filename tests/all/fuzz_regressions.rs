//! Replays every saved fuzz finding (`tests/fixtures/fuzz-regressions/<target>/*`) through the
//! entry point of the target that found it, the same code the fuzzers run.

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../../fuzz/entries.rs"]
mod entries;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn entry(target: &str) -> entries::Entry {
    entries::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz target named {target:?}"))
        .1
}

fn sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn saved_findings_replay_cleanly() {
    let dir = root().join("tests/fixtures/fuzz-regressions");
    assert!(dir.is_dir(), "{} is missing", dir.display());
    let mut replayed = 0;
    for target_dir in sorted(&dir).into_iter().filter(|p| p.is_dir()) {
        let target = target_dir.file_name().unwrap().to_str().unwrap().to_owned();
        let run = entry(&target);
        for file in sorted(&target_dir) {
            eprintln!(
                "replaying {target}/{}",
                file.file_name().unwrap().to_string_lossy()
            );
            run(&fs::read(&file).unwrap());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} saved findings");
}

#[test]
fn every_fuzz_target_is_listed_and_survives_trivial_input() {
    let mut on_disk: Vec<String> = sorted(&root().join("fuzz/fuzz_targets"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = entries::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "fuzz/fuzz_targets and entries::TARGETS differ"
    );
    for (_, run) in entries::TARGETS {
        for input in [&b""[..], b"\0", b"{}", b"a=b\n", &[0xff; 600]] {
            run(input);
        }
    }
}

#[test]
fn the_artifact_entry_reads_real_artifacts() {
    for file in sorted(&root().join("tests/fixtures/upstream")) {
        if file.extension().is_some_and(|e| e == "mender") {
            entries::artifact(&fs::read(&file).unwrap());
        }
    }
}
