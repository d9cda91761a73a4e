//! The standalone install state machine, as upstream's `mender-update` 5 runs it: download
//! into the update module, install, then stop for `commit` or `rollback` (or commit at once
//! when the module cannot roll back). The journal is saved before every step that changes
//! the device, so `resume` after a power cut repeats the interrupted step or rolls back.

use std::path::PathBuf;

use super::module::{State, TreeContext};
use super::outcome::Outcome;
use super::payload::{HandlerFactory, PayloadHandler};
use super::provides::{after_commit, Installed};
use super::scripts::{Action, Policy, ScriptRunner};
use super::store::{Journal, Step, Store};

/// Points where `--stop-before` ends a run, as upstream names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopPoint {
    /// Before ArtifactInstall.
    ArtifactInstallEnter,
    /// Before ArtifactCommit.
    ArtifactCommitEnter,
    /// Before the ArtifactCommit_Leave scripts.
    ArtifactCommitLeave,
    /// Before ArtifactRollback.
    ArtifactRollbackEnter,
    /// Before ArtifactFailure.
    ArtifactFailureEnter,
    /// Before Cleanup.
    Cleanup,
}

impl std::str::FromStr for StopPoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "ArtifactInstall_Enter" => StopPoint::ArtifactInstallEnter,
            "ArtifactCommit_Enter" => StopPoint::ArtifactCommitEnter,
            "ArtifactCommit_Leave" => StopPoint::ArtifactCommitLeave,
            "ArtifactRollback_Enter" => StopPoint::ArtifactRollbackEnter,
            "ArtifactFailure_Enter" => StopPoint::ArtifactFailureEnter,
            "Cleanup" => StopPoint::Cleanup,
            other => return Err(format!("cannot stop before unsupported state {other}")),
        })
    }
}

/// Everything a run needs.
pub struct Machine<'a> {
    /// The state files.
    pub store: &'a Store,
    /// State scripts.
    pub scripts: &'a ScriptRunner,
    /// Makes the handler for a payload type: an update module or a native handler.
    pub modules: &'a HandlerFactory<'a>,
    /// Where to stop.
    pub stop_before: &'a [StopPoint],
    /// Where log lines go.
    pub log: &'a dyn Fn(&str),
}

impl<'a> Machine<'a> {
    fn save(&self, j: &mut Journal, step: Step) -> Result<(), String> {
        j.in_state = step;
        self.store.save_journal(j).map_err(|e| e.0)
    }

    fn stops(&self, p: StopPoint) -> bool {
        self.stop_before.contains(&p)
    }

    fn scripts(&self, state: &str, action: Action, policy: Policy) -> Result<(), String> {
        self.scripts
            .run(state, action, policy)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn module(&self, j: &Journal) -> Result<Box<dyn PayloadHandler + 'a>, String> {
        (self.modules)(&j.payload_types[0])
    }

    fn call(&self, j: &Journal, state: State) -> Result<(), String> {
        self.module(j)?.call(state)
    }

