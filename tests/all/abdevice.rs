//! A simulated A/B device, as real as one machine allows: the two root partitions are loop
//! block devices, every command runs in a private mount namespace with the booted partition
//! mounted as `/` and entered with chroot (so active-partition detection compares real device
//! numbers), the boot environment is a U-Boot environment image driven by the real
//! `fw_printenv`/`fw_setenv`, or GRUB's Mender env files, and a reboot applies the boot
//! loader's rules. Needs root, loop devices and `unshare`, which CI has.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mender::install::bootenv::rules::{bootloader_step, VARIABLES};
use mender::install::bootenv::{BootEnv, Bootloader, GrubEnv, UbootEnv, Vars};

use crate::common::*;

/// Which boot loader the device has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    /// U-Boot with meta-mender's `bootlimit=1`, environment in two redundant images.
    Uboot,
    /// GRUB with grub-mender-grubenv's two env copies on the boot partition.
    Grub,
}

/// The device type every A/B test device reports.
pub const DEVICE_TYPE: &str = "abdev";
const ENV_SIZE: usize = 0x4000;
const PART_SIZE: u64 = 32 << 20;

/// One loop device, detached when dropped.
struct Loop(String);

impl Loop {
    fn attach(file: &Path) -> Loop {
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file)
            .output()
            .expect("losetup (util-linux) must be installed");
        assert!(
            out.status.success(),
            "losetup {}: {}; the A/B device tests need root and loop devices",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Loop(String::from_utf8(out.stdout).unwrap().trim().to_string())
    }

