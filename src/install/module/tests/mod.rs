//! Tests of the module runner against small shell-script modules: tree layout, invocation,
//! exit codes, query parsing, timeouts and Cleanup; downloads and Debian's modules live in
//! the submodules.

mod debian;
mod download;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;

use super::*;

/// A temp dir with `modules/` and a `work/` dir, and helpers to add shell-script modules.
pub(super) struct Fixture {
    pub dir: TempDir,
    pub modules: PathBuf,
    pub work: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let modules = dir.path().join("modules");
        let work = dir.path().join("work/modules/v3");
        fs::create_dir_all(&modules).unwrap();
        Fixture { dir, modules, work }
    }

    /// Installs a module whose body runs under `/bin/sh` with `$1` = state, `$2` = tree.
    pub fn module(&self, name: &str, body: &str) -> ModuleRunner {
        let path = self.modules.join(name);
        fs::write(
            &path,
            format!("#!/bin/sh\nSTATE=\"$1\"\nTREE=\"$2\"\n{body}\n"),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        self.runner(name, Duration::from_secs(20))
    }

    pub fn runner(&self, name: &str, timeout: Duration) -> ModuleRunner {
        ModuleRunner::new(&self.modules, &self.work, name, timeout)
            .unwrap()
            .with_kill_grace(Duration::from_millis(200))
    }
}

pub(super) fn context(payload_type: &str) -> TreeContext {
    TreeContext {
        current_artifact_name: Some("release-1".into()),
        current_artifact_group: None,
        device_type: "qemux86-64".into(),
        artifact_name: "release-2".into(),
        artifact_group: Some("beta".into()),
        payload_type: payload_type.into(),
        header_info_json: json!({"payloads": [{"type": payload_type}], "artifact_provides": {"artifact_name": "release-2"}}),
        type_info_json: json!({"type": payload_type}),
        meta_data: None,
    }
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn payload_types_that_escape_the_modules_dir_are_rejected() {
    for bad in ["", ".", "..", "../x", "a/b", "/abs"] {
        let e = ModuleRunner::new("/m", "/w", bad, DEFAULT_TIMEOUT).unwrap_err();
        assert!(
            matches!(e, ModuleError::InvalidPayloadType(_)),
            "{bad:?}: {e}"
        );
    }
    let r = ModuleRunner::new("/m", "/w", "single-file", DEFAULT_TIMEOUT).unwrap();
    assert_eq!(r.module_path(), PathBuf::from("/m/single-file"));
    assert_eq!(r.tree_dir(), PathBuf::from("/w/payloads/0000/tree"));
}

#[test]
fn a_missing_module_is_named_with_the_dir_searched() {
    let f = Fixture::new();
    let r = f.runner("nope", DEFAULT_TIMEOUT);
    r.prepare_tree(&context("nope")).unwrap();
    let e = r.call(State::ArtifactInstall).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "update module not found for payload type nope (looked in {})",
            f.modules.display()
        )
    );
}

#[test]
fn the_tree_has_exactly_upstreams_layout() {
    let f = Fixture::new();
    let r = f.runner("logmod", DEFAULT_TIMEOUT);
    let tree = r.tree_dir();
    fs::create_dir_all(tree.join("files")).unwrap();
    fs::write(tree.join("files/stale"), "x").unwrap();
    let mut ctx = context("logmod");
    ctx.meta_data = Some(json!({"k": [1]}).as_object().unwrap().clone());
    r.prepare_tree(&ctx).unwrap();
    assert!(!tree.join("files").exists(), "the old tree must be removed");
    assert_eq!(read(tree.join("version")), "3\n");
    assert_eq!(read(tree.join("current_artifact_name")), "release-1\n");
    assert_eq!(read(tree.join("current_artifact_group")), "");
    assert_eq!(read(tree.join("current_device_type")), "qemux86-64\n");
    assert_eq!(read(tree.join("header/artifact_name")), "release-2");
    assert_eq!(read(tree.join("header/artifact_group")), "beta");
    assert_eq!(read(tree.join("header/payload_type")), "logmod");
    assert_eq!(
        read(tree.join("header/type-info")),
        "{\n  \"type\": \"logmod\"\n}"
    );
    assert_eq!(
        read(tree.join("header/meta-data")),
        "{\n  \"k\": [\n    1\n  ]\n}"
    );
    let hi: serde_json::Value =
        serde_json::from_str(&read(tree.join("header/header-info"))).unwrap();
    assert_eq!(hi, ctx.header_info_json);
    let mut names: Vec<_> = fs::read_dir(&tree)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let expected = [
        "current_artifact_group",
        "current_artifact_name",
        "current_device_type",
        "header",
        "tmp",
        "version",
    ];
    assert_eq!(names, expected.map(std::ffi::OsString::from));
    assert_eq!(fs::read_dir(tree.join("tmp")).unwrap().count(), 0);

    ctx.meta_data = None;
    r.prepare_tree(&ctx).unwrap();
    assert_eq!(read(tree.join("header/meta-data")), "null");
}

