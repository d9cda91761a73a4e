//! `mender-update`: the standalone installer on the device, with upstream's commands, global
//! options, stdout lines and exit codes (0 ok, 1 failed, 2 nothing in progress, 4 reboot
//! needed with `--reboot-exit-code`).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::install::config::{Config, Dirs};
use crate::install::installer::Installer;
use crate::install::machine::StopPoint;
use crate::install::outcome::Outcome;
use crate::install::scripts::ScriptRunner;
use crate::install::store::Store;

use super::exit::{CliError, CliResult};

/// What `--help` and the man page add after the options: payload handling, the rootfs-image
/// A/B contract and the configuration keys.
const UPDATE_NOTES: &str = "\
Payloads: rootfs-image payloads are installed by the built-in A/B handler when mender.conf sets \
RootfsPartA and RootfsPartB; any other payload type runs the update module of that name in \
$MENDER_DATA_DIR/modules/v3 (protocol v3).

rootfs-image A/B: the image streams onto the inactive partition (block device or file), is \
synced and read back and compared with what was received (SHA-256), and only then is the boot \
loader pointed at it for one trial boot: mender_boot_part, mender_boot_part_hex, \
upgrade_available=1, bootcount=0, as upstream writes them. The boot environment is GRUB's \
(grub-mender-grubenv-print/-set when installed, else the mender_grubenv1/2 files under \
/boot/efi/grub-mender-grubenv, /boot/grub/grub-mender-grubenv or /boot/efi/EFI/BOOT, or \
ENV_DIR from /etc/mender_grubenv.config) or else U-Boot's through fw_printenv/fw_setenv \
(/etc/fw_env.config). The running partition is the one mender_boot_part names, checked against \
the device mounted at / (or root= on the kernel command line); a mismatch is an error. install \
ends with \"At least one payload requested a reboot of the device it updated.\" (exit 4 with \
--reboot-exit-code); after the reboot, commit checks that the new partition runs and \
upgrade_available=1 before clearing it. If the boot loader fell back, commit refuses \
(\"Upgrade failed and was reverted: refusing to commit!\"), rolls back and exits 1. rollback \
before the reboot or the commit points the boot loader back at the old partition; reboot \
afterwards.

Delta artifacts (payload type mender-binary-delta, made by mender-artifact delta) are applied by \
the same handler: the new image is rebuilt from the running partition, read-only and checked \
range by range, straight into the other partition; its SHA-256 must equal the artifact's \
rootfs-image.checksum provide before anything is made bootable. Mount the root read-only: a \
read-write mount changes the source and the delta is refused (\"wrong source\").

mender.conf keys read: ArtifactVerifyKey, ArtifactVerifyKeys, DeviceTypeFile, \
StateScriptTimeoutSeconds, StateScriptRetryIntervalSeconds, StateScriptRetryTimeoutSeconds, \
ModuleTimeoutSeconds, ServerCertificate, SkipVerify, RetryDownloadCount, DaemonLogLevel, \
RootfsPartA, RootfsPartB, and RootfsReadCompareWrite (ours, default false: read each 1 MiB \
chunk of the inactive partition first and write only chunks that differ, for flash that reads \
faster than it writes).";

