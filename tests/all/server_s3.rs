//! mender-server with artifacts in S3-compatible storage: s3s-fs on loopback, which checks
//! the SigV4 signature of every request (header-signed and pre-signed URLs alike) and the
//! expiry of pre-signed URLs. Uploads land in the bucket only when valid, devices and tools
//! get pre-signed URLs that the object store serves with `Range`, tampered or expired links
//! are refused by the object store, a storage failure fails the upload and records nothing,
//! and deleting an artifact deletes the object.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{artifact, http, Dev, Srv};

/// The credentials the object store accepts.
pub const ACCESS_KEY: &str = "mender-test";
pub const SECRET_KEY: &str = "mender-test-secret";
/// The bucket the servers under test use (they create it).
pub const BUCKET: &str = "mender-artifacts";

/// s3s-fs, a signature-checking S3 server over a temporary directory, on a loopback port;
/// killed when dropped.
pub struct ObjectStore {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    port: u16,
    root: tempfile::TempDir,
}

impl Drop for ObjectStore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_s3s(port: u16, root: &std::path::Path, secret: &str) -> Child {
    let child = Command::new("s3s-fs")
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", secret])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "s3s-fs cannot be run ({e}); scripts/test installs it \
                 (cargo install --locked s3s-fs --features binary)"
            )
        });
    let end = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "s3s-fs did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Starts an object store that accepts `ACCESS_KEY`/`SECRET_KEY`.
pub fn object_store() -> ObjectStore {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = tempfile::tempdir().unwrap();
    let child = spawn_s3s(port, root.path(), SECRET_KEY);
    ObjectStore {
        child,
        url: format!("http://127.0.0.1:{port}"),
        port,
        root,
    }
}

impl ObjectStore {
    /// The `--storage` URL of `BUCKET` on this store.
    pub fn storage(&self) -> String {
        format!("s3://{BUCKET}?endpoint={}&region=us-east-1", self.url)
    }

    /// The environment that gives a server the credentials (with `secret` as secret key).
    pub fn env(secret: &'static str) -> [(&'static str, &'static str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", secret),
        ]
    }

    /// Restarts the store on the same port and data, accepting `secret` from now on.
    pub fn restart_with_secret(&mut self, secret: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_s3s(self.port, self.root.path(), secret);
    }

    /// The keys of the objects in `BUCKET`, from the store's directory.
    pub fn objects(&self) -> Vec<String> {
        let dir: PathBuf = self.root.path().join(BUCKET);
        let mut keys: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        keys.sort();
        keys
    }
}

/// `uri` with the last character of its signature changed.
fn flip_signature(uri: &str) -> String {
    assert!(uri.contains("X-Amz-Signature="), "{uri}");
    let mut s = uri.to_string();
    let last = s.pop().unwrap();
    s.push(if last == '0' { '1' } else { '0' });
    s
}

