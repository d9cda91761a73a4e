//! Tests of the GRUB boot environment: native files checked with `grub-editenv`, torn-copy
//! repair, lock files, and the tool backend through stand-in scripts.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::*;

const INITIAL: &[(&str, &str)] = &[
    ("bootcount", "0"),
    ("mender_boot_part", "2"),
    ("upgrade_available", "0"),
];

/// `grub-editenv FILE list`; a missing tool fails the test, since CI installs it.
fn editenv_list(file: &Path) -> String {
    let out = Command::new("grub-editenv")
        .arg(file)
        .arg("list")
        .output()
        .unwrap_or_else(|e| {
            panic!("grub-editenv: {e}; apt-get install grub-common to run this test")
        });
    assert!(
        out.status.success(),
        "grub-editenv list {}: {out:?}",
        file.display()
    );
    String::from_utf8(out.stdout).unwrap()
}

fn env_file(dir: &Path, n: u8) -> PathBuf {
    dir.join(format!("mender_grubenv{n}/env"))
}

fn lock_file(dir: &Path, n: u8) -> PathBuf {
    dir.join(format!("mender_grubenv{n}/lock"))
}

#[test]
fn native_write_is_readable_by_grub_editenv() {
    let dir = tempfile::tempdir().unwrap();
    let env = GrubEnv::provision(dir.path(), INITIAL).unwrap();
    env.set(&[
        ("mender_boot_part", "3"),
        ("mender_boot_part_hex", "3"),
        ("upgrade_available", "1"),
        ("bootcount", "0"),
    ])
    .unwrap();
    let want = "bootcount=0\nmender_boot_part=3\nupgrade_available=1\nmender_boot_part_hex=3\n";
    for n in [1, 2] {
        assert_eq!(editenv_list(&env_file(dir.path(), n)), want);
        assert_eq!(editenv_list(&lock_file(dir.path(), n)), "editing=0\n");
        assert_eq!(fs::metadata(env_file(dir.path(), n)).unwrap().len(), 1024);
    }
    let got = env
        .get(&["mender_boot_part", "upgrade_available", "nothing"])
        .unwrap();
    assert_eq!(got["mender_boot_part"].as_deref(), Some("3"));
    assert_eq!(got["upgrade_available"].as_deref(), Some("1"));
    assert_eq!(got["nothing"], None);

    env.set(&[("mender_boot_part_hex", "")]).unwrap();
    assert!(!editenv_list(&env_file(dir.path(), 1)).contains("hex"));
}

#[test]
fn reads_files_grub_editenv_wrote() {
    let dir = tempfile::tempdir().unwrap();
    GrubEnv::provision(dir.path(), INITIAL).unwrap();
    for n in [1, 2] {
        let file = env_file(dir.path(), n);
        fs::remove_file(&file).unwrap();
        let run = |args: &[&str]| {
            let ok = Command::new("grub-editenv").arg(&file).args(args).status();
            let ok = ok.unwrap_or_else(|e| {
                panic!("grub-editenv: {e}; apt-get install grub-common to run this test")
            });
            assert!(ok.success(), "grub-editenv {args:?}");
        };
        run(&["create"]);
        run(&["set", "mender_boot_part=5", "upgrade_available=0"]);
    }
    let env = GrubEnv::native(dir.path());
    let got = env.get(&["mender_boot_part"]).unwrap();
    assert_eq!(got["mender_boot_part"].as_deref(), Some("5"));
    env.set(&[("bootcount", "1")]).unwrap();
    assert_eq!(
        editenv_list(&env_file(dir.path(), 1)),
        "mender_boot_part=5\nupgrade_available=0\nbootcount=1\n"
    );
}

#[test]
fn torn_env1_is_repaired_from_env2() {
    let dir = tempfile::tempdir().unwrap();
    let env = GrubEnv::provision(dir.path(), INITIAL).unwrap();
    env.set(&[("mender_boot_part", "3")]).unwrap();
    // Power lost while env1 was being written: its lock says editing and its bytes are garbage.
    fs::write(
        env_file(dir.path(), 1),
        b"# GRUB Environment Block\nmender_bo",
    )
    .unwrap();
    set_editing(&lock_file(dir.path(), 1), "1").unwrap();

    let got = env.get(&["mender_boot_part", "bootcount"]).unwrap();
    assert_eq!(got["mender_boot_part"].as_deref(), Some("3"));
    assert_eq!(got["bootcount"].as_deref(), Some("0"));
    assert_eq!(
        fs::read(env_file(dir.path(), 1)).unwrap(),
        fs::read(env_file(dir.path(), 2)).unwrap()
    );
    assert_eq!(editenv_list(&lock_file(dir.path(), 1)), "editing=0\n");
}

