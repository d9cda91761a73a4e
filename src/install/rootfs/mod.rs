//! The native rootfs-image payload handler: writes an A/B root filesystem image to the inactive
//! partition and drives the boot variables through [`BootEnv`], following upstream's
//! `rootfs-image` module (spec §6). A library for the installer to call instead of running a
//! module script; the boot protocol itself lives in [`super::bootenv::rules`].

mod direct;
/// The running root's identity (device numbers, kernel command line).
pub mod root;
/// Persisted handler state: the download marker and the original partition.
pub mod state;
/// Streaming an image onto a partition, with read-compare-write and read-back verification.
pub mod write;

#[cfg(test)]
mod cycle_tests;
#[cfg(test)]
mod tests;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::bootenv::rules::{self, VARIABLES};
use super::bootenv::{self, BootEnv, BootEnvError, Slots, Vars};
use super::module::RebootAnswer;

pub use root::RootInfo;
pub use state::DownloadRecord;
pub use write::DownloadStats;

/// The handler's settings, from mender.conf's `RootfsPartA`/`RootfsPartB` and the
/// read-compare-write option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsConfig {
    /// `RootfsPartA`: a block device, or a plain file standing for one.
    pub part_a: PathBuf,
    /// `RootfsPartB`: the same for the other slot.
    pub part_b: PathBuf,
    /// Read each chunk first and write only the ones that differ, sparing flash wear and time
    /// when much of the image is unchanged.
    pub read_compare_write: bool,
    /// Treat a regular file as a fixed-size partition (its current length) instead of letting it
    /// take the image's size; for simulated devices built from preallocated images.
    pub fixed_size_files: bool,
}

/// Why the handler refused or failed; each message is one line and names the partition, file or
/// payload concerned.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The boot environment could not be read or written, or a boot rule refused.
    #[error(transparent)]
    BootEnv(#[from] BootEnvError),
    /// A partition path that is not valid UTF-8 cannot be compared with the boot environment.
    #[error("partition path {} is not valid utf-8", .0.display())]
    BadPath(PathBuf),
    /// Opening, reading, writing or syncing a partition failed.
    #[error("partition {}: {source}", path.display())]
    Partition {
        /// The partition.
        path: PathBuf,
        /// The error from the operating system.
        source: io::Error,
    },
    /// The configured partition is neither a block device nor a regular file.
    #[error("partition {} is neither a block device nor a regular file", .0.display())]
    NotAPartition(PathBuf),
    /// The image is larger than the partition; refused before writing anything.
    #[error("image of {size} bytes does not fit partition {} ({capacity} bytes)", path.display())]
    TooLarge {
        /// The partition.
        path: PathBuf,
        /// The image size.
        size: u64,
        /// The partition size.
        capacity: u64,
    },
    /// The payload stream failed, including a checksum mismatch reported at its end.
    #[error("reading payload {name}: {source}")]
    Stream {
        /// The payload file name.
        name: String,
        /// The stream's error.
        source: io::Error,
    },
    /// The payload ended before its announced size.
    #[error("payload {name} ended after {got} of {size} bytes")]
    ShortImage {
        /// The payload file name.
        name: String,
        /// The announced size.
        size: u64,
        /// Bytes received.
        got: u64,
    },
    /// The payload carries more than its announced size.
    #[error("payload {name} is longer than its announced {size} bytes")]
    LongImage {
        /// The payload file name.
        name: String,
        /// The announced size.
        size: u64,
    },
    /// What was read back from the partition differs from what was received.
    #[error("partition {} does not read back what was written (sha256 {found}, expected {expected})", path.display())]
    VerifyFailed {
        /// The partition.
        path: PathBuf,
        /// SHA-256 of the bytes received.
        expected: String,
        /// SHA-256 of the bytes read back.
        found: String,
    },
    /// Applying a delta patch failed: wrong source, corrupt or truncated patch, or a result
    /// other than the one promised.
    #[error("delta payload {name}: {source}")]
    Delta {
        /// The payload file name.
        name: String,
        /// What the applier found.
        source: crate::delta::DeltaError,
    },
    /// The delta's header says it builds another image than the artifact provides.
    #[error("delta payload {name} builds an image with sha256 {found}, but the artifact provides rootfs-image.checksum {expected}")]
    DeltaPromise {
        /// The payload file name.
        name: String,
        /// `rootfs-image.checksum` from the artifact's provides.
        expected: String,
        /// The target SHA-256 in the patch header.
        found: String,
    },
    /// Install without a successful download in this update.
    #[error("no verified rootfs download in this update ({} missing)", marker.display())]
    NotDownloaded {
        /// The marker file download leaves.
        marker: PathBuf,
    },
    /// The download went to a partition that is no longer the passive one.
    #[error(
        "downloaded image is on partition {downloaded} but the passive partition is now {passive}"
    )]
    StaleDownload {
        /// The partition written.
        downloaded: u32,
        /// The passive partition now.
        passive: u32,
    },
    /// Reading or writing the handler's state files failed.
    #[error("rootfs state file {}: {source}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// The error from the operating system.
        source: io::Error,
    },
    /// A state file exists but cannot be understood.
    #[error("rootfs state file {}: {reason}", path.display())]
    BadState {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// One rootfs-image payload's handler for one update: borrows the boot environment, knows the
/// running root, and keeps its state in the payload's work directory.
pub struct RootfsHandler<'a> {
    config: RootfsConfig,
    env: &'a dyn BootEnv,
    root: RootInfo,
    work_dir: PathBuf,
    /// Test-only fault injection run after the image is synced and before it is read back.
    post_write: Option<Box<write::PostWrite<'a>>>,
}

