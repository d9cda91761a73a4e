//! mender-server over HTTP: device admission with each key type, the deployment cycle,
//! downloads with Range, uploads, and bad input (signatures, tokens, JSON, sizes, quotas).

use serde_json::{json, Value};

use super::{artifact, http, Dev, Srv};

const NEXT: &str = "/api/devices/v1/deployments/device/deployments/next";
const INVENTORY: &str = "/api/devices/v1/inventory/device/attributes";
const DEPLOYMENTS: &str = "/api/management/v1/deployments/deployments";

fn provides(name: &str) -> Value {
    json!({"artifact_name": name, "device_type": "test-dev", "rootfs-image.version": "1"})
}

#[test]
fn devices_with_each_key_type_are_admitted_only_once_accepted() {
    let srv = Srv::start(&[]);
    let user = srv.login();
    for (kind, mac) in [("rsa", "01"), ("ec", "02"), ("ed25519", "03")] {
        let dev = Dev::new(kind, mac);
        let a = dev.auth(&srv);
        assert_eq!(a.status, 401, "{kind}: {}", a.text());
        assert!(a.json()["error"].is_string());
        let d = srv.device(&user, mac).expect("pending device listed");
        assert_eq!(d["status"], "pending");
        let (id, token) = dev.join(&srv, &user);
        assert_eq!(srv.device(&user, mac).unwrap()["status"], "accepted");
        let inv = srv.send(
            "PUT",
            INVENTORY,
            &token,
            &json!([
                {"name": "device_type", "value": "test-dev"},
                {"name": "ipv4", "value": ["10.0.0.1/24", "10.0.0.2/24"]},
            ]),
        );
        assert_eq!(inv.status, 200, "{}", inv.text());
        let next = srv.send("POST", NEXT, &token, &provides("a"));
        assert_eq!(next.status, 204, "{}", next.text());
        // Rejecting revokes the token at once.
        let aid = srv.device(&user, mac).unwrap()["auth_sets"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = srv.send(
            "PUT",
            &format!("/api/management/v2/devauth/devices/{id}/auth/{aid}/status"),
            &user,
            &json!({"status": "rejected"}),
        );
        assert_eq!(r.status, 204);
        assert_eq!(srv.send("POST", NEXT, &token, &provides("a")).status, 401);
        assert_eq!(dev.auth(&srv).status, 401);
    }
    let inv = srv.get("/api/management/v1/inventory/devices", &user);
    assert_eq!(inv.status, 200);
    assert_eq!(inv.header("x-total-count").as_deref(), Some("3"));
    let attrs = inv.json()[0]["attributes"].clone();
    assert!(attrs.as_array().unwrap().iter().any(|a| a["name"] == "ipv4"
        && a["scope"] == "inventory"
        && a["value"][1] == "10.0.0.2/24"));
}

#[test]
fn preauthorized_devices_are_accepted_on_first_request() {
    let srv = Srv::start(&[]);
    let user = srv.login();
    let dev = Dev::new("ed25519", "pre");
    let body = json!({"identity_data": {"serial": "s-1", "mac": "pre"}, "pubkey": dev.pubkey});
    let a = srv.send("POST", "/api/management/v2/devauth/devices", &user, &body);
    assert_eq!(a.status, 201, "{}", a.text());
    assert!(a.header("location").unwrap().contains("/devauth/devices/"));
    assert_eq!(
        srv.send("POST", "/api/management/v2/devauth/devices", &user, &body)
            .status,
        409
    );
    assert_eq!(dev.auth(&srv).status, 200);
    // Decommissioning removes the device; it comes back as a fresh pending one.
    let id = srv.device(&user, "pre").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = srv.delete(&format!("/api/management/v2/devauth/devices/{id}"), &user);
    assert_eq!(d.status, 204);
    assert_eq!(dev.auth(&srv).status, 401);
    assert_eq!(srv.device(&user, "pre").unwrap()["status"], "pending");
}

#[test]
fn bad_auth_requests_are_refused_and_store_nothing() {
    let srv = Srv::start(&[]);
    let user = srv.login();
    let dev = Dev::new("rsa", "bad");
    let other = Dev::new("rsa", "other");
    let url = format!("{}/api/devices/v1/authentication/auth_requests", srv.url);
    let body = dev.body();
    // Signed by another key.
    let a = http(
        "POST",
        &url,
        None,
        &[("X-MEN-Signature", &other.sign(&body))],
        Some(&body),
    );
    assert_eq!(a.status, 401, "{}", a.text());
    assert_eq!(a.json()["error"], "signature verification failed");
    // Body changed after signing (the trailing newline dropped).
    let sig = dev.sign(&body);
    let a = http(
        "POST",
        &url,
        None,
        &[("X-MEN-Signature", &sig)],
        Some(&body[..body.len() - 1]),
    );
    assert_eq!(a.status, 401);
    // No signature, garbage signature, malformed JSON, missing fields, bad key.
    assert_eq!(http("POST", &url, None, &[], Some(&body)).status, 400);
    assert_eq!(
        http(
            "POST",
            &url,
            None,
            &[("X-MEN-Signature", "!!")],
            Some(&body)
        )
        .status,
        400
    );
    let a = http(
        "POST",
        &url,
        None,
        &[("X-MEN-Signature", &sig)],
        Some(b"{\"id_data\": "),
    );
    assert_eq!(a.status, 400);
    assert!(a.json()["error"].as_str().unwrap().contains("malformed"));
    let b = br#"{"pubkey":"x"}"#;
    assert_eq!(
        http(
            "POST",
            &url,
            None,
            &[("X-MEN-Signature", &dev.sign(b))],
            Some(b)
        )
        .status,
        400
    );
    let b =
        serde_json::to_vec(&json!({"id_data": "{\"mac\":\"1\"}", "pubkey": "not a key"})).unwrap();
    assert_eq!(
        http(
            "POST",
            &url,
            None,
            &[("X-MEN-Signature", &dev.sign(&b))],
            Some(&b)
        )
        .status,
        400
    );
    let listed = srv.get("/api/management/v2/devauth/devices", &user);
    assert_eq!(listed.json(), json!([]), "nothing stored");
}

#[test]
fn tokens_are_checked_for_kind_signature_and_expiry() {
    let srv = Srv::start(&["--token-lifetime", "2"]);
    let user = srv.login();
    let dev = Dev::new("ec", "tok");
    let (_, token) = dev.join(&srv, &user);
    // A device token on a management route, a user token on a device route.
    assert_eq!(
        srv.get("/api/management/v2/devauth/devices", &token).status,
        401
    );
    assert_eq!(srv.send("POST", NEXT, &user, &provides("a")).status, 401);
    // Forged: payload changed, signature kept.
    let parts: Vec<&str> = token.split('.').collect();
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"jti":"x","sub":"y","iss":"Mender","exp":99999999999,"iat":0,"mender.device":true}"#,
    );
    let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
    assert_eq!(srv.send("POST", NEXT, &forged, &provides("a")).status, 401);
    assert_eq!(
        srv.send("POST", NEXT, "garbage", &provides("a")).status,
        401
    );
    let none = http(
        "POST",
        &format!("{}{NEXT}", srv.url),
        None,
        &[],
        Some(b"{}"),
    );
    assert_eq!(none.status, 401);
    assert_eq!(srv.send("POST", NEXT, &token, &provides("a")).status, 204);
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let a = srv.send("POST", NEXT, &token, &provides("a"));
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["error"], "token has expired");
}