    /// Continues from the journal's step until the run ends or stops at a `--stop-before`
    /// point.
    pub fn run(&self, j: &mut Journal, mut out: Outcome) -> Result<Outcome, String> {
        loop {
            match j.in_state {
                Step::BeforeInstall => {
                    if self.stops(StopPoint::ArtifactInstallEnter) {
                        out.operation = Some("Streamed to storage, but not installed/enabled.");
                        return Ok(out);
                    }
                    self.save(j, Step::Installing)?;
                    let r = self
                        .scripts("ArtifactInstall", Action::Enter, Policy::StopOnFirstError)
                        .and_then(|_| self.call(j, State::ArtifactInstall))
                        .and_then(|_| {
                            self.scripts("ArtifactInstall", Action::Leave, Policy::StopOnFirstError)
                        });
                    if let Err(e) = r {
                        (self.log)(&format!("ArtifactInstall failed: {e}"));
                        let _ = self.scripts(
                            "ArtifactInstall",
                            Action::Error,
                            Policy::RunAllCollectErrors,
                        );
                        out.operation = Some("Installation failed.");
                        j.failed = true;
                        self.rollback_query(j, &mut out, true)?;
                        continue;
                    }
                    self.save(j, Step::BeforeCommit)?;
                    let m = self.module(j)?;
                    out.note_reboot(m.needs_reboot()?);
                    if m.supports_rollback()? {
                        out.operation = Some(
                            "Installed, but not committed.\nUse 'commit' to update, or 'rollback' to roll back the update.",
                        );
                        return Ok(out);
                    }
                    out.auto_commit = true;
                }
                Step::BeforeCommit => {
                    if self.stops(StopPoint::ArtifactCommitEnter) {
                        return Ok(out);
                    }
                    self.save(j, Step::Committing)?;
                    let r = self
                        .scripts("ArtifactCommit", Action::Enter, Policy::StopOnFirstError)
                        .and_then(|_| self.call(j, State::ArtifactCommit));
                    if let Err(e) = r {
                        (self.log)(&format!("ArtifactCommit failed: {e}"));
                        let _ = self.scripts(
                            "ArtifactCommit",
                            Action::Error,
                            Policy::RunAllCollectErrors,
                        );
                        out.operation = Some("Committing failed.");
                        j.failed = true;
                        self.rollback_query(j, &mut out, true)?;
                        continue;
                    }
                    out.operation = Some("Committed.");
                    self.save(j, Step::BeforeCommitLeave)?;
                }
                Step::Committing => {
                    // Power was lost during ArtifactCommit: its outcome is unknown, so the
                    // update is rolled back, as upstream does.
                    self.rollback_query(j, &mut out, false)?;
                }
                Step::BeforeCommitLeave => {
                    if self.stops(StopPoint::ArtifactCommitLeave) {
                        return Ok(out);
                    }
                    self.save(j, Step::CommitLeave)?;
                }
                Step::CommitLeave => {
                    out.operation.get_or_insert("Committed.");
                    if let Err(e) =
                        self.scripts("ArtifactCommit", Action::Leave, Policy::RunAllCollectErrors)
                    {
                        (self.log)(&format!("ArtifactCommit_Leave failed: {e}"));
                        out.additional.push("One or more post-commit steps failed.");
                        j.failed = true;
                    }
                    self.save(j, Step::Cleanup)?;
                }
                Step::Installing | Step::RollingBack => {
                    if self.stops(StopPoint::ArtifactRollbackEnter) {
                        return Ok(out);
                    }
                    // From Installing (power lost during ArtifactInstall) straight to
                    // ArtifactRollback, as upstream does.
                    self.rollback(j, &mut out)?;
                }
                Step::Failing => {
                    if self.stops(StopPoint::ArtifactFailureEnter) {
                        return Ok(out);
                    }
                    self.failure(j)?
                }
                Step::Cleanup => {
                    if self.stops(StopPoint::Cleanup) {
                        return Ok(out);
                    }
                    return self.cleanup(j, out);
                }
            }
        }
    }

    /// Rolls back if the module can; otherwise the update is inconsistent.
    fn rollback_query(
        &self,
        j: &mut Journal,
        out: &mut Outcome,
        after_failure: bool,
    ) -> Result<(), String> {
        let m = self.module(j)?;
        if m.supports_rollback().unwrap_or(false) {
            self.save(j, Step::RollingBack)?;
        } else {
            if after_failure {
                out.additional
                    .push("Update Module does not support rollback. System may be in an inconsistent state.");
            }
            // Without a rollback the device is in an unknown state.
            j.failed = true;
            self.save(j, Step::Failing)?;
        }
        Ok(())
    }

    fn rollback(&self, j: &mut Journal, out: &mut Outcome) -> Result<(), String> {
        let _ = self.scripts(
            "ArtifactRollback",
            Action::Enter,
            Policy::RunAllCollectErrors,
        );
        let r = self.call(j, State::ArtifactRollback);
        let _ = self.scripts(
            "ArtifactRollback",
            Action::Leave,
            Policy::RunAllCollectErrors,
        );
        match r {
            Ok(()) => {
                j.rolled_back = true;
                out.additional.push("Rolled back.");
            }
            Err(e) => {
                (self.log)(&format!("ArtifactRollback failed: {e}"));
                j.failed = true;
                out.additional
                    .push("Rollback failed. System may be in an inconsistent state.");
            }
        }
        self.save(j, Step::Failing)
    }