impl<'a> RootfsHandler<'a> {
    /// A handler; `work_dir` is per update (upstream: `<tree>/tmp`) and is created on demand.
    pub fn new(
        config: RootfsConfig,
        env: &'a dyn BootEnv,
        root: RootInfo,
        work_dir: impl Into<PathBuf>,
    ) -> Self {
        RootfsHandler {
            config,
            env,
            root,
            work_dir: work_dir.into(),
            post_write: None,
        }
    }

    /// Injects a fault between writing and verifying, to prove the read-back catches it.
    #[cfg(test)]
    pub(crate) fn with_post_write(mut self, hook: impl Fn(&Path) -> io::Result<()> + 'a) -> Self {
        self.post_write = Some(Box::new(hook));
        self
    }

    fn part_str(path: &Path) -> Result<&str, RootfsError> {
        path.to_str()
            .ok_or_else(|| RootfsError::BadPath(path.to_owned()))
    }

    fn vars(&self) -> Result<Vars, RootfsError> {
        Ok(self.env.get(&VARIABLES)?)
    }

    /// Active and passive partition per the boot environment, confirmed against the running root.
    fn active_slots(&self, vars: &Vars) -> Result<Slots, RootfsError> {
        Ok(rules::active_partition(
            vars,
            Self::part_str(&self.config.part_a)?,
            Self::part_str(&self.config.part_b)?,
            self.root.mounted_root,
            root::device_number,
            self.root.cmdline.as_deref(),
        )?)
    }

    /// Which partition is active and which is the install target. Refuses while an update is
    /// pending (`upgrade_available=1`): writing then could overwrite the only way back.
    pub fn slots(&self) -> Result<Slots, RootfsError> {
        let vars = self.vars()?;
        if !matches!(
            vars.get(rules::UPGRADE_AVAILABLE)
                .and_then(|v| v.as_deref()),
            None | Some("") | Some("0")
        ) {
            return Err(BootEnvError::UpdatePending.into());
        }
        self.active_slots(&vars)
    }