#[test]
fn malformed_and_oversized_bodies_are_refused() {
    let srv = Srv::start(&["--max-body", "4096"]);
    let user = srv.login();
    let (_, token) = Dev::new("ed25519", "json").join(&srv, &user);
    let url = format!("{}{INVENTORY}", srv.url);
    let a = http("PUT", &url, Some(&token), &[], Some(b"[{\"name\": \"x\", "));
    assert_eq!(a.status, 400);
    let a = http(
        "PUT",
        &url,
        Some(&token),
        &[],
        Some(br#"[{"name": "x", "value": {"a": 1}}]"#),
    );
    assert_eq!(a.status, 400, "objects are not attribute values");
    let big = serde_json::to_vec(&json!([{"name": "x", "value": "y".repeat(5000)}])).unwrap();
    let a = http("PUT", &url, Some(&token), &[], Some(&big));
    assert_eq!(a.status, 413, "{}", a.text());
    let a = srv.send("POST", NEXT, &token, &json!({"device_type": "t"}));
    assert_eq!(a.status, 400, "artifact_name is required");
    let a = srv.send(
        "PUT",
        &format!("{DEPLOYMENTS}/x/status"),
        &user,
        &json!({"status": "paused"}),
    );
    assert_eq!(a.status, 400);
    let a = http(
        "GET",
        &format!("{}/api/no/such/thing", srv.url),
        None,
        &[],
        None,
    );
    assert_eq!(a.status, 404);
}

#[test]
fn requests_over_quota_get_429_with_retry_after() {
    let srv = Srv::start(&["--rate-quota", "5", "--rate-interval", "30"]);
    let user = srv.login();
    let (_, token) = Dev::new("ed25519", "rate").join(&srv, &user);
    let codes: Vec<u16> = (0..6)
        .map(|_| srv.send("POST", NEXT, &token, &provides("a")).status)
        .collect();
    assert_eq!(codes, [204, 204, 204, 204, 204, 429]);
    let a = srv.send("POST", NEXT, &token, &provides("a"));
    let retry: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry));
    assert_eq!(a.json()["error"], "too many requests");
    // Authentication requests are counted per source address: joining used 2 of the 5.
    let other = Dev::new("ed25519", "rate-2");
    let codes: Vec<u16> = (0..5).map(|_| other.auth(&srv).status).collect();
    assert_eq!(codes, [401, 401, 401, 429, 429]);
}

