//! `mender-artifact read`: prints what an artifact holds, in upstream's layout or as JSON,
//! after reading it whole and checking every checksum.

use std::fs::File;
use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::super::exit::{CliError, CliResult, FAILED, INVALID, OPEN};
use super::super::progress;
use super::keys;
use crate::artifact::gojson;
use crate::artifact::{
    read_artifact, ArtifactInfo, ReadOptions, SignatureStatus, Validate, VerifyMode,
};

/// `read` arguments.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The artifact
    pub artifact: PathBuf,
    #[command(flatten)]
    pub key: keys::VerifyKeyArgs,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    /// Do not show a progress bar
    #[arg(long = "no-progress")]
    pub no_progress: bool,
}

/// Opens and reads the artifact with optional verification, as `read` and `validate` do.
pub fn load(
    path: &std::path::Path,
    key: &keys::VerifyKeyArgs,
    require: bool,
    show_progress: bool,
) -> Result<ArtifactInfo, CliError> {
    let vk = key.verifier()?;
    let file = File::open(path).map_err(|e| {
        CliError::new(
            OPEN,
            format!("can not open artifact {}: {e}", path.display()),
        )
    })?;
    let pb = progress::bar("Reading artifact", show_progress);
    if let Ok(md) = file.metadata() {
        pb.set_length(md.len());
    }
    let verify = match vk.as_deref() {
        Some(k) if require => VerifyMode::Require(k),
        Some(k) => VerifyMode::Report(k),
        None => VerifyMode::None,
    };
    let opts = ReadOptions {
        verify,
        progress: Some(pb.clone()),
    };
    let r = read_artifact(
        std::io::BufReader::with_capacity(1 << 20, file),
        &opts,
        &mut Validate,
    );
    pb.finish_and_clear();
    r.map_err(|e| {
        CliError::artifact(
            &path.display().to_string(),
            e,
            if require { INVALID } else { FAILED },
        )
    })
}

fn signature_line(info: &ArtifactInfo) -> String {
    match &info.signature_status {
        SignatureStatus::Unsigned => "no signature".into(),
        SignatureStatus::NotChecked => {
            "signed but no key for verification provided; please use `-k` option for providing verification key".into()
        }
        SignatureStatus::Verified => "signed and verified correctly".into(),
        SignatureStatus::Failed(_) => "signed; verification using provided key failed".into(),
    }
}

fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// The text upstream 3.9 prints for `read`.
pub fn render_text(info: &ArtifactInfo) -> String {
    let hi = &info.header_info;
    let mut s = String::new();
    s += "Mender artifact:\n";
    s += &format!("  Name: {}\n", hi.artifact_name);
    s += "  Format: mender\n";
    s += &format!("  Version: {}\n", info.version);
    s += &format!("  Signature: {}\n", signature_line(info));
    s += &format!(
        "  Compatible devices: '{}'\n",
        go_list(&hi.depends_device_type)
    );
    if info.version >= 3 {
        s += &format!(
            "  Provides group: {}\n",
            hi.artifact_group.as_deref().unwrap_or("")
        );
        s += &format!(
            "  Depends on one of artifact(s): [{}]\n",
            hi.depends_artifact_name.join(", ")
        );
        s += &format!(
            "  Depends on one of group(s): [{}]\n",
            hi.depends_artifact_group.join(", ")
        );
    }
    s += "  State scripts:\n";
    for sc in &info.scripts {
        s += &format!("    {}\n", sc.name);
    }
    s += "\nUpdates:\n";
    for (i, p) in info.payloads.iter().enumerate() {
        s += &format!("    {i}:\n");
        s += &format!(
            "    Type:   {}\n",
            info.payload_type(i).unwrap_or("Empty type")
        );
        let provides = info.merged_provides(i);
        if provides.is_empty() || info.version < 3 {
            s += "    Provides: Nothing\n";
        } else {
            s += "    Provides:\n";
            for (k, v) in &provides {
                s += &format!("\t{k}: {v}\n");
            }
        }
        let depends = info.merged_depends(i);
        if depends.is_empty() || info.version < 3 {
            s += "    Depends: Nothing\n";
        } else {
            s += "    Depends:\n";
            for (k, v) in &depends {
                s += &format!("\t{k}: {}\n", value_text(v));
            }
        }
        if let Some(c) = &p.type_info.clears_provides {
            let quoted: Vec<String> = c.iter().map(|x| format!("{x:?}")).collect();
            s += &format!("    Clears Provides: [{}]\n", quoted.join(", "));
        }
        match info.merged_meta_data(i) {
            Some(m) => {
                s += "    Metadata:\n\t";
                s += &gojson::to_string_indent(&Value::Object(m), "\t", "  ");
                s += "\n";
            }
            None => s += "    Metadata: Nothing\n",
        }
        if p.files.is_empty() {
            s += "    Files: None\n";
        } else {
            s += "    Files:\n";
            for f in &p.files {
                s += &format!("      name:     {}\n", f.name);
                s += &format!("      size:     {}\n", f.size);
                s += &format!("      modified: {}\n", go_time(f.mtime));
                s += &format!("      checksum: {}\n", hex::encode(f.checksum));
            }
        }
    }
    s
}

/// Formats a Unix time as Go's `time.Time.String()` in UTC.
pub fn go_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The JSON form of `read --json`.
pub fn render_json(info: &ArtifactInfo) -> Value {
    let hi = &info.header_info;
    let payloads: Vec<Value> = info
        .payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "index": i,
                "type": info.payload_type(i),
                "provides": info.merged_provides(i),
                "depends": info.merged_depends(i),
                "clears_provides": p.type_info.clears_provides,
                "meta_data": info.merged_meta_data(i),
                "files": p.files.iter().map(|f| json!({
                    "name": f.name, "size": f.size, "mtime": f.mtime,
                    "mode": format!("{:o}", f.mode), "checksum": hex::encode(f.checksum),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let (signed, verified) = match &info.signature_status {
        SignatureStatus::Unsigned => (false, Value::Null),
        SignatureStatus::NotChecked => (true, Value::Null),
        SignatureStatus::Verified => (true, Value::Bool(true)),
        SignatureStatus::Failed(_) => (true, Value::Bool(false)),
    };
    json!({
        "name": hi.artifact_name,
        "format": "mender",
        "version": info.version,
        "signed": signed,
        "signature_verified": verified,
        "compatible_devices": hi.depends_device_type,
        "provides_group": hi.artifact_group,
        "depends_artifact_name": hi.depends_artifact_name,
        "depends_artifact_group": hi.depends_artifact_group,
        "state_scripts": info.scripts.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "compression": info.data_compression.unwrap_or(info.header_compression).name(),
        "augmented": info.augment.is_some(),
        "payloads": payloads,
    })
}

/// Runs `read`.
pub fn run(a: ReadArgs) -> CliResult {
    let info = load(&a.artifact, &a.key, false, !a.no_progress)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&render_json(&info)).expect("serialisable")
        );
    } else {
        print!("{}", render_text(&info));
    }
    if let SignatureStatus::Failed(e) = &info.signature_status {
        return Err(CliError::new(
            INVALID,
            format!(
                "{}: signature verification failed: {e}",
                a.artifact.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_time_format() {
        assert_eq!(
            super::go_time(1_700_000_000),
            "2023-11-14 22:13:20 +0000 UTC"
        );
        assert_eq!(super::go_time(0), "1970-01-01 00:00:00 +0000 UTC");
    }
}
