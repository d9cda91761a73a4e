//! Signatures, both ways with upstream: RSA and ECDSA artifacts we sign pass its
//! `validate -k`; its signed fixtures pass ours; RSA signatures are byte-identical; ed25519 is
//! ours only and upstream refuses it; every bad key or signature is a clear error.

use std::path::Path;

use crate::common::*;

fn key(name: &str) -> String {
    fixtures().join("keys").join(name).display().to_string()
}

fn openssl(dir: &Path, args: &[&str]) {
    let r = run_in(dir, "openssl", args);
    assert_eq!(r.code, 0, "openssl {args:?}: {}", r.stderr);
}

#[test]
fn rsa_and_ecdsa_interoperate_both_ways() {
    let dir = tmp();
    let d = dir.path();
    let img = input("rootfs.img");
    for (k, pubk) in [
        ("rsa2048.pem", "rsa2048.pub.pem"),
        ("ecdsa-p256.pem", "ecdsa-p256.pub.pem"),
    ] {
        let out = format!("ours-{k}.mender");
        ma(
            d,
            &[
                "write",
                "rootfs-image",
                "-f",
                &img,
                "-t",
                "dev",
                "-n",
                "r",
                "-k",
                &key(k),
                "-o",
                &out,
            ],
        )
        .ok();
        let v = upstream_ma(d, &["validate", "-k", &key(pubk), &out]).ok();
        assert!(v.stdout.contains("validated successfully"));
        let r = upstream_ma(d, &["read", "--no-progress", "-k", &key(pubk), &out]).ok();
        assert!(
            r.stdout
                .contains("Signature: signed and verified correctly"),
            "{}",
            r.stdout
        );
        ma(d, &["validate", "-k", &key(pubk), &out]).ok();
    }
    for (f, pubk) in [
        ("signed-rsa", "rsa2048.pub.pem"),
        ("signed-ecdsa", "ecdsa-p256.pub.pem"),
        ("module-signed-none", "rsa2048.pub.pem"),
    ] {
        let path = upstream_fixture(&format!("{f}.mender"));
        ma(d, &["validate", "-k", &key(pubk), path.to_str().unwrap()]).ok();
        let r = ma(d, &["read", "-k", &key(pubk), path.to_str().unwrap()]).ok();
        assert!(r
            .stdout
            .contains("Signature: signed and verified correctly"));
    }
}

#[test]
fn rsa_manifest_signature_is_byte_identical_to_upstream() {
    let dir = tmp();
    let d = dir.path();
    let args = [
        "write",
        "module-image",
        "-T",
        "m",
        "-t",
        "dev",
        "-n",
        "n",
        "-f",
        &input("file1.txt"),
        "-f",
        &input("file2.bin"),
        "--compression",
        "none",
        "-k",
    ];
    let k = key("rsa2048.pem");
    let mut a = args.to_vec();
    a.extend([k.as_str(), "-o", "ours.mender"]);
    ma(d, &a).ok();
    let mut b = args.to_vec();
    b.extend([k.as_str(), "-o", "theirs.mender"]);
    upstream_ma(d, &b).ok();
    assert_eq!(
        member(&d.join("ours.mender"), "manifest.sig"),
        member(&d.join("theirs.mender"), "manifest.sig")
    );
}