#[test]
fn corrupt_uploads_are_refused_and_leave_nothing() {
    let srv = Srv::start(&[]);
    let user = srv.login();
    let tmp = tempfile::tempdir().unwrap();
    let good = artifact(tmp.path(), "rel-1", "test-dev", 8192);
    let bytes = super::corrupt(&std::fs::read(&good).unwrap());
    let bad = tmp.path().join("bad.mender");
    std::fs::write(&bad, &bytes).unwrap();
    let a = srv.upload(&user, &bad);
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid artifact"));
    let truncated = tmp.path().join("short.mender");
    std::fs::write(&truncated, &std::fs::read(&good).unwrap()[..3000]).unwrap();
    assert_eq!(srv.upload(&user, &truncated).status, 400);
    // Junk of several MiB: refused early, the rest still read so the answer arrives.
    let junk = tmp.path().join("junk.mender");
    std::fs::write(&junk, super::noise(4 << 20)).unwrap();
    let a = srv.upload(&user, &junk);
    assert_eq!(a.status, 400, "{}", a.text());
    let msg = a.json()["error"].as_str().unwrap().to_string();
    assert!(
        msg.chars().all(|c| c.is_ascii_graphic() || c == ' '),
        "{msg:?}"
    );
    let list = srv.get("/api/management/v1/deployments/artifacts", &user);
    assert_eq!(list.json(), json!([]));
    let files: Vec<_> = std::fs::read_dir(srv.data.join("artifacts"))
        .unwrap()
        .chain(std::fs::read_dir(srv.data.join("artifacts/.tmp")).unwrap())
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_file())
        .collect();
    assert!(files.is_empty(), "left behind: {files:?}");
    // The good one goes in, and a second copy conflicts.
    let a = srv.upload(&user, &good);
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(srv.upload(&user, &good).status, 409);
}