    fn number(&self) -> u32 {
        let digits: String = self
            .0
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.chars().rev().collect::<String>().parse().unwrap()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// The simulated device. Partition A holds `rootfs-v1` at the start and is booted.
pub struct AbDevice {
    dir: tempfile::TempDir,
    loader: Loader,
    a: Loop,
    b: Loop,
    booted: u32,
    extra_conf: String,
    read_only_root: bool,
}

/// An ext4 filesystem holding `tree` on `target` (a device, or a file of `size`).
fn mkfs(tree: &Path, target: &Path, size: Option<&str>) {
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(tree)
        .arg(target)
        .args(size)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sh(script: &str) {
    let st = Command::new("sh").arg("-ec").arg(script).status().unwrap();
    assert!(st.success(), "{script}");
}

impl AbDevice {
    /// A device with the given boot loader; `extra_conf` is added to mender.conf's JSON object
    /// (e.g. `"RootfsReadCompareWrite": true,`).
    pub fn new(loader: Loader, extra_conf: &str) -> AbDevice {
        assert!(
            fs::read_to_string("/proc/self/status")
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")),
            "the A/B device tests need root (loop devices, mount namespaces, chroot)"
        );
        let dir = tmp();
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        for f in ["a.img", "b.img"] {
            let file = fs::File::create(d.join(f)).unwrap();
            file.set_len(PART_SIZE).unwrap();
        }
        let (a, b) = (
            Loop::attach(&d.join("a.img")),
            Loop::attach(&d.join("b.img")),
        );
        let dev = AbDevice {
            dir,
            loader,
            booted: a.number(),
            a,
            b,
            extra_conf: extra_conf.to_string(),
            read_only_root: false,
        };
        fs::create_dir_all(dev.data().join("mender")).unwrap();
        fs::create_dir_all(d.join("mnt")).unwrap();
        fs::write(
            dev.data().join("mender/device_type"),
            format!("device_type={DEVICE_TYPE}\n"),
        )
        .unwrap();
        // As a Yocto build does: the bootstrap artifact records what the image is.
        run_in(
            d,
            ours(),
            &[
                "write",
                "bootstrap-artifact",
                "-n",
                "rootfs-v1",
                "-t",
                DEVICE_TYPE,
                "-p",
                "rootfs-image.version:rootfs-v1",
                "-o",
                dev.data().join("mender/bootstrap.mender").to_str().unwrap(),
            ],
        )
        .ok();
        let tree = dev.tree("rootfs-v1");
        mkfs(&tree, Path::new(&dev.a.0), None);
        let n = dev.a.number();
        match loader {
            Loader::Uboot => {
                let mut config = String::new();
                for i in 1..=2 {
                    let image = dev.data().join(format!("uboot.env{i}"));
                    fs::write(&image, vec![0xffu8; ENV_SIZE]).unwrap();
                    config.push_str(&format!("{} 0x0000 {ENV_SIZE:#x}\n", image.display()));
                }
                fs::write(d.join("fw_env.config"), config).unwrap();
                fs::write(
                    d.join("uboot-defaults"),
                    format!(
                        "bootcount=0\nbootlimit=1\nupgrade_available=0\n\
                         mender_boot_part={n}\nmender_boot_part_hex={n:x}\n"
                    ),
                )
                .unwrap();
                // The first write needs the defaults; afterwards the images are valid.
                UbootEnv::new()
                    .with_config(d.join("fw_env.config"))
                    .with_defaults(d.join("uboot-defaults"))
                    .set(&[("bootcount", "0")])
                    .unwrap();
            }
            Loader::Grub => {
                GrubEnv::provision(
                    &dev.grubenv_dir(),
                    &[
                        ("mender_boot_part", &n.to_string()),
                        ("upgrade_available", "0"),
                        ("bootcount", "0"),
                    ],
                )
                .unwrap();
            }
        }
        dev
    }

    /// Mounts the root filesystem read-only from now on, as images made for binary deltas are.
    pub fn read_only_root(mut self) -> Self {
        self.read_only_root = true;
        self
    }

    /// The persistent data partition (datastore, boot environment), seen from the host.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A scratch path outside the device.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn grubenv_dir(&self) -> PathBuf {
        self.data().join("boot-efi/grub-mender-grubenv")
    }

    /// Partition numbers of A and B.
    pub fn numbers(&self) -> (u32, u32) {
        (self.a.number(), self.b.number())
    }

    /// The booted partition's number.
    pub fn booted(&self) -> u32 {
        self.booted
    }

    /// The boot environment as the host sees it.
    pub fn env(&self) -> Box<dyn BootEnv> {
        match self.loader {
            Loader::Uboot => Box::new(UbootEnv::new().with_config(self.path("fw_env.config"))),
            Loader::Grub => Box::new(GrubEnv::native(self.grubenv_dir())),
        }
    }

    /// The Mender boot variables now.
    pub fn vars(&self) -> Vars {
        self.env().get(&VARIABLES).unwrap()
    }

    /// One variable, `""` when unset.
    pub fn var(&self, name: &str) -> String {
        self.vars().get(name).cloned().flatten().unwrap_or_default()
    }

    /// The raw bytes of the stored boot environment (both copies).
    pub fn env_bytes(&self) -> Vec<u8> {
        let files: Vec<PathBuf> = match self.loader {
            Loader::Uboot => (1..=2)
                .map(|i| self.data().join(format!("uboot.env{i}")))
                .collect(),
            Loader::Grub => (1..=2)
                .map(|i| self.grubenv_dir().join(format!("mender_grubenv{i}/env")))
                .collect(),
        };
        files.iter().flat_map(|f| fs::read(f).unwrap()).collect()
    }

    /// A root filesystem tree for version `name`: merged-/usr links and mount points for the
    /// host's /usr, our binaries and the data partition, plus the device's configuration.
    fn tree(&self, name: &str) -> PathBuf {
        let t = self.path(&format!("tree-{name}"));
        let _ = fs::remove_dir_all(&t);
        for sub in [
            "usr",
            "proc",
            "dev",
            "data",
            "tmp",
            "opt/mender",
            "var/lib/mender",
            "var/lock",
            "etc/mender",
            "boot/efi",
        ] {
            fs::create_dir_all(t.join(sub)).unwrap();
        }
        for (link, to) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            std::os::unix::fs::symlink(to, t.join(link)).unwrap();
        }
        fs::write(t.join("etc/rootfs-version"), format!("{name}\n")).unwrap();
        // What images built for upstream's client carry; its 3.x client reads it.
        fs::write(
            t.join("etc/mender/artifact_info"),
            format!("artifact_name={name}\n"),
        )
        .unwrap();
        fs::write(
            t.join("etc/fw_env.config"),
            format!(
                "/data/uboot.env1 0x0000 {ENV_SIZE:#x}\n/data/uboot.env2 0x0000 {ENV_SIZE:#x}\n"
            ),
        )
        .unwrap();
        fs::write(
            t.join("etc/mender/mender.conf"),
            format!(
                "{{{} \"RootfsPartA\": \"{}\", \"RootfsPartB\": \"{}\"}}\n",
                self.extra_conf, self.a.0, self.b.0
            ),
        )
        .unwrap();
        t
    }

    /// An ext4 image of version `name` (24 MiB, smaller than the partitions).
    pub fn image(&self, name: &str) -> PathBuf {
        let tree = self.tree(name);
        let img = self.path(&format!("{name}.ext4"));
        mkfs(&tree, &img, Some("24M"));
        img
    }

    /// A rootfs-image artifact of version `name` written by `tool` (`mender-artifact` path,
    /// ours or upstream's) with extra `write` arguments.
    pub fn artifact(&self, tool: &str, name: &str, extra: &[&str]) -> PathBuf {
        self.artifact_for(tool, name, DEVICE_TYPE, extra)
    }

    /// [`Self::artifact`] for another device type.
    pub fn artifact_for(
        &self,
        tool: &str,
        name: &str,
        device_type: &str,
        extra: &[&str],
    ) -> PathBuf {
        let img = self.image(name);
        let out = self.path(&format!("{name}.mender"));
        let mut args = vec![
            "write",
            "rootfs-image",
            "-f",
            img.to_str().unwrap(),
            "-t",
            device_type,
            "-n",
            name,
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_in(self.dir.path(), tool, &args).ok();
        out
    }

    fn booted_device(&self) -> &str {
        if self.booted == self.a.number() {
            &self.a.0
        } else {
            &self.b.0
        }
    }

    /// `argv` run on the device: a fresh mount namespace with the booted partition as root.
    pub fn command(&self, argv: &[&str]) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_mender-update"))
            .parent()
            .unwrap();
        let mut script = String::from(
            "mount -o \"$ROOT_OPTS\" \"$DEV\" \"$MNT\"\n\
             mount --bind /usr \"$MNT/usr\"\n\
             mount --rbind /dev \"$MNT/dev\"\n\
             mount -t proc proc \"$MNT/proc\"\n\
             mount --bind \"$DATA\" \"$MNT/data\"\n\
             mount --bind \"$DATA/mender\" \"$MNT/var/lib/mender\"\n\
             mount --bind \"$BIN\" \"$MNT/opt/mender\"\n",
        );
        if self.loader == Loader::Grub {
            script.push_str("mount --bind \"$DATA/boot-efi\" \"$MNT/boot/efi\"\n");
        }
        script.push_str("exec chroot \"$MNT\" \"$@\"\n");
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-ec", &script, "sh"])
            .args(argv)
            .env("DEV", self.booted_device())
            .env(
                "ROOT_OPTS",
                if self.read_only_root {
                    "ro,noload"
                } else {
                    "rw"
                },
            )
            .env("MNT", self.path("mnt"))
            .env("DATA", self.data())
            .env("BIN", bin)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env_remove("MENDER_CONF_DIR")
            .env_remove("MENDER_DATA_DIR")
            .env_remove("MENDER_DATASTORE_DIR")
            .stdin(Stdio::null());
        c
    }

    /// Runs our `mender-update` on the device.
    pub fn update(&self, args: &[&str]) -> Run {
        self.update_env(args, &[])
    }

    /// Runs our `mender-update` on the device with extra environment variables.
    pub fn update_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut argv = vec!["/opt/mender/mender-update"];
        argv.extend_from_slice(args);
        let mut c = self.command(&argv);
        c.envs(vars.iter().copied());
        finish(c.output().unwrap())
    }

