//! The seam between the state machine and whatever installs a payload: an update module run
//! through the v3 protocol, or the native rootfs-image handler writing an A/B partition.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::bootenv::BootEnv;
use super::config::Config;
use super::module::{ModuleRunner, RebootAnswer, State};
use super::rootfs::{DownloadStats, RootInfo, RootfsConfig, RootfsHandler};

/// The payload type the native handler serves.
pub const ROOTFS_IMAGE: &str = "rootfs-image";

/// The provide naming the SHA-256 of a root filesystem image.
pub const ROOTFS_CHECKSUM: &str = "rootfs-image.checksum";

/// What the native handler is given: a whole image, or a delta patch against the active
/// partition that must rebuild the image with this SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsPayload {
    /// A `rootfs-image` payload.
    Image,
    /// A `mender-binary-delta` payload and the target's `rootfs-image.checksum`.
    Delta(String),
}

/// Makes the handler for a payload type; what the state machine is given.
pub type HandlerFactory<'a> = dyn Fn(&str) -> Result<Box<dyn PayloadHandler + 'a>, String> + 'a;

/// One payload's handler for the states after the download; every method may run again after
/// a power cut, so each is idempotent.
pub trait PayloadHandler {
    /// Runs `state` (ArtifactInstall, ArtifactCommit, ArtifactRollback, ArtifactFailure,
    /// Cleanup, and the daemon-only reboot states).
    fn call(&self, state: State) -> Result<(), String>;
    /// Whether the device must reboot between install and commit.
    fn needs_reboot(&self) -> Result<RebootAnswer, String>;
    /// Whether a failed or unwanted update can be undone.
    fn supports_rollback(&self) -> Result<bool, String>;
}

impl PayloadHandler for ModuleRunner {
    fn call(&self, state: State) -> Result<(), String> {
        ModuleRunner::call(self, state)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn needs_reboot(&self) -> Result<RebootAnswer, String> {
        ModuleRunner::needs_reboot(self).map_err(|e| e.to_string())
    }

    fn supports_rollback(&self) -> Result<bool, String> {
        ModuleRunner::supports_rollback(self).map_err(|e| e.to_string())
    }
}

/// The native rootfs-image handler for one command: the device's partitions, its boot
/// environment and running root, and the per-update work directory upstream's module uses
/// (`<datastore>/modules/v3/payloads/0000/tree/tmp`), so its `orig-part` is found across
/// reboots and power cuts.
pub struct NativeRootfs {
    payload: RootfsPayload,
    config: RootfsConfig,
    env: Box<dyn BootEnv>,
    root: RootInfo,
    tree: PathBuf,
}

impl NativeRootfs {
    /// The handler when `mender.conf` names both partitions; `None` otherwise.
    pub fn from_config(
        payload: RootfsPayload,
        config: &Config,
        env: Box<dyn BootEnv>,
        root: RootInfo,
        modules_work_dir: &Path,
    ) -> Option<Self> {
        let (a, b) = (
            config.rootfs_part_a.as_ref()?,
            config.rootfs_part_b.as_ref()?,
        );
        Some(NativeRootfs {
            payload,
            config: RootfsConfig {
                part_a: PathBuf::from(a),
                part_b: PathBuf::from(b),
                read_compare_write: config.rootfs_read_compare_write,
                fixed_size_files: false,
            },
            env,
            root,
            tree: modules_work_dir.join("payloads").join("0000").join("tree"),
        })
    }

    fn handler(&self) -> RootfsHandler<'_> {
        RootfsHandler::new(
            self.config.clone(),
            &*self.env,
            self.root.clone(),
            self.tree.join("tmp"),
        )
    }

    /// Starts an update: removes what an earlier update left in the work directory.
    pub fn prepare(&self) -> Result<(), String> {
        match fs::remove_dir_all(&self.tree) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", self.tree.display())),
        }
    }

    /// DownloadWithFileSizes for the one image (or patch) file; a second file is refused, as
    /// upstream's module refuses it.
    pub fn download(
        &self,
        index: usize,
        name: &str,
        size: u64,
        checksum: &[u8; 32],
        data: &mut dyn Read,
    ) -> Result<DownloadStats, String> {
        if index > 0 {
            return Err(format!(
                "{name}: rootfs-image payloads carry exactly one image file"
            ));
        }
        let h = self.handler();
        match &self.payload {
            RootfsPayload::Image => h.download(name, size, Some(checksum), data),
            RootfsPayload::Delta(expected) => h.download_delta(name, expected, data),
        }
        .map_err(|e| e.to_string())
    }
}

impl PayloadHandler for NativeRootfs {
    fn call(&self, state: State) -> Result<(), String> {
        let h = self.handler();
        let r = match state {
            State::ArtifactInstall => h.install(),
            State::ArtifactCommit => h.commit(),
            State::ArtifactRollback => h.rollback(),
            State::ArtifactVerifyReboot => h.verify_reboot(),
            State::ArtifactVerifyRollbackReboot => h.verify_rollback_reboot(),
            // The reboots are the client's (NeedsArtifactReboot is Automatic), and a failed
            // update has nothing of its own to tidy: the boot variables were handled by
            // rollback.
            State::ArtifactReboot | State::ArtifactRollbackReboot | State::ArtifactFailure => {
                Ok(())
            }
            State::Cleanup => return self.prepare(),
        };
        r.map_err(|e| e.to_string())
    }

    fn needs_reboot(&self) -> Result<RebootAnswer, String> {
        Ok(self.handler().needs_reboot())
    }

    fn supports_rollback(&self) -> Result<bool, String> {
        Ok(self.handler().supports_rollback())
    }
}
