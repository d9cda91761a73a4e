//! State-script tests with real shell scripts in temp dirs: discovery, order, version files,
//! error policies, retry-later and timeouts.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::*;

struct Dirs {
    tmp: TempDir,
    runner: ScriptRunner,
}

impl Dirs {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut runner = ScriptRunner::new(
            tmp.path().join("etc/scripts"),
            tmp.path().join("var/scripts"),
        );
        runner.kill_grace = Duration::from_millis(200);
        fs::create_dir_all(&runner.rootfs_dir).unwrap();
        fs::create_dir_all(&runner.artifact_dir).unwrap();
        Dirs { tmp, runner }
    }

    fn log(&self) -> PathBuf {
        self.tmp.path().join("log")
    }

    fn logged(&self) -> Vec<String> {
        let text = fs::read_to_string(self.log()).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }

    /// A script that logs its name, then runs `body`.
    fn script(&self, dir: &Path, name: &str, body: &str, mode: u32) {
        let path = dir.join(name);
        let text = format!(
            "#!/bin/sh\necho \"$(basename \"$0\")\" >> '{}'\n{body}\n",
            self.log().display()
        );
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn rootfs(&self, name: &str, body: &str) {
        self.script(&self.runner.rootfs_dir.clone(), name, body, 0o755);
    }
}

#[test]
fn scripts_run_in_name_order_for_the_chosen_action_only() {
    let d = Dirs::new();
    for name in [
        "Download_Enter_10",
        "Download_Enter_02_b",
        "Download_Enter_02_a",
        "Download_Leave_01",
        "Download_Error_01",
    ] {
        d.rootfs(name, "exit 0");
    }
    let ran = d
        .runner
        .run("Download", Action::Enter, Policy::StopOnFirstError)
        .unwrap();
    let expected = [
        "Download_Enter_02_a",
        "Download_Enter_02_b",
        "Download_Enter_10",
    ];
    assert_eq!(d.logged(), expected);
    assert_eq!(
        ran.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        expected
    );
    fs::remove_file(d.log()).unwrap();
    d.runner
        .run("Download", Action::Error, Policy::RunAllCollectErrors)
        .unwrap();
    assert_eq!(d.logged(), ["Download_Error_01"]);
}

#[test]
fn badly_named_and_non_executable_files_are_skipped() {
    let d = Dirs::new();
    let skipped = [
        "Download_Enter_5",
        "Download_Enter_005",
        "Download_Enter_05_",
        "Download_Enter_05_a b",
        "Download_Enter_05.sh",
        "download_Enter_05",
        "Download_enter_05",
        "Download_Enter_05~x",
    ];
    for name in skipped {
        d.rootfs(name, "exit 1");
    }
    d.script(
        &d.runner.rootfs_dir.clone(),
        "Download_Enter_06",
        "exit 1",
        0o644,
    );
    d.rootfs("Download_Enter_07_ok-suffix.sh", "exit 0");
    // Artifact states never look in the root-filesystem dir.
    d.rootfs("ArtifactInstall_Enter_01", "exit 1");
    d.runner
        .run("Download", Action::Enter, Policy::StopOnFirstError)
        .unwrap();
    d.runner
        .run("ArtifactInstall", Action::Enter, Policy::StopOnFirstError)
        .unwrap();
    assert_eq!(d.logged(), ["Download_Enter_07_ok-suffix.sh"]);
}

#[test]
fn the_version_file_must_say_2_or_3() {
    let d = Dirs::new();
    d.rootfs("Sync_Enter_01", "exit 0");
    for ok in ["2", "3\n"] {
        fs::write(d.runner.rootfs_dir.join("version"), ok).unwrap();
        d.runner
            .run("Sync", Action::Enter, Policy::StopOnFirstError)
            .unwrap();
    }
    fs::write(d.runner.rootfs_dir.join("version"), "4\n").unwrap();
    let e = d
        .runner
        .run("Sync", Action::Enter, Policy::StopOnFirstError)
        .unwrap_err();
    assert!(
        e.to_string().starts_with("unexpected script version \"4\""),
        "{e}"
    );
    assert_eq!(d.logged().len(), 2);
}