    /// Installs an artifact from the host, streamed on stdin as from a USB stick or pipe.
    pub fn install(&self, artifact: &Path, extra: &[&str]) -> Run {
        self.install_env(artifact, extra, &[])
    }

    /// [`Self::install`] with extra environment variables.
    pub fn install_env(&self, artifact: &Path, extra: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut argv = vec!["/opt/mender/mender-update", "install"];
        argv.extend_from_slice(extra);
        argv.push("-");
        let mut c = self.command(&argv);
        c.envs(vars.iter().copied());
        c.stdin(fs::File::open(artifact).unwrap());
        finish(c.output().unwrap())
    }

    /// A power cut in the middle of an install: half of the artifact is streamed in, then
    /// the installer is killed while it waits for the rest.
    pub fn install_killed_midway(&self, artifact: &Path) {
        let bytes = fs::read(artifact).unwrap();
        let mut child = self
            .command(&["/opt/mender/mender-update", "install", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, &bytes[..bytes.len() / 2]).unwrap();
        std::io::Write::flush(&mut stdin).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        child.kill().unwrap();
        drop(stdin);
        child.wait().unwrap();
    }

    /// The first `len` bytes of partition B as the host sees them.
    pub fn partition_b(&self, len: usize) -> Vec<u8> {
        head(&self.b.0, len)
    }

    /// The first `len` bytes of partition A as the host sees them.
    pub fn partition_a(&self, len: usize) -> Vec<u8> {
        head(&self.a.0, len)
    }

    /// The version of the running root filesystem, read inside the device.
    pub fn running(&self) -> String {
        let out = self
            .command(&["cat", "/etc/rootfs-version"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// What the installer says is installed.
    pub fn installed(&self) -> String {
        self.update(&["show-artifact"])
            .ok()
            .stdout
            .trim()
            .to_string()
    }

    /// A reboot: the boot loader applies its rules to the environment and boots the partition
    /// they select. Returns the running version afterwards.
    pub fn reboot(&mut self) -> String {
        let (a, b) = self.numbers();
        let kind = match self.loader {
            Loader::Uboot => Bootloader::Uboot { bootlimit: 1 },
            Loader::Grub => Bootloader::Grub,
        };
        let boot = bootloader_step(&self.vars(), kind, a, b).unwrap();
        if !boot.changes.is_empty() {
            self.env().set(&boot.changes.pairs()).unwrap();
        }
        self.booted = boot.partition;
        self.running()
    }

    /// Runs a shell snippet on the host with the device's directory as `$D`.
    pub fn host(&self, script: &str) {
        sh(&format!("D='{}'\n{script}", self.dir.path().display()));
    }

    /// Keeps a copy of the data partition (state store, boot environment).
    pub fn save_data(&self) {
        self.host("rm -rf \"$D/data.saved\"; cp -a \"$D/data\" \"$D/data.saved\"");
    }

    /// Puts the saved data partition back and boots A, as a freshly flashed device.
    pub fn restore_data(&mut self) {
        self.host("rm -rf \"$D/data\"; cp -a \"$D/data.saved\" \"$D/data\"");
        self.booted = self.a.number();
    }
}

/// The first `len` bytes of `path`.
fn head(path: &str, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    std::io::Read::read_exact(&mut fs::File::open(path).unwrap(), &mut buf).unwrap();
    buf
}