#[test]
fn a_deployment_runs_from_upload_to_statistics() {
    let srv = Srv::start(&[]);
    let user = srv.login();
    let tmp = tempfile::tempdir().unwrap();
    let art = artifact(tmp.path(), "rel-2", "test-dev", 10000);
    let art_bytes = std::fs::read(&art).unwrap();
    let up = srv.upload(&user, &art);
    assert_eq!(up.status, 201, "{}", up.text());
    let loc = up.header("location").unwrap();
    let meta = srv.get(&loc, &user).json();
    assert_eq!(meta["name"], "rel-2");
    assert_eq!(meta["device_types_compatible"], json!(["test-dev"]));
    assert_eq!(meta["size"], art_bytes.len());
    assert_eq!(meta["updates"][0]["type_info"]["type"], "single-file");
    assert_eq!(meta["artifact_provides"]["artifact_name"], "rel-2");

    let (a_id, a_tok) = Dev::new("ed25519", "d1").join(&srv, &user);
    let (b_id, b_tok) = Dev::new("ed25519", "d2").join(&srv, &user);
    let (c_id, c_tok) = Dev::new("ed25519", "d3").join(&srv, &user);
    let body = json!({"name": "roll", "artifact_name": "rel-2", "devices": [a_id, b_id, c_id]});
    let created = srv.send("POST", DEPLOYMENTS, &user, &body);
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(srv.send("POST", DEPLOYMENTS, &user, &body).status, 409);
    let missing = json!({"name": "x", "artifact_name": "nope", "all_devices": true});
    assert_eq!(srv.send("POST", DEPLOYMENTS, &user, &missing).status, 422);
    let dep = created.header("location").unwrap();
    let dep_id = dep.rsplit('/').next().unwrap().to_string();

    // Device a: the whole cycle, through the v2 route.
    let v2 = "/api/devices/v2/deployments/device/deployments/next";
    let n = srv.send(
        "POST",
        v2,
        &a_tok,
        &json!({"device_provides": provides("old"), "update_control_map": true}),
    );
    assert_eq!(n.status, 200, "{}", n.text());
    let n = n.json();
    assert_eq!(n["id"], dep_id.as_str());
    assert_eq!(n["artifact"]["artifact_name"], "rel-2");
    assert_eq!(
        n["artifact"]["device_types_compatible"],
        json!(["test-dev"])
    );
    let uri = n["artifact"]["source"]["uri"].as_str().unwrap().to_string();
    let full = http("GET", &uri, None, &[], None);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, art_bytes);
    assert_eq!(full.header("accept-ranges").as_deref(), Some("bytes"));
    let part = http("GET", &uri, None, &[("Range", "bytes=100-")], None);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, art_bytes[100..]);
    assert_eq!(
        part.header("content-range").unwrap(),
        format!("bytes 100-{}/{}", art_bytes.len() - 1, art_bytes.len())
    );
    let past = format!("bytes={}-", art_bytes.len());
    assert_eq!(
        http("GET", &uri, None, &[("Range", &past)], None).status,
        416
    );
    let forged = uri.replace("x-men-signature=", "x-men-signature=A");
    assert_eq!(http("GET", &forged, None, &[], None).status, 403);
    let status = format!("/api/devices/v1/deployments/device/deployments/{dep_id}/status");
    for s in ["downloading", "downloading", "installing", "success"] {
        let r = srv.send("PUT", &status, &a_tok, &json!({"status": s}));
        assert_eq!(r.status, 204, "{s}: {}", r.text());
    }
    assert_eq!(
        srv.send("POST", NEXT, &a_tok, &provides("rel-2")).status,
        204
    );
    // Device b already runs rel-2: no download, counted as already-installed.
    assert_eq!(
        srv.send("POST", NEXT, &b_tok, &provides("rel-2")).status,
        204
    );
    // Device c starts, fails and uploads its log.
    let get_next = format!("{NEXT}?artifact_name=old&device_type=test-dev");
    assert_eq!(srv.get(&get_next, &c_tok).status, 200);
    assert_eq!(
        srv.send("PUT", &status, &c_tok, &json!({"status": "installing"}))
            .status,
        204
    );
    assert_eq!(
        srv.send("PUT", &status, &c_tok, &json!({"status": "failure"}))
            .status,
        204
    );
    let log = json!({"messages": [{"timestamp": "2026-01-01T00:00:00Z", "level": "error", "message": "boom"}]});
    assert_eq!(
        srv.send("PUT", &status.replace("/status", "/log"), &c_tok, &log)
            .status,
        204
    );
    let text = srv
        .get(&format!("{DEPLOYMENTS}/{dep_id}/devices/{c_id}/log"), &user)
        .text();
    assert!(text.contains("error boom"), "{text}");

    let stats = srv
        .get(&format!("{DEPLOYMENTS}/{dep_id}/statistics"), &user)
        .json();
    assert_eq!(stats["success"], 1);
    assert_eq!(stats["already-installed"], 1);
    assert_eq!(stats["failure"], 1);
    assert_eq!(stats["pending"], 0);
    assert_eq!(stats["pause_before_committing"], 0);
    let d = srv.get(&dep, &user).json();
    assert_eq!(d["status"], "finished");
    assert_eq!(d["device_count"], 3);
    // Handed out twice (a and c); b never downloaded.
    assert_eq!(d["statistics"]["total_size"], 2 * art_bytes.len());
    assert_eq!(
        srv.get(&format!("{DEPLOYMENTS}?status=finished"), &user)
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A finished deployment cannot be aborted; its artifact may now be deleted.
    let ab = srv.send(
        "PUT",
        &format!("{DEPLOYMENTS}/{dep_id}/status"),
        &user,
        &json!({"status": "aborted"}),
    );
    assert_eq!(ab.status, 422);
    let del = srv.delete(&loc, &user);
    assert_eq!(del.status, 204);
    assert_eq!(http("GET", &uri, None, &[], None).status, 404);
}