    /// DownloadWithFileSizes: streams exactly `size` bytes of image `name` from `data` (which
    /// verifies the artifact checksum and fails at its end on mismatch) onto the passive
    /// partition, then verifies it by reading back. The boot environment is not touched; only a
    /// fully verified download leaves the marker install requires.
    pub fn download(
        &self,
        name: &str,
        size: u64,
        expected: Option<&[u8; 32]>,
        data: &mut dyn Read,
    ) -> Result<DownloadStats, RootfsError> {
        state::remove(&self.work_dir, state::DOWNLOAD_MARKER)?;
        let slots = self.slots()?;
        let target = write::open_target(
            Path::new(&slots.passive.device),
            self.config.fixed_size_files,
        )?;
        let (stats, sha) = write::write_image(
            &target,
            name,
            size,
            expected,
            data,
            self.config.read_compare_write,
            self.post_write.as_deref(),
        )?;
        let record = DownloadRecord {
            partition: slots.passive.number,
            size,
            sha256: hex::encode(sha),
        };
        state::save_download(&self.work_dir, &record)?;
        Ok(stats)
    }

    /// DownloadWithFileSizes for a delta payload: rebuilds the new image on the passive
    /// partition from the active one (read-only, every copied range checked against the
    /// patch) and the patch streamed from `data`, in bounded memory and without a temporary
    /// copy. The result must have the SHA-256 `expected` (the artifact's
    /// `rootfs-image.checksum` provide) and must read back the same from the partition before
    /// the download counts; the boot environment is not touched.
    pub fn download_delta(
        &self,
        name: &str,
        expected: &str,
        data: &mut dyn Read,
    ) -> Result<DownloadStats, RootfsError> {
        use crate::delta::{apply_after_header, PatchHeader};
        state::remove(&self.work_dir, state::DOWNLOAD_MARKER)?;
        let slots = self.slots()?;
        let delta_err = |source| RootfsError::Delta {
            name: name.to_owned(),
            source,
        };
        let header = PatchHeader::read_from(&mut &mut *data).map_err(delta_err)?;
        // A patch that builds some other image is refused before the passive partition is
        // touched (the result is checked again once written).
        let promised = hex::encode(header.target_sha256);
        if !promised.eq_ignore_ascii_case(expected) {
            return Err(RootfsError::DeltaPromise {
                name: name.to_owned(),
                expected: expected.to_owned(),
                found: promised,
            });
        }
        // The running partition as the medium holds it, not as the mounted filesystem may
        // have changed the kernel's cached view of it (see `direct`).
        let active = Path::new(&slots.active.device);
        let source = direct::DirectReader::open(active).map_err(|e| RootfsError::Partition {
            path: active.to_owned(),
            source: e,
        })?;
        let target = write::open_target(
            Path::new(&slots.passive.device),
            self.config.fixed_size_files,
        )?;
        write::check_capacity(&target.path, target.capacity, header.target_size)?;
        // The applier checks the SHA-256 of what it builds against the patch header (equal
        // to `expected`, checked above), and `seal` checks the partition against it again.
        let mut writer = write::PartitionWriter::unhashed(&target, self.config.read_compare_write);
        // The source through a 1 MiB window: the applier seeks for every copy, mostly
        // forward and within a few KiB.
        apply_after_header(&header, source, &mut *data, &mut writer).map_err(delta_err)?;
        // Reading to the end lets the artifact reader check the payload's checksum.
        let mut rest = [0u8; 1];
        loop {
            match data.read(&mut rest) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(delta_err(crate::delta::DeltaError::CorruptPatch(
                        "data after the end of the patch".into(),
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(RootfsError::Stream {
                        name: name.to_owned(),
                        source: e,
                    })
                }
            }
        }
        let (stats, size, _) = writer.finish()?;
        let sha = header.target_sha256;
        write::seal(
            &target,
            size,
            &sha,
            &mut Vec::new(),
            self.post_write.as_deref(),
        )?;
        state::save_download(
            &self.work_dir,
            &DownloadRecord {
                partition: slots.passive.number,
                size,
                sha256: promised,
            },
        )?;
        Ok(stats)
    }

    /// ArtifactInstall: after this update's verified download, saves the running partition for
    /// rollback (durably, before anything changes) and points the boot loader at the new one
    /// with `upgrade_available=1`, `bootcount=0`; the backend reads the variables back.
    pub fn install(&self) -> Result<(), RootfsError> {
        let record = state::load_download(&self.work_dir)?;
        let slots = self.slots()?;
        if record.partition != slots.passive.number {
            return Err(RootfsError::StaleDownload {
                downloaded: record.partition,
                passive: slots.passive.number,
            });
        }
        let vars = self.vars()?;
        let changes = rules::install(&vars, slots.active.number, slots.passive.number)?;
        state::save_original(&self.work_dir, slots.active.number)?;
        bootenv::apply(self.env, &changes)?;
        Ok(())
    }

    /// The new root only runs after a reboot, which the client may do itself.
    pub fn needs_reboot(&self) -> RebootAnswer {
        RebootAnswer::Automatic
    }

    /// The previous root stays on its partition, so every update can be rolled back.
    pub fn supports_rollback(&self) -> bool {
        true
    }

    /// ArtifactCommit after the reboot: makes the update permanent when it is running. When the
    /// boot loader already fell back, fails with upstream's "Upgrade failed and was reverted:
    /// refusing to commit!", checked first so a root mismatch cannot hide it.
    pub fn commit(&self) -> Result<(), RootfsError> {
        let (vars, slots) = self.pending_and_running()?;
        bootenv::apply(self.env, &rules::commit(&vars, slots.active.number)?)?;
        Ok(())
    }

    /// The variables and slots when an update is pending (`upgrade_available=1`) and the
    /// partition it selected is the one running; upstream's refusal when the boot loader
    /// already fell back, checked first so a root mismatch cannot hide it.
    fn pending_and_running(&self) -> Result<(Vars, Slots), RootfsError> {
        let vars = self.vars()?;
        if vars
            .get(rules::UPGRADE_AVAILABLE)
            .and_then(|v| v.as_deref())
            != Some("1")
        {
            return Err(BootEnvError::UpgradeReverted.into());
        }
        let slots = self.active_slots(&vars)?;
        Ok((vars, slots))
    }

    /// ArtifactVerifyReboot (daemon mode): the update is pending and the partition the boot
    /// loader was told to boot is the one running.
    pub fn verify_reboot(&self) -> Result<(), RootfsError> {
        self.pending_and_running().map(|_| ())
    }

    /// ArtifactVerifyRollbackReboot (daemon mode): nothing is pending any more and the
    /// selected partition is the one running.
    pub fn verify_rollback_reboot(&self) -> Result<(), RootfsError> {
        self.slots().map(|_| ())
    }

    /// ArtifactRollback: boots the saved original partition again. Without a saved partition
    /// but with an update pending, the original is the partition not selected now (upstream's
    /// rule); with neither there is nothing to undo.
    pub fn rollback(&self) -> Result<(), RootfsError> {
        let vars = self.vars()?;
        let original = match state::load_original(&self.work_dir)? {
            Some(n) => n,
            None => {
                let pending = vars
                    .get(rules::UPGRADE_AVAILABLE)
                    .and_then(|v| v.as_deref());
                if pending != Some("1") {
                    return Ok(());
                }
                let a = rules::partition_number(Self::part_str(&self.config.part_a)?)?;
                let b = rules::partition_number(Self::part_str(&self.config.part_b)?)?;
                let selected = vars.get(rules::BOOT_PART).and_then(|v| v.as_deref());
                if selected == Some(a.to_string().as_str()) {
                    b
                } else {
                    a
                }
            }
        };
        bootenv::apply(self.env, &rules::rollback(&vars, original)?)?;
        Ok(())
    }
}
