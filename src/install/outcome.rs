//! The result of an installer command: the lines upstream's `mender-update` prints on stdout
//! and its exit code (0 ok, 1 failed, 2 nothing in progress, 4 reboot needed with
//! `--reboot-exit-code`).

use super::module::RebootAnswer;

/// How a command ended, from which the output lines and exit code follow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `Update Module doesn't support rollback. Committing immediately.`
    pub auto_commit: bool,
    /// The operation line (`Committed.`, `Installation failed.`, ...).
    pub operation: Option<&'static str>,
    /// Further sentences, joined on one line.
    pub additional: Vec<&'static str>,
    /// A payload asked for a reboot.
    pub reboot: bool,
    /// The command failed.
    pub failed: bool,
    /// There was nothing to do (exit 2).
    pub nothing_in_progress: bool,
}

impl Outcome {
    /// The stdout lines.
    pub fn lines(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.auto_commit {
            v.push("Update Module doesn't support rollback. Committing immediately.".to_string());
        }
        if let Some(op) = self.operation {
            v.push(op.to_string());
        }
        let mut extra: Vec<&str> = self.additional.clone();
        if self.reboot {
            extra.push("At least one payload requested a reboot of the device it updated.");
        }
        if !extra.is_empty() {
            v.push(extra.join(" "));
        }
        v
    }

    /// The exit code.
    pub fn code(&self, reboot_exit_code: bool) -> i32 {
        if self.nothing_in_progress {
            2
        } else if self.failed {
            1
        } else if self.reboot && reboot_exit_code {
            4
        } else {
            0
        }
    }

    /// Records a module's reboot answer.
    pub fn note_reboot(&mut self, a: RebootAnswer) {
        if a != RebootAnswer::No {
            self.reboot = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_codes() {
        let o = Outcome {
            operation: Some("Installed, but not committed.\nUse 'commit' to update, or 'rollback' to roll back the update."),
            reboot: true,
            ..Default::default()
        };
        assert_eq!(o.lines().len(), 2);
        assert_eq!(o.code(false), 0);
        assert_eq!(o.code(true), 4);
        let f = Outcome {
            operation: Some("Streaming failed."),
            additional: vec!["System not modified."],
            failed: true,
            ..Default::default()
        };
        assert_eq!(f.lines(), vec!["Streaming failed.", "System not modified."]);
        assert_eq!(f.code(true), 1);
        let n = Outcome {
            nothing_in_progress: true,
            operation: Some("No update in progress."),
            ..Default::default()
        };
        assert_eq!(n.code(false), 2);
    }
}