#[test]
fn aborted_deployments_answer_409_to_status_reports() {
    let srv = Srv::start(&[]);
    let user = srv.login();
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(
        srv.upload(&user, &artifact(tmp.path(), "rel-3", "test-dev", 5000))
            .status,
        201
    );
    let other = artifact(tmp.path(), "rel-3b", "other-dev", 5000);
    assert_eq!(srv.upload(&user, &other).status, 201);
    let (a_id, a_tok) = Dev::new("ed25519", "ab1").join(&srv, &user);
    let created = srv.send(
        "POST",
        DEPLOYMENTS,
        &user,
        &json!({"name": "n", "artifact_name": "rel-3", "all_devices": true}),
    );
    assert_eq!(created.status, 201);
    let dep_id = created
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    // Deleting an artifact in use is refused.
    let arts = srv
        .get("/api/management/v1/deployments/artifacts?name=rel-3", &user)
        .json();
    let art_id = arts[0]["id"].as_str().unwrap();
    let del = srv.delete(
        &format!("/api/management/v1/deployments/artifacts/{art_id}"),
        &user,
    );
    assert_eq!(del.status, 409);
    assert_eq!(srv.send("POST", NEXT, &a_tok, &provides("old")).status, 200);
    let status = format!("/api/devices/v1/deployments/device/deployments/{dep_id}/status");
    assert_eq!(
        srv.send("PUT", &status, &a_tok, &json!({"status": "downloading"}))
            .status,
        204
    );
    // Reporting different provides mid-deployment is a conflict.
    let mut p = provides("old");
    p["extra"] = json!("1");
    let ab = srv.send(
        "PUT",
        &format!("{DEPLOYMENTS}/{dep_id}/status"),
        &user,
        &json!({"status": "aborted"}),
    );
    assert_eq!(ab.status, 204, "{}", ab.text());
    let r = srv.send("PUT", &status, &a_tok, &json!({"status": "installing"}));
    assert_eq!(r.status, 409);
    assert_eq!(srv.send("POST", NEXT, &a_tok, &p).status, 204);
    let stats = srv
        .get(&format!("{DEPLOYMENTS}/{dep_id}/statistics"), &user)
        .json();
    assert_eq!(stats["aborted"], 1);
    let devs = srv
        .get(&format!("{DEPLOYMENTS}/{dep_id}/devices"), &user)
        .json();
    assert_eq!(devs[0]["id"], a_id.as_str());
    assert_eq!(devs[0]["status"], "aborted");
    // Unknown deployment for this device.
    let r = srv.send("PUT", "/api/devices/v1/deployments/device/deployments/00000000-0000-4000-8000-000000000000/status", &a_tok, &json!({"status": "installing"}));
    assert_eq!(r.status, 404);
}

#[test]
fn a_device_type_without_artifact_gets_noartifact() {
    let srv = Srv::start(&[]);
    let user = srv.login();
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(
        srv.upload(&user, &artifact(tmp.path(), "rel-4", "other-dev", 5000))
            .status,
        201
    );
    let (id, tok) = Dev::new("ed25519", "na").join(&srv, &user);
    let c = srv.send(
        "POST",
        DEPLOYMENTS,
        &user,
        &json!({"name": "n", "artifact_name": "rel-4", "devices": [id]}),
    );
    let dep = c.header("location").unwrap();
    assert_eq!(srv.send("POST", NEXT, &tok, &provides("old")).status, 204);
    assert_eq!(
        srv.get(&format!("{dep}/statistics"), &user).json()["noartifact"],
        1
    );
}

#[test]
fn sigterm_stops_the_server_cleanly_and_data_survives_restart() {
    let srv = Srv::start(&[]);
    let user = srv.login();
    Dev::new("ed25519", "keep").auth(&srv);
    let again = srv.restart(&[]);
    // The token secret persisted, so the old user token still works.
    assert!(again.device(&user, "keep").is_some());
}