#[test]
fn half_written_env2_is_repaired_from_env1_before_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let env = GrubEnv::provision(dir.path(), INITIAL).unwrap();
    // Power lost after env2 got new content but before its lock was cleared: env1 is the
    // consistent old state and wins.
    let mut half = EnvBlock::new();
    half.set("mender_boot_part", "9").unwrap();
    fs::write(env_file(dir.path(), 2), half.to_bytes()).unwrap();
    set_editing(&lock_file(dir.path(), 2), "1").unwrap();

    env.set(&[("bootcount", "1")]).unwrap();
    for n in [1, 2] {
        assert_eq!(
            editenv_list(&env_file(dir.path(), n)),
            "bootcount=1\nmender_boot_part=2\nupgrade_available=0\n"
        );
    }
}

#[test]
fn both_copies_torn_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let env = GrubEnv::provision(dir.path(), INITIAL).unwrap();
    for n in [1, 2] {
        set_editing(&lock_file(dir.path(), n), "1").unwrap();
    }
    let err = env.get(&["bootcount"]).unwrap_err();
    assert!(matches!(err, BootEnvError::BothCopiesTorn { .. }), "{err}");
    assert!(err
        .to_string()
        .ends_with("both grubenv copies are torn or unreadable"));
}

#[test]
fn full_block_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let env = GrubEnv::provision(dir.path(), INITIAL).unwrap();
    let before = fs::read(env_file(dir.path(), 2)).unwrap();
    let big = "x".repeat(1100);
    let err = env.set(&[("bootcount", "1"), ("big", &big)]).unwrap_err();
    assert!(matches!(err, BootEnvError::EnvBlockFull { .. }), "{err}");
    assert_eq!(fs::read(env_file(dir.path(), 2)).unwrap(), before);
    assert_eq!(fs::read(env_file(dir.path(), 1)).unwrap(), before);
}

#[test]
fn missing_directory_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("nowhere");
    let err = GrubEnv::native(&gone).get(&["a"]).unwrap_err();
    assert!(err.to_string().contains("nowhere"), "{err}");
}

/// Writes stand-ins for Mender's tools that keep `name=value` lines in `store`; with `honest`
/// false the set tool ignores its input and exits 0, like a tool fed a format it skips.
fn fake_tools(dir: &Path, honest: bool) -> GrubTools {
    let store = dir.join("store");
    fs::write(&store, "mender_boot_part=2\nupgrade_available=0\n").unwrap();
    let print = format!("#!/bin/sh\ncat '{}'\n", store.display());
    let set = if honest {
        format!(
            "#!/bin/sh\n[ \"$1 $2\" = \"-s -\" ] || exit 1\nwhile read -r k v; do\n\
             grep -v \"^$k=\" '{0}' > '{0}.new'; echo \"$k=$v\" >> '{0}.new'; mv '{0}.new' '{0}'\n\
             done\n",
            store.display()
        )
    } else {
        "#!/bin/sh\ncat > /dev/null\n".to_owned()
    };
    for (name, body) in [(GrubTools::PRINT, print), (GrubTools::SET, set)] {
        let path = dir.join(name);
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    GrubTools::find(dir.as_os_str()).expect("stand-in tools are found on the path list")
}

#[test]
fn tools_are_used_when_on_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let tools = fake_tools(dir.path(), true);
    let env = GrubEnv::detect(dir.path().join("unused"), Some(dir.path().as_os_str()));
    env.set(&[("mender_boot_part", "3"), ("upgrade_available", "1")])
        .unwrap();
    let got = env.get(&["mender_boot_part", "upgrade_available"]).unwrap();
    assert_eq!(got["mender_boot_part"].as_deref(), Some("3"));
    assert_eq!(got["upgrade_available"].as_deref(), Some("1"));
    assert_eq!(tools.print, dir.path().join(GrubTools::PRINT));

    let empty = tempfile::tempdir().unwrap();
    assert_eq!(GrubTools::find(empty.path().as_os_str()), None);
}

#[test]
fn a_tool_that_ignores_input_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let env = GrubEnv::with_tools(fake_tools(dir.path(), false));
    let err = env.set(&[("upgrade_available", "1")]).unwrap_err();
    assert!(matches!(err, BootEnvError::NotApplied { .. }), "{err}");
    assert!(
        err.to_string().contains("did not apply upgrade_available"),
        "{err}"
    );
}