#[test]
fn sign_command_adds_and_replaces_signatures() {
    let dir = tmp();
    let d = dir.path();
    std::fs::copy(upstream_fixture("module-image.mender"), d.join("a.mender")).unwrap();
    let mut perms = std::fs::metadata(d.join("a.mender")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o640);
    std::fs::set_permissions(d.join("a.mender"), perms).unwrap();
    ma(d, &["sign", "-k", &key("rsa2048.pem"), "a.mender"]).ok();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.join("a.mender")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o640, "sign keeps the file mode");
    upstream_ma(d, &["validate", "-k", &key("rsa2048.pub.pem"), "a.mender"]).ok();
    let again = ma(d, &["sign", "-k", &key("rsa2048.pem"), "a.mender"]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("already signed"), "{}", again.stderr);
    ma(
        d,
        &[
            "sign",
            "-f",
            "-k",
            &key("ecdsa-p256.pem"),
            "a.mender",
            "-o",
            "b.mender",
        ],
    )
    .ok();
    upstream_ma(
        d,
        &["validate", "-k", &key("ecdsa-p256.pub.pem"), "b.mender"],
    )
    .ok();
    assert_eq!(
        members(&d.join("b.mender"))
            .iter()
            .filter(|m| *m == "manifest.sig")
            .count(),
        1
    );
    let bad = ma(d, &["validate", "-k", &key("rsa2048.pub.pem"), "b.mender"]);
    assert_eq!(bad.code, 4);
    // Upstream's own sign output is accepted too.
    std::fs::copy(upstream_fixture("rootfs-gzip.mender"), d.join("c.mender")).unwrap();
    upstream_ma(d, &["sign", "-k", &key("rsa2048.pem"), "c.mender"]).ok();
    ma(d, &["validate", "-k", &key("rsa2048.pub.pem"), "c.mender"]).ok();
    // A corrupt artifact is never signed.
    let mut bytes = std::fs::read(upstream_fixture("rootfs-none.mender")).unwrap();
    let n = bytes.len();
    bytes[n - 3000] ^= 1;
    std::fs::write(d.join("corrupt.mender"), &bytes).unwrap();
    let r = ma(d, &["sign", "-k", &key("rsa2048.pem"), "corrupt.mender"]);
    assert_ne!(r.code, 0);
    assert_eq!(std::fs::read(d.join("corrupt.mender")).unwrap(), bytes);
}

#[test]
fn key_formats_and_ed25519() {
    let dir = tmp();
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:3072",
            "-out",
            "rsa8.pem",
        ],
    );
    openssl(
        d,
        &["pkey", "-in", "rsa8.pem", "-pubout", "-out", "rsa8.pub.pem"],
    );
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:s3cret",
            "-in",
            "rsa8.pem",
            "-out",
            "rsa8-enc.pem",
        ],
    );
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec8.pem",
        ],
    );
    openssl(
        d,
        &["pkey", "-in", "ec8.pem", "-pubout", "-out", "ec8.pub.pem"],
    );
    openssl(d, &["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"]);
    openssl(
        d,
        &["pkey", "-in", "ed.pem", "-pubout", "-out", "ed.pub.pem"],
    );
    std::fs::write(d.join("pass.txt"), "s3cret\n").unwrap();
    let f = input("file1.txt");
    let w = |k: &str, out: &str, extra: &[&str]| {
        let mut a = vec![
            "write",
            "module-image",
            "-T",
            "m",
            "-t",
            "d",
            "-n",
            "n",
            "-f",
            &f,
            "-k",
            k,
            "-o",
            out,
        ];
        a.extend_from_slice(extra);
        ma(d, &a)
    };
    w("rsa8.pem", "rsa8.mender", &[]).ok();
    upstream_ma(d, &["validate", "-k", "rsa8.pub.pem", "rsa8.mender"]).ok();
    w(
        "rsa8-enc.pem",
        "enc.mender",
        &["--passphrase-file", "pass.txt"],
    )
    .ok();
    ma(d, &["validate", "-k", "rsa8.pub.pem", "enc.mender"]).ok();
    let nopass = w("rsa8-enc.pem", "x.mender", &[]);
    assert_eq!(nopass.code, 2);
    assert!(nopass.stderr.contains("passphrase"), "{}", nopass.stderr);
    assert!(!d.join("x.mender").exists());
    w("ec8.pem", "ec8.mender", &[]).ok();
    upstream_ma(d, &["validate", "-k", "ec8.pub.pem", "ec8.mender"]).ok();
    w("ed.pem", "ed.mender", &[]).ok();
    ma(d, &["validate", "-k", "ed.pub.pem", "ed.mender"]).ok();
    // Upstream never accepts an ed25519 signature: with the key it cannot load it, without a
    // key it refuses a signed artifact.
    for args in [
        vec!["validate", "-k", "ed.pub.pem", "ed.mender"],
        vec!["validate", "ed.mender"],
    ] {
        let r = upstream_ma(d, &args);
        assert!(
            !r.stdout.contains("validated successfully"),
            "{args:?}: {}",
            r.stdout
        );
    }
}