#[test]
fn sigterm_lets_an_inflight_download_finish() {
    use std::io::{BufRead, BufReader, Read, Write};
    let srv = Srv::start(&[]);
    let user = srv.login();
    let tmp = tempfile::tempdir().unwrap();
    let payload = super::noise(6 << 20);
    let file = tmp.path().join("big.bin");
    std::fs::write(&file, &payload).unwrap();
    let art = tmp.path().join("big.mender");
    let out = std::process::Command::new("mender-artifact")
        .args([
            "write",
            "module-image",
            "-T",
            "single-file",
            "-n",
            "big",
            "-t",
            "test-dev",
        ])
        .args(["-f", file.to_str().unwrap(), "-o", art.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let up = srv.upload(&user, &art);
    assert_eq!(up.status, 201, "{}", up.text());
    let id = up
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let link = srv
        .get(
            &format!("/api/management/v1/deployments/artifacts/{id}/download"),
            &user,
        )
        .json()["uri"]
        .as_str()
        .unwrap()
        .to_string();
    let size = std::fs::metadata(&art).unwrap().len() as usize;
    // Start the download, read a little, then ask the server to stop.
    let rest = link.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    let mut first = vec![0u8; 4096];
    reader.read_exact(&mut first).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(srv.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // New connections are refused while the old one is still served to the end.
    assert!(
        std::net::TcpStream::connect(host).is_err(),
        "still accepting"
    );
    let mut body = first;
    reader.read_to_end(&mut body).unwrap();
    assert_eq!(body.len(), size);
    assert_eq!(body, std::fs::read(&art).unwrap());
}

#[test]
fn logout_revokes_the_user_token() {
    let srv = Srv::start(&[]);
    let user = srv.login();
    let me = srv.get("/api/management/v1/useradm/users/me", &user);
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["email"], super::USER);
    let out = srv.logout(&user);
    assert_eq!(out.status, 202, "{}", out.text());
    assert_eq!(
        srv.get("/api/management/v1/useradm/users/me", &user).status,
        401
    );
    let again = srv.login();
    assert_eq!(
        srv.get("/api/management/v1/useradm/users/me", &again)
            .status,
        200
    );
}

#[test]
fn group_deployments_reach_accepted_devices_of_the_group_only() {
    let srv = Srv::start(&[]);
    let user = srv.login();
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(
        srv.upload(&user, &artifact(tmp.path(), "rel-g", "test-dev", 5000))
            .status,
        201
    );
    let (in_id, in_tok) = Dev::new("ed25519", "g1").join(&srv, &user);
    let (_, out_tok) = Dev::new("ed25519", "g2").join(&srv, &user);
    let group = format!("/api/management/v1/inventory/devices/{in_id}/group");
    let bad = srv.send("PUT", &group, &user, &json!({"group": "no spaces"}));
    assert_eq!(bad.status, 400);
    assert_eq!(
        srv.send("PUT", &group, &user, &json!({"group": "canary"}))
            .status,
        204
    );
    assert_eq!(srv.get(&group, &user).json()["group"], "canary");
    let groups = srv.get("/api/management/v1/inventory/groups", &user).json();
    assert_eq!(groups, json!(["canary"]));
    let listed = srv.get("/api/management/v1/inventory/devices?group=canary", &user);
    assert_eq!(listed.header("x-total-count").as_deref(), Some("1"));
    let body = json!({"name": "canary roll", "artifact_name": "rel-g"});
    let empty = srv.send("POST", &format!("{DEPLOYMENTS}/group/nobody"), &user, &body);
    assert_eq!(empty.status, 400);
    let c = srv.send("POST", &format!("{DEPLOYMENTS}/group/canary"), &user, &body);
    assert_eq!(c.status, 201, "{}", c.text());
    let d = srv.get(&c.header("location").unwrap(), &user).json();
    assert_eq!(d["max_devices"], 1);
    assert_eq!(d["groups"], json!(["canary"]));
    assert_eq!(
        srv.send("POST", NEXT, &out_tok, &provides("old")).status,
        204
    );
    assert_eq!(
        srv.send("POST", NEXT, &in_tok, &provides("old")).status,
        200
    );
}

super::pg::on_postgres!(
    devices_with_each_key_type_are_admitted_only_once_accepted,
    preauthorized_devices_are_accepted_on_first_request,
    bad_auth_requests_are_refused_and_store_nothing,
    tokens_are_checked_for_kind_signature_and_expiry,
    malformed_and_oversized_bodies_are_refused,
    corrupt_uploads_are_refused_and_leave_nothing,
    a_deployment_runs_from_upload_to_statistics,
    aborted_deployments_answer_409_to_status_reports,
    a_device_type_without_artifact_gets_noartifact,
    sigterm_stops_the_server_cleanly_and_data_survives_restart,
    logout_revokes_the_user_token,
    group_deployments_reach_accepted_devices_of_the_group_only,
);
