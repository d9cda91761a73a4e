//! The installer's commands: `install` streams an artifact from any source through the
//! checks (signature, device type, depends) into the update module, then hands over to the
//! state machine; `commit`, `rollback` and `resume` continue from the journal.

use std::io::Read;
use std::path::PathBuf;

use super::bootenv::system;
use super::config::{read_device_type, Config, Dirs};
use super::machine::{committed, modules_work_dir, tree_context, Machine, StopPoint};
use super::module::{Download, ModuleRunner, State};
use super::outcome::Outcome;
use super::payload::{
    HandlerFactory, NativeRootfs, PayloadHandler, RootfsPayload, ROOTFS_CHECKSUM, ROOTFS_IMAGE,
};
use super::provides::{check_artifact, Installed};
use super::rootfs::RootInfo;
use super::scripts::{Action, Policy, ScriptRunner};
use super::store::{Journal, Step, Store};
use crate::artifact::{
    read_artifact, ArtifactError, ArtifactInfo, ManifestVerifier, PayloadFile, ReadOptions,
    VerifyMode, Visitor,
};
use crate::crypto::VerifyingKey;

/// Accepts a signature that any of the configured keys verifies.
pub struct AnyKey(pub Vec<VerifyingKey>);

impl ManifestVerifier for AnyKey {
    fn verify_manifest(&self, manifest: &[u8], signature: &[u8]) -> Result<(), String> {
        let mut last = String::from("no verification key");
        for k in &self.0 {
            match k.verify(manifest, signature) {
                Ok(()) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("wrong manifest signature or wrong key: {last}"))
    }
}

/// The installer on one device.
pub struct Installer {
    /// Directories.
    pub dirs: Dirs,
    /// `mender.conf`.
    pub config: Config,
    /// Persistent state.
    pub store: Store,
    /// State scripts.
    pub scripts: ScriptRunner,
    /// Update modules.
    pub modules_dir: PathBuf,
    /// Keys an artifact must verify with (from `ArtifactVerifyKey(s)`).
    pub keys: Vec<VerifyingKey>,
    /// `--stop-before` points.
    pub stop_before: Vec<StopPoint>,
    /// Log sink (stderr or the log file).
    pub log: Box<dyn Fn(&str)>,
    /// Called with the first stdout line once the artifact header is accepted.
    pub announce: Box<dyn Fn(&str)>,
}

/// Where the payload's files go during the download.
enum Sink {
    /// An update module, through its FIFOs or files tree.
    Module(ModuleRunner, Option<Box<Download>>),
    /// The native rootfs-image handler, straight onto the passive partition.
    Rootfs(NativeRootfs),
}

impl Sink {
    fn cleanup(&self) -> Result<(), String> {
        match self {
            Sink::Module(r, _) => PayloadHandler::call(r, State::Cleanup),
            Sink::Rootfs(n) => n.call(State::Cleanup),
        }
    }
}

struct InstallVisitor<'a> {
    inst: &'a Installer,
    device_type: String,
    sink: Option<Sink>,
    files: usize,
    empty: bool,
    depends_failed: bool,
}

fn abort(msg: impl Into<String>) -> ArtifactError {
    ArtifactError::Aborted(msg.into())
}