/// Command-line definition of `mender-update`.
#[derive(Debug, Parser)]
#[command(
    name = "mender-update",
    about = "Installs Mender Artifacts on this device, standalone",
    disable_version_flag = true,
    max_term_width = 100,
    after_long_help = UPDATE_NOTES
)]
pub struct Cli {
    /// Print the version and exit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Configuration file [default: $MENDER_CONF_DIR/mender.conf]
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Option<PathBuf>,
    /// Fallback configuration file [default: DATASTORE/mender.conf]
    #[arg(short = 'b', long = "fallback-config", global = true)]
    pub fallback_config: Option<PathBuf>,
    /// Data store directory [default: $MENDER_DATASTORE_DIR or /var/lib/mender]
    #[arg(short = 'd', long = "datastore", alias = "data", global = true)]
    pub datastore: Option<PathBuf>,
    /// Log to this file instead of standard error
    #[arg(short = 'L', long = "log-file", global = true)]
    pub log_file: Option<PathBuf>,
    /// Log level: trace, debug, info, warning, error, fatal
    #[arg(short = 'l', long = "log-level", global = true)]
    pub log_level: Option<String>,
    /// CA certificates (PEM) trusted for HTTPS sources
    #[arg(short = 'E', long = "trusted-certs", global = true)]
    pub trusted_certs: Option<PathBuf>,
    /// Do not verify HTTPS certificates (testing only)
    #[arg(long = "skipverify", global = true)]
    pub skipverify: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options of the commands that run the state machine.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Exit with code 4 when a payload needs a reboot
    #[arg(long = "reboot-exit-code")]
    pub reboot_exit_code: bool,
    /// Stop before this state (repeatable): ArtifactInstall_Enter, ArtifactCommit_Enter,
    /// ArtifactCommit_Leave, ArtifactRollback_Enter, ArtifactFailure_Enter, Cleanup
    #[arg(long = "stop-before", value_name = "STATE")]
    pub stop_before: Vec<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install an artifact from a file, standard input (`-`) or an http(s) URL
    Install {
        /// The artifact
        artifact: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Commit the installed update
    Commit {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Roll back the installed update
    Rollback {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Continue an update stopped by --stop-before or a power cut
    Resume {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Print the name of the installed artifact
    ShowArtifact,
    /// Print what the device provides, one key=value a line
    ShowProvides,
}

fn fail(e: impl std::fmt::Display) -> CliError {
    CliError::new(1, format!("{e}"))
}

fn installer(cli: &Cli, stop_before: &[String]) -> Result<Installer, CliError> {
    let mut dirs = Dirs::from_env();
    if let Some(d) = &cli.datastore {
        dirs.datastore = d.clone();
    }
    let main = cli
        .config
        .clone()
        .unwrap_or_else(|| dirs.conf.join("mender.conf"));
    let fallback = cli
        .fallback_config
        .clone()
        .unwrap_or_else(|| dirs.datastore.join("mender.conf"));
    let config = Config::load(&main, cli.config.is_some(), &fallback).map_err(fail)?;
    let mut keys = Vec::new();
    for k in &config.verify_keys {
        let pem = std::fs::read(k).map_err(|e| fail(format!("{}: {e}", k.display())))?;
        keys.push(
            crate::crypto::VerifyingKey::from_pem(&pem)
                .map_err(|e| fail(format!("{}: {e}", k.display())))?,
        );
    }
    let stop_before = stop_before
        .iter()
        .map(|s| s.parse::<StopPoint>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let store = Store::open(&dirs.datastore).map_err(fail)?;
    let mut scripts = ScriptRunner::new(dirs.conf.join("scripts"), dirs.datastore.join("scripts"));
    scripts.timeout = config.script_timeout;
    scripts.retry_interval = config.script_retry_interval;
    scripts.retry_timeout = config.script_retry_timeout;
    let log_file = cli.log_file.clone();
    let level = cli
        .log_level
        .clone()
        .or_else(|| config.log_level.clone())
        .unwrap_or_else(|| "info".into());
    let quiet = matches!(
        level.as_str(),
        "warning" | "warn" | "error" | "fatal" | "panic"
    );
    if !matches!(
        level.as_str(),
        "trace" | "debug" | "info" | "warning" | "warn" | "error" | "fatal" | "panic"
    ) {
        return Err(fail(format!(
            "unknown log level {level:?}; use trace, debug, info, warning, error or fatal"
        )));
    }
    let counter = std::sync::atomic::AtomicU64::new(0);
    let log: Box<dyn Fn(&str)> = Box::new(move |msg: &str| {
        if quiet {
            return;
        }
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let line = format!(
            "record_id={n} severity=info time={:?} name=\"Global\" msg={msg:?}\n",
            log_time()
        );
        match &log_file {
            Some(p) => {
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            None => eprint!("{line}"),
        }
    });
    Ok(Installer {
        modules_dir: dirs.data.join("modules").join("v3"),
        dirs,
        config,
        store,
        scripts,
        keys,
        stop_before,
        log,
        announce: Box::new(|l: &str| println!("{l}")),
    })
}

/// The current time as upstream's log records show it: `2026-Nov-28 18:01:17.887619`.
fn log_time() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let s = super::artifact::read::go_time(now.as_secs() as i64);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month: usize = s[5..7].parse().unwrap_or(1);
    format!(
        "{}-{}-{} {}.{:06}",
        &s[0..4],
        MONTHS[month - 1],
        &s[8..10],
        &s[11..19],
        now.subsec_micros()
    )
}

fn finish(out: Outcome, reboot_exit_code: bool) -> CliResult {
    for l in out.lines() {
        println!("{l}");
    }
    match out.code(reboot_exit_code) {
        0 => Ok(()),
        code => Err(CliError::new(code, String::new())),
    }
}

fn open_source(cli: &Cli, inst: &Installer, arg: &str) -> Result<crate::source::Source, CliError> {
    let spec = crate::source::SourceSpec::parse(arg);
    let opts = crate::source::HttpOptions {
        trusted_certs: cli
            .trusted_certs
            .clone()
            .or_else(|| inst.config.server_certificate.clone()),
        skip_verify: cli.skipverify || inst.config.skip_verify,
        max_retries: inst.config.retry_download_count,
        user_agent: format!("Mender/{}", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    };
    crate::source::open(&spec, &opts).map_err(fail)
}

/// Parses `args` and runs the command.
pub fn run<I, T>(args: I) -> CliResult
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let Some(cli) = super::exit::parse_or_print::<Cli, _, _>(args, 1)? else {
        return Ok(());
    };
    if cli.version {
        println!("mender-update {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let Some(cmd) = &cli.command else {
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return Err(CliError::new(1, "no command given"));
    };
    match cmd {
        Command::Install { artifact, run } => {
            let inst = installer(&cli, &run.stop_before)?;
            inst.bootstrap().map_err(fail)?;
            let src = open_source(&cli, &inst, artifact)?;
            let bar = super::progress::bar("Installing", true);
            if let Some(n) = src.len() {
                bar.set_length(n);
            }
            (inst.log)(&format!("installing from {}", src.description()));
            let mut reader = bar.wrap_read(src);
            let out = inst.install(&mut reader);
            bar.finish_and_clear();
            finish(out.map_err(fail)?, run.reboot_exit_code)
        }
        Command::Commit { run } => {
            let inst = installer(&cli, &run.stop_before)?;
            finish(inst.commit().map_err(fail)?, run.reboot_exit_code)
        }
        Command::Rollback { run } => {
            let inst = installer(&cli, &run.stop_before)?;
            finish(inst.rollback().map_err(fail)?, run.reboot_exit_code)
        }
        Command::Resume { run } => {
            let inst = installer(&cli, &run.stop_before)?;
            finish(inst.resume().map_err(fail)?, run.reboot_exit_code)
        }
        Command::ShowArtifact => {
            let inst = installer(&cli, &[])?;
            inst.bootstrap().map_err(fail)?;
            let i = inst.store.installed().map_err(fail)?;
            println!("{}", i.artifact_name.as_deref().unwrap_or("unknown"));
            Ok(())
        }
        Command::ShowProvides => {
            let inst = installer(&cli, &[])?;
            inst.bootstrap().map_err(fail)?;
            let i = inst.store.installed().map_err(fail)?;
            for (k, v) in i.all() {
                println!("{k}={v}");
            }
            Ok(())
        }
    }
}
