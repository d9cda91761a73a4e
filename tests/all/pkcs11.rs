//! `--key-pkcs11` through the binary, with keys in a SoftHSM token made by the test: signed
//! artifacts pass upstream `validate -k` with the matching PEM public key, and ours with the
//! token's public key.

use std::path::Path;
use std::process::Command;

use crate::common::*;

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn util(conf: &Path, args: &[&str]) {
    let out = Command::new("softhsm2-util")
        .args(args)
        .env("SOFTHSM2_CONF", conf)
        .output()
        .expect("softhsm2-util is needed (apt-get install softhsm2)");
    assert!(
        out.status.success(),
        "softhsm2-util {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_hsm(dir: &Path, conf: &Path, args: &[&str]) -> Run {
    let out = Command::new(ours())
        .args(args)
        .current_dir(dir)
        .env("SOFTHSM2_CONF", conf)
        .output()
        .unwrap();
    finish(out)
}

#[test]
fn sign_with_keys_in_an_hsm() {
    assert!(
        Path::new(SOFTHSM).exists(),
        "{SOFTHSM} is missing: apt-get install softhsm2"
    );
    let dir = tmp();
    let d = dir.path();
    std::fs::create_dir(d.join("tokens")).unwrap();
    let conf = d.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            d.join("tokens").display()
        ),
    )
    .unwrap();
    util(
        &conf,
        &[
            "--init-token",
            "--free",
            "--label",
            "ci",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ],
    );
    for (alg, opt) in [
        ("RSA", "rsa_keygen_bits:2048"),
        ("EC", "ec_paramgen_curve:P-256"),
    ] {
        let name = alg.to_lowercase();
        let r = run_in(
            d,
            "openssl",
            &[
                "genpkey",
                "-algorithm",
                alg,
                "-pkeyopt",
                opt,
                "-out",
                &format!("{name}.pem"),
            ],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        run_in(
            d,
            "openssl",
            &[
                "pkey",
                "-in",
                &format!("{name}.pem"),
                "-pubout",
                "-out",
                &format!("{name}.pub.pem"),
            ],
        )
        .ok();
        let id = if alg == "RSA" { "01" } else { "02" };
        util(
            &conf,
            &[
                "--import",
                d.join(format!("{name}.pem")).to_str().unwrap(),
                "--token",
                "ci",
                "--label",
                &name,
                "--id",
                id,
                "--pin",
                "1234",
            ],
        );
    }
    for name in ["rsa", "ec"] {
        let uri = format!(
            "pkcs11:token=ci;object={name};type=private?pin-value=1234&module-path={SOFTHSM}"
        );
        let out = format!("{name}.mender");
        let r = run_hsm(
            d,
            &conf,
            &[
                "write",
                "module-image",
                "-T",
                "m",
                "-t",
                "dev",
                "-n",
                "hsm",
                "-f",
                &input("file1.txt"),
                "--key-pkcs11",
                &uri,
                "-o",
                &out,
            ],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        upstream_ma(d, &["validate", "-k", &format!("{name}.pub.pem"), &out]).ok();
        let v = run_hsm(d, &conf, &["validate", "--key-pkcs11", &uri, &out]);
        assert_eq!(v.code, 0, "{}", v.stderr);
        // sign -f with the token replaces a file-key signature.
        std::fs::copy(upstream_fixture("module-image.mender"), d.join("re.mender")).unwrap();
        let s = run_hsm(d, &conf, &["sign", "--key-pkcs11", &uri, "re.mender"]);
        assert_eq!(s.code, 0, "{}", s.stderr);
        upstream_ma(
            d,
            &["validate", "-k", &format!("{name}.pub.pem"), "re.mender"],
        )
        .ok();
    }
    let bad = run_hsm(
        d,
        &conf,
        &[
            "validate",
            "--key-pkcs11",
            &format!("pkcs11:token=ci;object=rsa?pin-value=9999&module-path={SOFTHSM}"),
            "rsa.mender",
        ],
    );
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--key-pkcs11"), "{}", bad.stderr);
    assert!(!bad.stderr.contains("9999"), "the PIN must not be printed");
}