impl Visitor for InstallVisitor<'_> {
    fn header(&mut self, info: &ArtifactInfo) -> crate::artifact::Result<()> {
        if info.payloads.len() != 1 {
            return Err(abort(
                "multiple payloads are not supported in standalone mode",
            ));
        }
        if info.augment.is_some() {
            return Err(abort(
                "augmented artifacts are not supported by the installer",
            ));
        }
        let scripts: Vec<(String, Vec<u8>)> = info
            .scripts
            .iter()
            .map(|s| (s.name.clone(), s.data.clone()))
            .collect();
        self.inst
            .scripts
            .store_artifact_scripts(&scripts)
            .map_err(|e| abort(e.to_string()))?;
        let installed = self.inst.store.installed().map_err(|e| abort(e.0))?;
        (self.inst.announce)("Installing artifact...");
        if let Err(e) = check_artifact(
            &self.device_type,
            &installed,
            &info.header_info,
            &info.payloads[0].type_info,
        ) {
            self.depends_failed = true;
            return Err(abort(e.to_string()));
        }
        let Some(kind) = info.payload_type(0) else {
            (self.inst.announce)("Artifact with empty payload. Committing immediately.");
            self.empty = true;
            return Ok(());
        };
        let provides = &info.payloads[0].type_info.provides;
        if let Some(native) = self
            .inst
            .native_rootfs(kind, Some(provides))
            .map_err(abort)?
        {
            native.prepare().map_err(abort)?;
            self.sink = Some(Sink::Rootfs(native));
            return self
                .inst
                .scripts
                .run("Download", Action::Enter, Policy::StopOnFirstError)
                .map(|_| ())
                .map_err(|e| abort(e.to_string()));
        }
        let runner = self.inst.runner_for(kind).map_err(abort)?;
        runner
            .prepare_tree(&tree_context(info, &installed, &self.device_type))
            .map_err(|e| abort(e.to_string()))?;
        self.sink = Some(Sink::Module(runner, None));
        self.inst
            .scripts
            .run("Download", Action::Enter, Policy::StopOnFirstError)
            .map_err(|e| abort(e.to_string()))?;
        let Some(Sink::Module(runner, download)) = &mut self.sink else {
            unreachable!("set above");
        };
        let sizes = runner
            .provide_payload_file_sizes()
            .map_err(|e| abort(e.to_string()))?;
        *download = Some(Box::new(
            runner
                .start_download(sizes)
                .map_err(|e| abort(e.to_string()))?,
        ));
        Ok(())
    }

    fn file(
        &mut self,
        _info: &ArtifactInfo,
        _payload: usize,
        file: &PayloadFile,
        data: &mut dyn Read,
    ) -> crate::artifact::Result<()> {
        let index = self.files;
        self.files += 1;
        match &mut self.sink {
            Some(Sink::Module(_, Some(d))) => d
                .file(&file.name, file.size, data)
                .map_err(|e| abort(e.to_string())),
            Some(Sink::Rootfs(n)) => {
                let stats = n
                    .download(index, &file.name, file.size, &file.checksum, data)
                    .map_err(abort)?;
                (self.inst.log)(&format!(
                    "rootfs-image {}: {} bytes written, {} bytes already in place, read back and verified",
                    file.name, stats.bytes_written, stats.bytes_skipped
                ));
                Ok(())
            }
            _ => Err(abort(format!(
                "{}: payload data in an artifact with an empty payload",
                file.name
            ))),
        }
    }
}