#[test]
fn a_call_passes_state_and_absolute_tree_and_runs_in_the_tree() {
    let f = Fixture::new();
    let r = f.module(
        "logmod",
        r#"echo "$STATE $TREE $(pwd)" >> "$TREE/tmp/calls"; echo out; echo err >&2"#,
    );
    r.prepare_tree(&context("logmod")).unwrap();
    let out = r.call(State::ArtifactInstall).unwrap();
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );
    r.call(State::ArtifactCommit).unwrap();
    let tree = fs::canonicalize(r.tree_dir()).unwrap();
    let t = tree.display();
    assert_eq!(
        read(tree.join("tmp/calls")),
        format!("ArtifactInstall {t} {t}\nArtifactCommit {t} {t}\n")
    );
}

#[test]
fn a_non_zero_exit_is_an_error_carrying_the_output() {
    let f = Fixture::new();
    let r = f.module("failmod", "echo broken >&2; exit 3");
    r.prepare_tree(&context("failmod")).unwrap();
    let e = r.call(State::ArtifactInstall).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ArtifactInstall: update module failmod returned non-zero status 3"
    );
    assert_eq!(e.output().unwrap().stderr, "broken\n");
}

#[test]
fn query_answers_are_parsed_from_the_first_line() {
    let f = Fixture::new();
    let r = f.module(
        "q",
        r#"case "$STATE" in
            NeedsArtifactReboot) cat "$TREE/tmp/reboot" ;;
            SupportsRollback) printf 'Yes\n\n' ;;
            ProvidePayloadFileSizes) ;;
        esac"#,
    );
    r.prepare_tree(&context("q")).unwrap();
    let answer = |text: &str| {
        fs::write(r.tree_dir().join("tmp/reboot"), text).unwrap();
        r.needs_reboot()
    };
    assert_eq!(answer("").unwrap(), RebootAnswer::No);
    assert_eq!(answer("No\n").unwrap(), RebootAnswer::No);
    assert_eq!(answer("Yes").unwrap(), RebootAnswer::Yes);
    assert_eq!(answer("Automatic\n").unwrap(), RebootAnswer::Automatic);
    let e = answer("Yes\nNo\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "NeedsArtifactReboot: too many lines when querying update module q"
    );
    let e = answer("Perhaps\n").unwrap_err();
    assert!(
        matches!(&e, ModuleError::UnknownAnswer { answer, .. } if answer == "Perhaps"),
        "{e}"
    );
    assert!(e.to_string().contains("\"Perhaps\""), "{e}");
    assert!(r.supports_rollback().unwrap());
    assert!(!r.provide_payload_file_sizes().unwrap());
}

#[test]
fn a_hanging_module_is_killed_at_the_timeout() {
    let f = Fixture::new();
    f.module("hang", "sleep 100");
    let r = f.runner("hang", Duration::from_millis(300));
    r.prepare_tree(&context("hang")).unwrap();
    let t = Instant::now();
    let e = r.call(State::ArtifactInstall).unwrap_err();
    assert!(matches!(e, ModuleError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn cleanup_is_skipped_without_a_tree_and_removes_it_otherwise() {
    let f = Fixture::new();
    let marker = f.dir.path().join("cleanup-ran");
    let r = f.module(
        "c",
        &format!(
            r#"[ "$STATE" = Cleanup ] && touch {}; exit 0"#,
            marker.display()
        ),
    );
    assert!(r.call(State::Cleanup).unwrap().stdout.is_empty());
    assert!(!marker.exists(), "Cleanup must not run without a tree");
    r.prepare_tree(&context("c")).unwrap();
    r.call(State::Cleanup).unwrap();
    assert!(marker.exists());
    assert!(!r.tree_dir().exists());
    assert_eq!(fs::read_dir(r.payload_dir()).unwrap().count(), 0);
}

#[test]
fn a_failing_cleanup_still_removes_the_tree() {
    let f = Fixture::new();
    let r = f.module("c", "exit 1");
    r.prepare_tree(&context("c")).unwrap();
    assert!(r.call(State::Cleanup).is_err());
    assert!(!r.tree_dir().exists());
}
