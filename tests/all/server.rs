//! mender-server: a harness that runs the built server on a free loopback port, an HTTP helper,
//! and simulated devices that sign their auth requests like the real client.

#[path = "server_api.rs"]
mod api;
#[path = "server_bench.rs"]
mod bench;
#[path = "server_cli.rs"]
mod cli;
#[path = "server_client.rs"]
mod client;
#[path = "server_pg.rs"]
pub mod pg;
#[path = "server_pgtls.rs"]
mod pgtls;
#[path = "server_s3.rs"]
mod s3;
#[path = "server_scale.rs"]
mod scale;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mender::crypto::{ecdsa_raw_to_der, KeyAlgorithm, SigningKey};
use serde_json::{json, Value};

pub const USER: &str = "admin@example.com";
pub const PASSWORD: &str = "correct-horse";

/// The built `mender-server`.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mender-server")
}

/// A running server; stopped with SIGTERM when dropped.
pub struct Srv {
    child: Child,
    pub url: String,
    pub data: PathBuf,
    /// `--database` given to it, if any (see `pg::on_postgres`).
    pub database: Option<String>,
    _dir: tempfile::TempDir,
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// One request; `token` goes in a Bearer header.
pub fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = match body {
        Some(b) => agent.run(req.body(b.to_vec()).unwrap()),
        None => agent.run(req.body(()).unwrap()),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

impl Srv {
    /// Starts a server with a user, on a fresh data directory, with extra `serve` flags.
    pub fn start(extra: &[&str]) -> Srv {
        Self::start_env(extra, &[])
    }

    /// As `start`, with extra environment variables for the server. The metadata goes to
    /// the test's PostgreSQL database when the test runs under `pg::on_postgres`.
    pub fn start_env(extra: &[&str], env: &[(&str, &str)]) -> Srv {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let database = pg::current();
        Self::create_user(&data, database.as_deref());
        Self::start_on(dir, data, database, extra, env)
    }

    /// Adds the test user to the store of a server on `data` and `database`.
    pub fn create_user(data: &Path, database: Option<&str>) {
        let mut cmd = Command::new(bin());
        cmd.args(["create-user", "--data", data.to_str().unwrap()])
            .args(["--username", USER, "--password", PASSWORD]);
        if let Some(db) = database {
            cmd.args(["--database", db]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts a server on `data` (in `dir`) and `database`.
    pub fn start_on(
        dir: tempfile::TempDir,
        data: PathBuf,
        database: Option<String>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Srv {
        let mut cmd = Command::new(bin());
        cmd.args(["serve", "--data", data.to_str().unwrap()]);
        if let Some(db) = &database {
            cmd.args(["--database", db]);
        }
        let mut child = cmd
            .envs(env.iter().copied())
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("mender-server: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Srv {
            child,
            url,
            data,
            database,
            _dir: dir,
        }
    }

    pub fn get(&self, path: &str, token: &str) -> Answer {
        http(
            "GET",
            &format!("{}{path}", self.url),
            Some(token),
            &[],
            None,
        )
    }

    /// A DELETE of `path`, without a body.
    pub fn delete(&self, path: &str, token: &str) -> Answer {
        http(
            "DELETE",
            &format!("{}{path}", self.url),
            Some(token),
            &[],
            None,
        )
    }

    /// Logs the user token `token` out.
    pub fn logout(&self, token: &str) -> Answer {
        http(
            "POST",
            &format!("{}/api/management/v1/useradm/auth/logout", self.url),
            Some(token),
            &[],
            None,
        )
    }

    pub fn send(&self, method: &str, path: &str, token: &str, body: &Value) -> Answer {
        let b = serde_json::to_vec(body).unwrap();
        http(
            method,
            &format!("{}{path}", self.url),
            Some(token),
            &[("Content-Type", "application/json")],
            Some(&b),
        )
    }

    /// Logs the user in; returns the token.
    pub fn login(&self) -> String {
        let basic = STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let a = http(
            "POST",
            &format!("{}/api/management/v1/useradm/auth/login", self.url),
            None,
            &[
                ("Authorization", &format!("Basic {basic}")),
                ("Content-Type", "application/json"),
            ],
            Some(b""),
        );
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.header("content-type").as_deref(), Some("application/jwt"));
        a.text()
    }

    /// The device with identity attribute `mac`, as the admission API lists it.
    pub fn device(&self, user: &str, mac: &str) -> Option<Value> {
        let a = self.get("/api/management/v2/devauth/devices?per_page=500", user);
        assert_eq!(a.status, 200, "{}", a.text());
        a.json()
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["identity_data"]["mac"] == mac)
            .cloned()
    }

    /// Accepts the (first) auth set of the device with `mac`; returns the device id.
    pub fn accept(&self, user: &str, mac: &str) -> String {
        let d = self.device(user, mac).expect("the device asked to join");
        let id = d["id"].as_str().unwrap().to_string();
        let aid = d["auth_sets"][0]["id"].as_str().unwrap();
        let a = self.send(
            "PUT",
            &format!("/api/management/v2/devauth/devices/{id}/auth/{aid}/status"),
            user,
            &json!({"status": "accepted"}),
        );
        assert_eq!(a.status, 204, "{}", a.text());
        id
    }

    /// Uploads the artifact at `path`; returns the answer.
    pub fn upload(&self, user: &str, path: &Path) -> Answer {
        let data = std::fs::read(path).unwrap();
        let boundary = "----mender-test-boundary";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"size\"\r\n\r\n{}\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\ntest\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"artifact\"; \
                 filename=\"a.mender\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                data.len()
            )
            .as_bytes(),
        );
        body.extend_from_slice(&data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        http(
            "POST",
            &format!("{}/api/management/v1/deployments/artifacts", self.url),
            Some(user),
            &[(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )],
            Some(&body),
        )
    }

    /// Stops this server and starts another on the same data with `extra` flags.
    pub fn restart(mut self, extra: &[&str]) -> Srv {
        assert_eq!(self.stop(), Some(0));
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        Self::start_on(dir, self.data.clone(), self.database.clone(), extra, &[])
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .ok();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Srv {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// A simulated device: a key and an identity, signing auth requests as the 3.4 client does.
pub struct Dev {
    pub key: SigningKey,
    pub pubkey: String,
    pub mac: String,
}

/// A private key made by openssl: `rsa`, `ec` or `ed25519`.
pub fn keygen(kind: &str) -> Vec<u8> {
    let args: &[&str] = match kind {
        "rsa" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "ec" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        _ => &["-algorithm", "ed25519"],
    };
    let out = Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .output()
        .expect("openssl is installed by scripts/test");
    assert!(out.status.success());
    out.stdout
}

impl Dev {
    pub fn new(kind: &str, mac: &str) -> Dev {
        let key = SigningKey::from_pem(&keygen(kind), None).unwrap();
        let pubkey = key.verifying_key().unwrap().to_spki_pem();
        Dev {
            key,
            pubkey,
            mac: mac.into(),
        }
    }

    /// The auth request body, as Go's encoder writes it (with the trailing newline).
    pub fn body(&self) -> Vec<u8> {
        let id_data = json!({"mac": self.mac, "serial": "s-1"}).to_string();
        let mut b = serde_json::to_vec(
            &json!({"id_data": id_data, "tenant_token": "", "pubkey": self.pubkey}),
        )
        .unwrap();
        b.push(b'\n');
        b
    }

    /// The `X-MEN-Signature` of `body` (DER for ECDSA, as the client sends).
    pub fn sign(&self, body: &[u8]) -> String {
        let mut sig = self.key.sign(body).unwrap();
        if self.key.algorithm() == KeyAlgorithm::EcdsaP256 {
            sig = ecdsa_raw_to_der(&sig[..].try_into().unwrap());
        }
        STANDARD.encode(sig)
    }

    /// Sends an auth request; returns the answer.
    pub fn auth(&self, srv: &Srv) -> Answer {
        let body = self.body();
        let sig = self.sign(&body);
        http(
            "POST",
            &format!("{}/api/devices/v1/authentication/auth_requests", srv.url),
            Some(""),
            &[
                ("Content-Type", "application/json"),
                ("X-MEN-Signature", &sig),
            ],
            Some(&body),
        )
    }

    /// Joins: asks, gets accepted by `user`, asks again; returns (device id, token).
    pub fn join(&self, srv: &Srv, user: &str) -> (String, String) {
        assert_eq!(self.auth(srv).status, 401);
        let id = srv.accept(user, &self.mac);
        let a = self.auth(srv);
        assert_eq!(a.status, 200, "{}", a.text());
        (id, a.text())
    }
}

/// `n` incompressible bytes (xorshift), so artifacts stay as large as their payload.
pub fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `artifact` with one byte flipped inside its compressed payload member.
pub fn corrupt(artifact: &[u8]) -> Vec<u8> {
    let name = b"data/0000.tar";
    let at = artifact
        .windows(name.len())
        .rposition(|w| w == name)
        .expect("a payload member");
    let mut bad = artifact.to_vec();
    // Past the member's tar header and the gzip header, inside the deflate stream.
    bad[at + 512 + 40] ^= 0xff;
    bad
}

/// Writes a single-file module-image artifact `name` for `device_type` with a payload of
/// `size` bytes into `dir`; returns its path.
pub fn artifact(dir: &Path, name: &str, device_type: &str, size: usize) -> PathBuf {
    let payload = dir.join(format!("{name}.payload"));
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&payload, data).unwrap();
    let out = dir.join(format!("{name}.mender"));
    crate::common::upstream_ma(
        dir,
        &[
            "write",
            "module-image",
            "-T",
            "single-file",
            "-n",
            name,
            "-t",
            device_type,
            "-f",
            payload.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    out
}