impl Installer {
    fn machine<'a>(&'a self, modules: &'a HandlerFactory<'a>) -> Machine<'a> {
        Machine {
            store: &self.store,
            scripts: &self.scripts,
            modules,
            stop_before: &self.stop_before,
            log: &*self.log,
        }
    }

    fn runner_for(&self, kind: &str) -> Result<ModuleRunner, String> {
        ModuleRunner::new(
            &self.modules_dir,
            modules_work_dir(&self.dirs.datastore),
            kind,
            self.config.module_timeout,
        )
        .map_err(|e| e.to_string())
    }

    /// The native rootfs-image handler for payload type `kind`: `Some` for `rootfs-image` when
    /// `mender.conf` names both partitions; an error when it names neither and no update
    /// module stands in.
    fn native_rootfs(
        &self,
        kind: &str,
        provides: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Result<Option<NativeRootfs>, String> {
        let payload = if kind == ROOTFS_IMAGE {
            RootfsPayload::Image
        } else if kind == crate::delta::PAYLOAD_TYPE {
            // Later states (commit, rollback) need no checksum; the download is checked
            // against the one the artifact provides.
            let expected = provides
                .map(|p| {
                    p.get(ROOTFS_CHECKSUM).cloned().ok_or_else(|| {
                        format!("{kind} payload without a {ROOTFS_CHECKSUM} provide to check the result against")
                    })
                })
                .transpose()?
                .unwrap_or_default();
            RootfsPayload::Delta(expected)
        } else {
            return Ok(None);
        };
        let env = system::detect(
            std::path::Path::new("/"),
            std::env::var_os("PATH").as_deref(),
        );
        let native = NativeRootfs::from_config(
            payload,
            &self.config,
            env,
            RootInfo::detect(),
            &modules_work_dir(&self.dirs.datastore),
        );
        if native.is_none() && !self.modules_dir.join(kind).is_file() {
            return Err(format!(
                "{kind} payload, but RootfsPartA and RootfsPartB are not both set in mender.conf"
            ));
        }
        Ok(native)
    }

    /// The handler that runs the states of payload type `kind`.
    fn handler_for(&self, kind: &str) -> Result<Box<dyn PayloadHandler + '_>, String> {
        match self.native_rootfs(kind, None)? {
            Some(native) => Ok(Box::new(native)),
            None => Ok(Box::new(self.runner_for(kind)?)),
        }
    }

    fn device_type(&self) -> Result<String, String> {
        let path = self
            .config
            .device_type_file
            .clone()
            .unwrap_or_else(|| self.dirs.datastore.join("device_type"));
        read_device_type(&path).map_err(|e| e.0)
    }

    /// Installs the artifact read from `source`.
    pub fn install(&self, source: &mut dyn Read) -> Result<Outcome, String> {
        let not_modified = |msg: String| {
            (self.log)(&msg);
            Ok(Outcome {
                operation: Some("Streaming failed."),
                additional: vec!["System not modified."],
                failed: true,
                ..Default::default()
            })
        };
        if self.store.journal().map_err(|e| e.0)?.is_some() {
            (self.log)("update already in progress; commit or roll back first");
            return Ok(Outcome {
                additional: vec!["System not modified."],
                failed: true,
                ..Default::default()
            });
        }
        let device_type = match self.device_type() {
            Ok(d) => d,
            Err(e) => return not_modified(e),
        };
        let any = AnyKey(self.keys.clone());
        let opts = ReadOptions {
            verify: if self.keys.is_empty() {
                VerifyMode::None
            } else {
                VerifyMode::Require(&any)
            },
            progress: None,
        };
        let mut v = InstallVisitor {
            inst: self,
            device_type,
            sink: None,
            files: 0,
            empty: false,
            depends_failed: false,
        };
        let read = read_artifact(&mut *source, &opts, &mut v);
        let download = match &mut v.sink {
            Some(Sink::Module(_, d)) => d.take(),
            _ => None,
        };
        let finished = match (read, download) {
            (Ok(info), Some(d)) => d.finish().map(|_| info).map_err(|e| e.to_string()),
            (Ok(info), None) => match &v.sink {
                Some(Sink::Rootfs(_)) if v.files == 0 => {
                    Err("rootfs-image payload without an image file".to_string())
                }
                _ => Ok(info),
            },
            (Err(e), download) => {
                drop(download);
                Err(e.to_string())
            }
        };
        let finished = finished.and_then(|info| {
            if v.sink.is_some() {
                self.scripts
                    .run("Download", Action::Leave, Policy::StopOnFirstError)
                    .map_err(|e| e.to_string())?;
            }
            Ok(info)
        });
        let info = match finished {
            Ok(info) => info,
            Err(e) => {
                let mut out = not_modified(e)?;
                if let Some(sink) = &v.sink {
                    let _ =
                        self.scripts
                            .run("Download", Action::Error, Policy::RunAllCollectErrors);
                    if sink.cleanup().is_err() {
                        out.additional.push("Cleanup failed.");
                    }
                }
                return Ok(out);
            }
        };
        let ti = &info.payloads[0].type_info;
        let mut journal = Journal {
            version: 2,
            artifact_name: info.header_info.artifact_name.clone(),
            artifact_group: info.header_info.artifact_group.clone().unwrap_or_default(),
            payload_types: vec![info.payload_type(0).unwrap_or_default().to_string()],
            artifact_type_info_provides: (!ti.provides.is_empty()).then(|| ti.provides.clone()),
            artifact_clears_provides: ti.clears_provides.clone(),
            in_state: Step::BeforeInstall,
            failed: false,
            rolled_back: false,
        };
        if v.empty {
            let old = self.store.installed().map_err(|e| e.0)?;
            self.store
                .finish(Some(&committed(&old, &journal)))
                .map_err(|e| e.0)?;
            return Ok(Outcome {
                operation: Some("Installed and committed."),
                ..Default::default()
            });
        }
        self.store.save_journal(&journal).map_err(|e| e.0)?;
        let modules = |k: &str| self.handler_for(k);
        let out = self
            .machine(&modules)
            .run(&mut journal, Outcome::default())?;
        Ok(out)
    }

    /// When a run ends with the update still pending, the failure flag is cleared so that the
    /// next command reports on its own run (upstream's rule); after a crash it stays set.
    fn settle(&self) -> Result<(), String> {
        if let Some(mut j) = self.store.journal().map_err(|e| e.0)? {
            if j.failed {
                j.failed = false;
                self.store.save_journal(&j).map_err(|e| e.0)?;
            }
        }
        Ok(())
    }

    fn nothing() -> Outcome {
        Outcome {
            operation: Some("No update in progress."),
            nothing_in_progress: true,
            ..Default::default()
        }
    }

    /// Installs `<datastore>/bootstrap.mender` when nothing is installed yet (as upstream does
    /// before `install` and `show-*`): an empty-payload artifact whose provides become the
    /// device's, without a signature check. The file is removed afterwards in every case.
    pub fn bootstrap(&self) -> Result<(), String> {
        let path = self.dirs.datastore.join("bootstrap.mender");
        let installed = self.store.installed().map_err(|e| e.0)?;
        if installed.artifact_name.is_some() {
            return Ok(());
        }
        if !path.exists() {
            // As upstream: a device that never installed anything is `unknown`, which
            // artifacts can depend on.
            let unknown = Installed {
                artifact_name: Some("unknown".into()),
                ..installed
            };
            return self.store.set_installed(&unknown).map_err(|e| e.0);
        }
        let result = (|| -> Result<(), String> {
            let f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let info = read_artifact(
                std::io::BufReader::new(f),
                &ReadOptions::default(),
                &mut crate::artifact::Validate,
            )
            .map_err(|e| format!("{}: {e}", path.display()))?;
            if info.payloads.len() != 1 || info.payload_type(0).is_some() {
                return Err(format!(
                    "{}: not a bootstrap (empty payload) artifact",
                    path.display()
                ));
            }
            let ti = &info.payloads[0].type_info;
            let j = Journal {
                version: 2,
                artifact_name: info.header_info.artifact_name.clone(),
                artifact_group: info.header_info.artifact_group.clone().unwrap_or_default(),
                payload_types: vec![String::new()],
                artifact_type_info_provides: (!ti.provides.is_empty()).then(|| ti.provides.clone()),
                artifact_clears_provides: ti.clears_provides.clone(),
                in_state: Step::Cleanup,
                failed: false,
                rolled_back: false,
            };
            let old = self.store.installed().map_err(|e| e.0)?;
            self.store
                .set_installed(&committed(&old, &j))
                .map_err(|e| e.0)
        })();
        let _ = std::fs::remove_file(&path);
        if let Err(e) = &result {
            (self.log)(&format!("bootstrap artifact ignored: {e}"));
        }
        Ok(())
    }

    /// Commits the installed update.
    pub fn commit(&self) -> Result<Outcome, String> {
        let Some(mut j) = self.store.journal().map_err(|e| e.0)? else {
            return Ok(Self::nothing());
        };
        if !matches!(j.in_state, Step::BeforeCommit | Step::Committing) {
            return Err("cannot commit from this state; use `resume` or `rollback`".into());
        }
        let modules = |k: &str| self.handler_for(k);
        let out = self.machine(&modules).run(&mut j, Outcome::default());
        self.settle()?;
        out
    }

    /// Rolls the update back.
    pub fn rollback(&self) -> Result<Outcome, String> {
        let Some(mut j) = self.store.journal().map_err(|e| e.0)? else {
            return Ok(Self::nothing());
        };
        match j.in_state {
            Step::BeforeInstall | Step::BeforeCommit => {
                let m = self.handler_for(&j.payload_types[0])?;
                if !m.supports_rollback()? {
                    return Err("the update module does not support rollback".into());
                }
                j.in_state = Step::RollingBack;
            }
            Step::Installing | Step::Committing | Step::BeforeCommitLeave | Step::RollingBack => {
                j.in_state = Step::RollingBack;
            }
            Step::CommitLeave | Step::Failing | Step::Cleanup => {
                return Err("cannot roll back from this state; use `resume`".into());
            }
        }
        self.store.save_journal(&j).map_err(|e| e.0)?;
        let modules = |k: &str| self.handler_for(k);
        let out = self.machine(&modules).run(&mut j, Outcome::default());
        self.settle()?;
        out
    }

    /// Continues from where the last run stopped (power cut or `--stop-before`).
    pub fn resume(&self) -> Result<Outcome, String> {
        let Some(mut j) = self.store.journal().map_err(|e| e.0)? else {
            return Ok(Self::nothing());
        };
        let modules = |k: &str| self.handler_for(k);
        let out = self.machine(&modules).run(&mut j, Outcome::default());
        self.settle()?;
        out
    }
}