    fn failure(&self, j: &mut Journal) -> Result<(), String> {
        let _ = self.scripts(
            "ArtifactFailure",
            Action::Enter,
            Policy::RunAllCollectErrors,
        );
        if let Err(e) = self.call(j, State::ArtifactFailure) {
            (self.log)(&format!("ArtifactFailure failed: {e}"));
        }
        let _ = self.scripts(
            "ArtifactFailure",
            Action::Leave,
            Policy::RunAllCollectErrors,
        );
        self.save(j, Step::Cleanup)
    }

    fn cleanup(&self, j: &mut Journal, mut out: Outcome) -> Result<Outcome, String> {
        if let Err(e) = self.call(j, State::Cleanup) {
            (self.log)(&format!("Cleanup failed: {e}"));
            out.additional.push("Cleanup failed.");
            if !j.rolled_back {
                j.failed = true;
            }
        }
        let old = self.store.installed().map_err(|e| e.0)?;
        let new = if j.rolled_back {
            None
        } else if j.failed {
            // As upstream: the new artifact's data, under a name that says it is broken.
            let mut broken = committed(&old, j);
            broken.artifact_name = Some(format!("{}_INCONSISTENT", j.artifact_name));
            Some(broken)
        } else {
            Some(committed(&old, j))
        };
        self.store.finish(new.as_ref()).map_err(|e| e.0)?;
        out.failed = j.failed;
        Ok(out)
    }
}

/// What is installed once `j`'s artifact is committed over `old`.
pub fn committed(old: &Installed, j: &Journal) -> Installed {
    Installed {
        artifact_name: Some(j.artifact_name.clone()),
        artifact_group: Some(j.artifact_group.clone()).filter(|g| !g.is_empty()),
        provides: after_commit(
            &old.provides,
            j.artifact_type_info_provides.as_ref(),
            j.artifact_clears_provides.as_deref(),
        ),
    }
}

/// The module tree context of an artifact about to be installed.
pub fn tree_context(
    info: &crate::artifact::ArtifactInfo,
    installed: &Installed,
    device_type: &str,
) -> TreeContext {
    let hi = &info.header_info;
    TreeContext {
        current_artifact_name: installed.artifact_name.clone(),
        current_artifact_group: installed.artifact_group.clone(),
        device_type: device_type.to_string(),
        artifact_name: hi.artifact_name.clone(),
        artifact_group: hi.artifact_group.clone(),
        payload_type: info.payload_type(0).unwrap_or_default().to_string(),
        header_info_json: serde_json::from_str(&hi.to_json_v3()).unwrap_or_default(),
        type_info_json: serde_json::from_str(&info.payloads[0].type_info.to_json())
            .unwrap_or_default(),
        meta_data: info.payloads[0].meta_data.clone(),
    }
}

/// The work dir of update modules in a datastore.
pub fn modules_work_dir(datastore: &std::path::Path) -> PathBuf {
    datastore.join("modules").join("v3")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_points_parse_as_upstream_names() {
        assert_eq!("Cleanup".parse::<StopPoint>().unwrap(), StopPoint::Cleanup);
        assert!("ArtifactReboot_Enter".parse::<StopPoint>().is_err());
    }

    #[test]
    fn commit_applies_clears() {
        let old = Installed {
            artifact_name: Some("a".into()),
            artifact_group: Some("g".into()),
            provides: [
                ("rootfs-image.m.version".to_string(), "1".to_string()),
                ("keep".to_string(), "x".to_string()),
            ]
            .into_iter()
            .collect(),
        };
        let j = Journal {
            version: 2,
            artifact_name: "b".into(),
            artifact_group: String::new(),
            payload_types: vec!["m".into()],
            artifact_type_info_provides: Some(
                [("rootfs-image.m.version".to_string(), "2".to_string())]
                    .into_iter()
                    .collect(),
            ),
            artifact_clears_provides: Some(vec!["rootfs-image.m.*".into()]),
            in_state: Step::Cleanup,
            failed: false,
            rolled_back: false,
        };
        let c = committed(&old, &j);
        assert_eq!(c.artifact_name.as_deref(), Some("b"));
        assert_eq!(c.artifact_group, None);
        assert_eq!(
            c.provides.get("rootfs-image.m.version").map(String::as_str),
            Some("2")
        );
        assert_eq!(c.provides.get("keep").map(String::as_str), Some("x"));
    }
}
