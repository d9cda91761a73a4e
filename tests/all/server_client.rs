//! The real Debian `mender` 3.4 daemon against mender-server, in a private mount namespace:
//! it authenticates, gets accepted, reports inventory, polls, downloads an artifact through a
//! proxy that cuts the first download (so it resumes with Range), installs it with the
//! `single-file` update module and reports success.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Srv;

/// Forwards connections to a target set later; cuts the first response after `cut` bytes
/// (also set later).
/// Records each request head.
struct CuttingProxy {
    port: u16,
    target: Arc<Mutex<Option<String>>>,
    requests: Arc<Mutex<Vec<String>>>,
    cut: Arc<AtomicUsize>,
}

fn pipe(mut from: TcpStream, mut to: TcpStream, limit: Option<usize>) {
    let mut buf = [0u8; 16384];
    let mut sent = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let n = limit.map_or(n, |l| n.min(l - sent));
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n;
        if limit.is_some_and(|l| sent >= l) {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl CuttingProxy {
    fn start() -> CuttingProxy {
        let cut = Arc::new(AtomicUsize::new(usize::MAX));
        let cut_at = Arc::clone(&cut);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target: Arc<Mutex<Option<String>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (t, r) = (Arc::clone(&target), Arc::clone(&requests));
        std::thread::spawn(move || {
            for (i, conn) in listener.incoming().take(50).enumerate() {
                let Ok(mut client) = conn else { continue };
                let Some(addr) = t.lock().unwrap().clone() else {
                    continue;
                };
                let Ok(mut upstream) = TcpStream::connect(addr) else {
                    continue;
                };
                // Read the request head, remember it, pass it on.
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && client.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                r.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                if upstream.write_all(&head).is_err() {
                    continue;
                }
                let limit = (i == 0).then(|| cut_at.load(Ordering::SeqCst));
                let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                std::thread::spawn(move || pipe(c2, u2, None));
                std::thread::spawn(move || pipe(upstream, client, limit));
            }
        });
        CuttingProxy {
            port,
            target,
            requests,
            cut,
        }
    }
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let mut p = std::fs::metadata(path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
    std::fs::set_permissions(path, p).unwrap();
}

#[test]
fn the_real_mender_client_installs_a_deployment_and_resumes_a_cut_download() {
    assert!(
        Path::new("/usr/bin/mender").exists()
            && Path::new("/usr/share/mender/modules/v3/single-file").exists(),
        "mender-client is not installed: run scripts/test"
    );
    let gen = "/usr/share/doc/mender-client/examples/single-file-artifact-gen";
    let proxy = CuttingProxy::start();
    let external = format!("http://127.0.0.1:{}", proxy.port);
    let srv = Srv::start(&["--external-url", &external]);
    *proxy.target.lock().unwrap() = Some(srv.url.trim_start_matches("http://").to_string());
    let user = srv.login();

    // The artifact: a 2 MiB file for the single-file module, installed into `out`.
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    for d in [
        "etc",
        "data",
        "share/identity",
        "share/inventory",
        "share/modules/v3",
        "out",
        "build",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let payload = super::noise(2 << 20);
    let payload_path = root.join("build/payload.bin");
    std::fs::write(&payload_path, &payload).unwrap();
    let art = root.join("build/rel-client.mender");
    let out = Command::new(gen)
        .args(["-n", "rel-client", "-t", "sandbox-dev", "-d"])
        .arg(root.join("out"))
        .arg("-o")
        .arg(&art)
        .arg(&payload_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let up = srv.upload(&user, &art);
    assert_eq!(up.status, 201, "{}", up.text());
    let size = std::fs::metadata(&art).unwrap().len() as usize;
    assert!(size > 2 << 20, "artifact of {size} bytes");
    proxy.cut.store(size / 3, Ordering::SeqCst);

    // The sandbox (section 5.4 of the server spec).
    let conf = json!({
        "ServerURL": srv.url, "UpdatePollIntervalSeconds": 3,
        "InventoryPollIntervalSeconds": 3, "RetryPollIntervalSeconds": 3,
        "DBus": {"Enabled": false}, "DaemonLogLevel": "debug",
    });
    std::fs::write(root.join("etc/mender.conf"), conf.to_string()).unwrap();
    std::fs::write(root.join("etc/none.conf"), "{}").unwrap();
    std::fs::write(
        root.join("etc/artifact_info"),
        "artifact_name=initial-art\n",
    )
    .unwrap();
    std::fs::write(root.join("data/device_type"), "device_type=sandbox-dev\n").unwrap();
    write_exec(
        &root.join("share/identity/mender-device-identity"),
        "#!/bin/sh\necho mac=02:00:00:00:00:42\n",
    );
    write_exec(
        &root.join("share/inventory/mender-inventory-test"),
        "#!/bin/sh\necho sandbox=yes\n",
    );
    let r = root.display();
    let script = format!(
        "set -e; mount --bind {r}/etc /etc/mender; \
         mount --bind /usr/share/mender/modules/v3 {r}/share/modules/v3; \
         mount --rbind {r}/share /usr/share/mender; \
         exec mender --no-syslog --log-level debug --config {r}/etc/mender.conf \
         --fallback-config {r}/etc/none.conf --data {r}/data daemon"
    );
    let log = std::fs::File::create(root.join("client.log")).unwrap();
    let mut client = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let client_log = || std::fs::read_to_string(root.join("client.log")).unwrap_or_default();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mac = "02:00:00:00:00:42";
        wait_for("the device to ask to join", 60, || srv.device(&user, mac));
        let id = srv.accept(&user, mac);
        // Inventory arrives once the device is in.
        wait_for("inventory", 60, || {
            let inv = srv.get(&format!("/api/management/v1/inventory/devices/{id}"), &user);
            let attrs = inv.json()["attributes"].clone();
            attrs.as_array().and_then(|a| {
                a.iter()
                    .any(|x| x["name"] == "sandbox" && x["scope"] == "inventory")
                    .then_some(())
            })
        });
        let c = srv.send(
            "POST",
            "/api/management/v1/deployments/deployments",
            &user,
            &json!({"name": "to-client", "artifact_name": "rel-client", "devices": [id]}),
        );
        assert_eq!(c.status, 201, "{}", c.text());
        let dep = c.header("location").unwrap();
        // The client waits at least a minute before resuming a cut download.
        let stats = wait_for("the deployment to finish", 300, || {
            let d = srv.get(&dep, &user).json();
            (d["status"] == "finished").then(|| d["statistics"]["status"].clone())
        });
        assert_eq!(stats["success"], 1, "{stats}");
        assert_eq!(stats["failure"], 0);
        assert_eq!(stats["pending"], 0);
        let installed = std::fs::read(root.join("out/payload.bin")).unwrap();
        assert!(
            installed == payload,
            "installed file differs from the payload"
        );
        let heads = proxy.requests.lock().unwrap().clone();
        assert!(heads.len() >= 2, "the download was not resumed: {heads:?}");
        assert!(
            heads[1..]
                .iter()
                .any(|h| h.to_ascii_lowercase().contains("range: bytes=")),
            "no Range request after the cut: {heads:?}"
        );
        // After the install the device reports the new artifact and gets nothing more.
        wait_for("the new artifact_name in inventory", 60, || {
            let inv = srv.get(&format!("/api/management/v1/inventory/devices/{id}"), &user);
            inv.json()["attributes"].as_array().and_then(|a| {
                a.iter()
                    .any(|x| x["name"] == "artifact_name" && x["value"] == "rel-client")
                    .then_some(())
            })
        });
    }));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(client.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = client.wait();
    if let Err(e) = result {
        eprintln!("--- mender client log ---\n{}", client_log());
        std::panic::resume_unwind(e);
    }
}

super::pg::on_postgres!(the_real_mender_client_installs_a_deployment_and_resumes_a_cut_download);