#[test]
fn stop_on_first_error_stops_and_run_all_collects() {
    let d = Dirs::new();
    d.rootfs("Download_Enter_01", "echo why >&2; exit 1");
    d.rootfs("Download_Enter_02", "exit 2");
    d.rootfs("Download_Enter_03", "exit 0");
    let e = d
        .runner
        .run("Download", Action::Enter, Policy::StopOnFirstError)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "state script Download_Enter_01 returned exit code 1"
    );
    assert!(matches!(&e, ScriptError::Status { output, .. } if output.stderr == "why\n"));
    assert_eq!(d.logged(), ["Download_Enter_01"]);
    fs::remove_file(d.log()).unwrap();
    let e = d
        .runner
        .run("Download", Action::Enter, Policy::RunAllCollectErrors)
        .unwrap_err();
    match &e {
        ScriptError::Several(v) => assert_eq!(v.len(), 2),
        other => panic!("{other}"),
    }
    assert!(
        e.to_string()
            .starts_with("2 state scripts failed, the first: state script Download_Enter_01"),
        "{e}"
    );
    assert_eq!(d.logged().len(), 3);
}

#[test]
fn exit_21_is_retried_until_the_retry_timeout() {
    let mut d = Dirs::new();
    d.runner.retry_interval = Duration::from_millis(100);
    d.runner.retry_timeout = Duration::from_millis(500);
    d.rootfs("Download_Leave_01", "exit 21");
    let t = Instant::now();
    let e = d
        .runner
        .run("Download", Action::Leave, Policy::StopOnFirstError)
        .unwrap_err();
    assert!(matches!(e, ScriptError::RetryTimeout { .. }), "{e}");
    let attempts = d.logged().len();
    assert!((2..=6).contains(&attempts), "{attempts} attempts");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn exit_21_then_success_succeeds() {
    let mut d = Dirs::new();
    d.runner.retry_interval = Duration::from_millis(100);
    d.runner.retry_timeout = Duration::from_millis(500);
    let flag = d.tmp.path().join("second-time");
    d.rootfs(
        "Download_Leave_01",
        &format!(
            "[ -e '{0}' ] && exit 0; touch '{0}'; exit 21",
            flag.display()
        ),
    );
    d.runner
        .run("Download", Action::Leave, Policy::StopOnFirstError)
        .unwrap();
    assert_eq!(d.logged().len(), 2);
}

fn gone(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_timeout_kills_the_script_and_its_children() {
    let mut d = Dirs::new();
    d.runner.timeout = Duration::from_millis(300);
    let pidfile = d.tmp.path().join("child.pid");
    d.rootfs(
        "Idle_Enter_01",
        &format!("sleep 100 & echo $! > '{}'; sleep 100", pidfile.display()),
    );
    let t = Instant::now();
    let e = d
        .runner
        .run("Idle", Action::Enter, Policy::StopOnFirstError)
        .unwrap_err();
    assert!(matches!(e, ScriptError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let pid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !gone(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(pid), "the script's child {pid} survived");
}

#[test]
fn artifact_scripts_are_stored_fresh_and_run_from_the_artifact_dir() {
    let d = Dirs::new();
    let dir = d.runner.artifact_dir.clone();
    fs::write(
        dir.join("ArtifactInstall_Enter_99_stale"),
        "#!/bin/sh\nexit 1\n",
    )
    .unwrap();
    let body = format!("#!/bin/sh\necho stored >> '{}'\n", d.log().display());
    let scripts = vec![("ArtifactInstall_Enter_01".to_string(), body.into_bytes())];
    d.runner.store_artifact_scripts(&scripts).unwrap();
    assert!(!dir.join("ArtifactInstall_Enter_99_stale").exists());
    assert_eq!(fs::read_to_string(dir.join("version")).unwrap(), "3");
    let mode = fs::metadata(dir.join("ArtifactInstall_Enter_01"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    d.runner
        .run("ArtifactInstall", Action::Enter, Policy::StopOnFirstError)
        .unwrap();
    assert_eq!(d.logged(), ["stored"]);

    for bad in ["../ArtifactInstall_Enter_01", "a/b", "..", "", "version"] {
        let e = d
            .runner
            .store_artifact_scripts(&[(bad.to_string(), vec![])])
            .unwrap_err();
        assert!(matches!(e, ScriptError::InvalidName(_)), "{bad:?}: {e}");
    }
    assert!(
        dir.join("ArtifactInstall_Enter_01").exists(),
        "a rejected set must not wipe the dir"
    );
}

#[test]
fn unknown_states_and_missing_dirs() {
    let d = Dirs::new();
    let e = d
        .runner
        .run("Bogus", Action::Enter, Policy::StopOnFirstError)
        .unwrap_err();
    assert_eq!(e.to_string(), "unknown state \"Bogus\" for state scripts");
    fs::remove_dir_all(&d.runner.artifact_dir).unwrap();
    assert!(d
        .runner
        .run("ArtifactCommit", Action::Leave, Policy::RunAllCollectErrors)
        .unwrap()
        .is_empty());
}
