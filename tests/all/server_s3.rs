//! mender-server with artifacts in S3-compatible storage (moto's S3 server on loopback):
//! uploads land in the bucket only when valid, devices and tools get pre-signed URLs that the
//! object store serves with `Range`, and deleting an artifact deletes the object.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{artifact, http, Dev, Srv};

pub struct Moto(Child, pub String);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server is installed by scripts/test (pip install 'moto[server]')");
    let url = format!("http://127.0.0.1:{port}");
    let end = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    Moto(child, url)
}

#[test]
fn artifacts_in_s3_are_served_by_presigned_urls() {
    let m = moto();
    let storage = format!("s3://mender-artifacts?endpoint={}&region=us-east-1", m.1);
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let srv = Srv::start_env(&["--storage", &storage], &env);
    let user = srv.login();
    let tmp = tempfile::tempdir().unwrap();
    let art = artifact(tmp.path(), "s3-rel", "test-dev", 20000);
    let bytes = std::fs::read(&art).unwrap();
    let bad = super::corrupt(&bytes);
    let bad_path = tmp.path().join("bad.mender");
    std::fs::write(&bad_path, &bad).unwrap();
    assert_eq!(srv.upload(&user, &bad_path).status, 400);
    let listing = http("GET", &format!("{}/mender-artifacts", m.1), None, &[], None).text();
    assert!(
        !listing.contains("<Key>"),
        "a corrupt upload reached the bucket: {listing}"
    );

    let up = srv.upload(&user, &art);
    assert_eq!(up.status, 201, "{}", up.text());
    let id = up
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let listing = http("GET", &format!("{}/mender-artifacts", m.1), None, &[], None).text();
    assert!(listing.contains(&format!("<Key>{id}</Key>")), "{listing}");

    // The management download link and the device's source are pre-signed object URLs.
    let link = srv
        .get(
            &format!("/api/management/v1/deployments/artifacts/{id}/download"),
            &user,
        )
        .json();
    let uri = link["uri"].as_str().unwrap();
    assert!(
        uri.starts_with(&m.1) && uri.contains("X-Amz-Signature="),
        "{uri}"
    );
    assert_eq!(http("GET", uri, None, &[], None).body, bytes);
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
    assert_eq!(part.status, 206);
    assert_eq!(part.body, bytes[1000..]);
    // (moto does not check signatures; the signing itself is checked against AWS's published
    // example in the unit tests of src/server/s3.rs.)

    // Deleting the artifact deletes the object (once no deployment needs it).
    let dep = c.header("location").unwrap();
    let abort = srv.send(
        "PUT",
        &format!("{dep}/status"),
        &user,
        &json!({"status": "aborted"}),
    );
    assert_eq!(abort.status, 204);
    let del = http(
        "DELETE",
        &format!("{}/api/management/v1/deployments/artifacts/{id}", srv.url),
        Some(&user),
        &[],
        None,
    );
    assert_eq!(del.status, 204, "{}", del.text());
    let listing = http("GET", &format!("{}/mender-artifacts", m.1), None, &[], None).text();
    assert!(!listing.contains("<Key>"), "{listing}");
}