#[test]
fn artifacts_in_s3_are_served_by_presigned_urls() {
    let mut m = object_store();
    let storage = m.storage();
    let env = ObjectStore::env(SECRET_KEY);
    let srv = Srv::start_env(&["--storage", &storage], &env);
    // The server made the bucket; the store refuses unsigned requests.
    assert_eq!(m.objects(), Vec::<String>::new());
    let anon = http("GET", &format!("{}/{BUCKET}", m.url), None, &[], None);
    assert_eq!(anon.status, 403, "{}", anon.text());

    let user = srv.login();
    let tmp = tempfile::tempdir().unwrap();
    let art = artifact(tmp.path(), "s3-rel", "test-dev", 20000);
    let bytes = std::fs::read(&art).unwrap();
    let bad = super::corrupt(&bytes);
    let bad_path = tmp.path().join("bad.mender");
    std::fs::write(&bad_path, &bad).unwrap();
    assert_eq!(srv.upload(&user, &bad_path).status, 400);
    assert_eq!(
        m.objects(),
        Vec::<String>::new(),
        "a corrupt upload reached the bucket"
    );

    // The store stops accepting the server's secret: the upload fails as a storage error and
    // nothing is recorded or left behind.
    m.restart_with_secret("another-secret");
    let up = srv.upload(&user, &art);
    assert_eq!(up.status, 500, "{}", up.text());
    assert!(
        up.text().contains("storage") && up.text().contains("403"),
        "{}",
        up.text()
    );
    let list = srv.get("/api/management/v1/deployments/artifacts", &user);
    assert_eq!(list.json(), json!([]));
    assert_eq!(m.objects(), Vec::<String>::new());
    let staged = std::fs::read_dir(srv.data.join("staging")).unwrap().count();
    assert_eq!(staged, 0, "a failed upload left its staging file");
    m.restart_with_secret(SECRET_KEY);

    let up = srv.upload(&user, &art);
    assert_eq!(up.status, 201, "{}", up.text());
    let id = up
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(m.objects(), vec![id.clone()]);

    // The management download link and the device's source are pre-signed object URLs,
    // served by the store only with their signature intact.
    let link = srv
        .get(
            &format!("/api/management/v1/deployments/artifacts/{id}/download"),
            &user,
        )
        .json();
    let uri = link["uri"].as_str().unwrap();
    assert!(
        uri.starts_with(&m.url) && uri.contains("X-Amz-Signature="),
        "{uri}"
    );
    let got = http("GET", uri, None, &[], None);
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, bytes);
    let forged = http("GET", &flip_signature(uri), None, &[], None);
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert!(
        forged.text().contains("SignatureDoesNotMatch"),
        "{}",
        forged.text()
    );
    let other_key = uri.replace(&id, "some-other-object");
    assert_eq!(http("GET", &other_key, None, &[], None).status, 403);

    let (dev_id, tok) = Dev::new("ed25519", "s3dev").join(&srv, &user);
    let c = srv.send(
        "POST",
        "/api/management/v1/deployments/deployments",
        &user,
        &json!({"name": "s3", "artifact_name": "s3-rel", "devices": [dev_id]}),
    );
    assert_eq!(c.status, 201);
    let next = srv.send(
        "POST",
        "/api/devices/v1/deployments/device/deployments/next",
        &tok,
        &json!({"artifact_name": "old", "device_type": "test-dev"}),
    );
    assert_eq!(next.status, 200, "{}", next.text());
    let source = next.json()["artifact"]["source"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    let part = http("GET", &source, None, &[("Range", "bytes=1000-")], None);
    assert_eq!(part.status, 206, "{}", part.text());
    assert_eq!(part.body, bytes[1000..]);
    let forged = http(
        "GET",
        &flip_signature(&source),
        None,
        &[("Range", "bytes=1000-")],
        None,
    );
    assert_eq!(forged.status, 403, "{}", forged.text());

    // Deleting the artifact deletes the object (once no deployment needs it).
    let dep = c.header("location").unwrap();
    let abort = srv.send(
        "PUT",
        &format!("{dep}/status"),
        &user,
        &json!({"status": "aborted"}),
    );
    assert_eq!(abort.status, 204);
    let del = srv.delete(
        &format!("/api/management/v1/deployments/artifacts/{id}"),
        &user,
    );
    assert_eq!(del.status, 204, "{}", del.text());
    assert_eq!(m.objects(), Vec::<String>::new());
    assert_eq!(http("GET", uri, None, &[], None).status, 404);
}

#[test]
fn presigned_urls_expire_at_the_object_store() {
    let m = object_store();
    let env = ObjectStore::env(SECRET_KEY);
    let srv = Srv::start_env(&["--storage", &m.storage(), "--link-lifetime", "2"], &env);
    let user = srv.login();
    let tmp = tempfile::tempdir().unwrap();
    let up = srv.upload(&user, &artifact(tmp.path(), "s3-short", "test-dev", 5000));
    assert_eq!(up.status, 201, "{}", up.text());
    let id = up.header("location").unwrap();
    let link = srv.get(&format!("{id}/download"), &user).json();
    let uri = link["uri"].as_str().unwrap();
    assert!(uri.contains("X-Amz-Expires=2&"), "{uri}");
    std::thread::sleep(Duration::from_secs(4));
    let late = http("GET", uri, None, &[], None);
    assert_eq!(late.status, 403, "{}", late.text());
    assert!(late.text().contains("expired"), "{}", late.text());
}

#[test]
fn a_server_with_the_wrong_secret_does_not_start() {
    let m = object_store();
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(super::bin())
        .args(["serve", "--data", tmp.path().join("data").to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--storage", &m.storage()])
        .envs(ObjectStore::env("not-the-secret"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("mender-server started with a secret key the object store refuses");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains(BUCKET) && err.contains("403"),
        "unclear error: {err}"
    );
}