#[test]
fn bad_keys_and_signatures_are_refused() {
    let dir = tmp();
    let d = dir.path();
    let signed = upstream_fixture("signed-rsa.mender");
    let signed = signed.to_str().unwrap();
    std::fs::write(
        d.join("garbage.pem"),
        "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    std::fs::write(d.join("empty.pem"), "").unwrap();
    let (ec_pub, rsa_priv, rsa_pub) = (
        key("ecdsa-p256.pub.pem"),
        key("rsa2048.pem"),
        key("rsa2048.pub.pem"),
    );
    let unsigned = upstream_fixture("rootfs-gzip.mender").display().to_string();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["validate", "-k", &ec_pub, signed], 4, "signature"),
        (
            vec!["validate", "-k", "garbage.pem", signed],
            2,
            "garbage.pem",
        ),
        (vec!["validate", "-k", "empty.pem", signed], 2, "empty.pem"),
        (vec!["validate", "-k", &rsa_priv, signed], 2, "public key"),
        (vec!["validate", "-k", &rsa_pub, &unsigned], 4, "not signed"),
    ];
    for (args, code, needle) in cases {
        let r = ma(d, &args);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.to_lowercase().contains(needle),
            "{args:?}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.trim_end().lines().count(), 1);
    }
    // Tampered signatures: truncated, not base64, over another manifest.
    let good = std::fs::read(signed).unwrap();
    let sig_at = find(&good, b"manifest.sig") + 512;
    let mut truncated = good.clone();
    truncated[sig_at + 100] = b'=';
    let mut not_b64 = good.clone();
    not_b64[sig_at + 10] = b'!';
    let mut other_manifest = good.clone();
    let m_at = find(&good, b"manifest\0") + 512;
    other_manifest[m_at] = if good[m_at] == b'a' { b'b' } else { b'a' };
    for (name, bytes) in [
        ("truncated", truncated),
        ("not-b64", not_b64),
        ("other", other_manifest),
    ] {
        let p = d.join(format!("{name}.mender"));
        std::fs::write(&p, bytes).unwrap();
        let r = ma(
            d,
            &[
                "validate",
                "-k",
                &key("rsa2048.pub.pem"),
                p.to_str().unwrap(),
            ],
        );
        assert_eq!(r.code, 4, "{name}: {}", r.stderr);
        assert!(r.stderr.contains("signature"), "{name}: {}", r.stderr);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

/// Rebuilds `artifact` with `sig` (raw bytes, base64-encoded here) as its `manifest.sig`.
fn with_signature(artifact: &Path, sig: &[u8]) -> Vec<u8> {
    use mender::artifact::tarw::{write_end, write_entry, EntryMeta};
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(std::fs::File::open(artifact).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if name == "manifest.sig" {
            continue;
        }
        write_entry(
            &mut out,
            &EntryMeta::stream(&name, data.len() as u64),
            &data,
        )
        .unwrap();
        if name == "manifest" {
            let b64 = mender::crypto::encode_signature(sig);
            write_entry(
                &mut out,
                &EntryMeta::stream("manifest.sig", b64.len() as u64),
                b64.as_bytes(),
            )
            .unwrap();
        }
    }
    write_end(&mut out).unwrap();
    out
}

#[test]
fn der_ecdsa_signatures_verify_and_other_curves_are_refused() {
    let dir = tmp();
    let d = dir.path();
    let unsigned = upstream_fixture("module-image.mender");
    std::fs::write(d.join("manifest"), member(&unsigned, "manifest")).unwrap();
    let k = key("ecdsa-p256.pem");
    openssl(
        d,
        &[
            "dgst", "-sha256", "-sign", &k, "-out", "sig.der", "manifest",
        ],
    );
    let der = std::fs::read(d.join("sig.der")).unwrap();
    assert!(der.len() > 64, "openssl writes DER");
    std::fs::write(d.join("der.mender"), with_signature(&unsigned, &der)).unwrap();
    ma(
        d,
        &["validate", "-k", &key("ecdsa-p256.pub.pem"), "der.mender"],
    )
    .ok();
    let wrong = ma(
        d,
        &["validate", "-k", &key("rsa2048.pub.pem"), "der.mender"],
    );
    assert_eq!(wrong.code, 4);

    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            "p384.pem",
        ],
    );
    let r = ma(
        d,
        &[
            "write",
            "module-image",
            "-T",
            "m",
            "-t",
            "d",
            "-n",
            "n",
            "-k",
            "p384.pem",
            "-o",
            "x.mender",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("P-256"), "{}", r.stderr);
    assert!(!d.join("x.mender").exists());
}
