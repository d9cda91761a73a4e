//! The `server_requests` entry point: one HTTP request decoded from the fuzz input, sent
//! through the server's whole router (extractors, handlers, store) against a server set up
//! once with an operator, an accepted device, an artifact and a deployment.
//!
//! Input layout: `route flags select param_len param[param_len] body...`
//!
//! * `route` indexes [`ROUTES`];
//! * `flags`: bits 0-1 the credentials (none, the device's token, the operator's token, a
//!   bearer made of the parameter), bit 2 another method (from `select`'s top bits), bits
//!   3-4 the Content-Type (the route's own, none, JSON, the parameter), bit 5 a `Range`
//!   header made of the parameter, bit 7 route-specific help: the auth request body is
//!   signed with the device key, the download link gets a valid signature;
//! * `select`: bits 0-1 which path parameters come from the fuzz parameter instead of the
//!   known ids (none, the first, the second, all), bits 2-3 the upload's framing (raw body,
//!   the body as the artifact part of a well-formed multipart form, the known artifact with
//!   the parameter as `artifact_id` and the body as description);
//! * the parameter is used, where the route has no use for it in the path, as the query
//!   string (or the Basic credentials of a login, the `X-MEN-Signature` of an unsigned auth
//!   request).
//!
//! Every answer must be on time, not a 5xx, and JSON where it says it is (error bodies
//! JSON objects).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use mender::crypto::SigningKey;
use mender::server::api::device_auth::canonical_identity;
use mender::server::api::users::hash_password;
use mender::server::app::{router, AppState, Peer};
use mender::server::clock;
use mender::server::token::Claims;
use mender::server::ServerConfig;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The routes the router serves, as (method, path template); `{x}` are path parameters.
/// Seeds in `scripts/fuzz` refer to these by index, so new routes go at the end.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/devices/v1/authentication/auth_requests"),
    ("GET", "/api/devices/v1/deployments/device/deployments/next"),
    (
        "POST",
        "/api/devices/v1/deployments/device/deployments/next",
    ),
    (
        "POST",
        "/api/devices/v2/deployments/device/deployments/next",
    ),
    (
        "PUT",
        "/api/devices/v1/deployments/device/deployments/{dep}/status",
    ),
    (
        "PUT",
        "/api/devices/v1/deployments/device/deployments/{dep}/log",
    ),
    ("PATCH", "/api/devices/v1/inventory/device/attributes"),
    ("PUT", "/api/devices/v1/inventory/device/attributes"),
    ("GET", "/api/devices/v1/deployments/download/{art}"),
    ("POST", "/api/management/v1/useradm/auth/login"),
    ("POST", "/api/management/v1/useradm/auth/logout"),
    ("GET", "/api/management/v1/useradm/users/me"),
    ("GET", "/api/management/v2/devauth/devices"),
    ("POST", "/api/management/v2/devauth/devices"),
    ("GET", "/api/management/v2/devauth/devices/count"),
    ("GET", "/api/management/v2/devauth/devices/{dev}"),
    ("DELETE", "/api/management/v2/devauth/devices/{dev}"),
    (
        "PUT",
        "/api/management/v2/devauth/devices/{dev}/auth/{aid}/status",
    ),
    (
        "GET",
        "/api/management/v2/devauth/devices/{dev}/auth/{aid}/status",
    ),
    (
        "DELETE",
        "/api/management/v2/devauth/devices/{dev}/auth/{aid}",
    ),
    ("POST", "/api/management/v1/deployments/artifacts"),
    ("GET", "/api/management/v1/deployments/artifacts"),
    ("GET", "/api/management/v1/deployments/artifacts/list"),
    ("GET", "/api/management/v1/deployments/artifacts/{art}"),
    ("PUT", "/api/management/v1/deployments/artifacts/{art}"),
    ("DELETE", "/api/management/v1/deployments/artifacts/{art}"),
    (
        "GET",
        "/api/management/v1/deployments/artifacts/{art}/download",
    ),
    ("GET", "/api/management/v1/deployments/deployments"),
    ("POST", "/api/management/v1/deployments/deployments"),
    (
        "POST",
        "/api/management/v1/deployments/deployments/group/{grp}",
    ),
    ("GET", "/api/management/v1/deployments/deployments/{dep}"),
    (
        "GET",
        "/api/management/v1/deployments/deployments/{dep}/statistics",
    ),
    (
        "PUT",
        "/api/management/v1/deployments/deployments/{dep}/status",
    ),
    (
        "GET",
        "/api/management/v1/deployments/deployments/{dep}/devices",
    ),
    (
        "GET",
        "/api/management/v1/deployments/deployments/{dep}/devices/{dev}/log",
    ),
    ("GET", "/api/management/v1/inventory/devices"),
    ("GET", "/api/management/v1/inventory/devices/{dev}"),
    ("GET", "/api/management/v1/inventory/devices/{dev}/group"),
    ("PUT", "/api/management/v1/inventory/devices/{dev}/group"),
    (
        "DELETE",
        "/api/management/v1/inventory/devices/{dev}/group/{grp}",
    ),
    ("GET", "/api/management/v1/inventory/groups"),
    ("DELETE", "/api/management/v1/inventory/groups/{grp}"),
    ("GET", "/api/management/v1/inventory/groups/{grp}/devices"),
    ("PATCH", "/api/management/v1/inventory/groups/{grp}/devices"),
    (
        "DELETE",
        "/api/management/v1/inventory/groups/{grp}/devices",
    ),
    ("GET", "/api/{any}"),
];

const METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::TRACE,
];

const USER: &str = "fuzz@example.com";
const PASSWORD: &str = "fuzz-password";
/// The known artifact and its id (a fixed id, so it can be uploaded again once deleted).
const ARTIFACT: &[u8] = include_bytes!("../tests/fixtures/upstream/module-image.mender");
const ARTIFACT_ID: &str = "0f0f0f0f-0000-4000-8000-000000000001";
const DEVICE_KEY: &[u8] = include_bytes!("../tests/fixtures/keys/ecdsa-p256.pem");
const GROUP: &str = "fuzz-group";
const BOUNDARY: &str = "fuzzboundary";
/// Largest response body read; more is a finding.
const BODY_CAP: usize = 16 << 20;
/// Longest a request may take; more is a finding.
const DEADLINE: Duration = Duration::from_secs(2);

/// The accepted device: replaced when a request decommissions or rejects it.
#[derive(Clone)]
struct Device {
    id: String,
    auth_set: String,
    token: String,
}

struct Server {
    rt: tokio::runtime::Runtime,
    state: Arc<AppState>,
    app: Router,
    key: SigningKey,
    user_id: String,
    user_token: String,
    device: Mutex<Device>,
    deployment: String,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> Server {
    // On tmpfs where there is one: the requests write to the database and the artifacts.
    let shm = std::path::Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    // Runs end by `exit`, which drops no statics: clear what runs that are gone left behind.
    if std::path::Path::new("/proc/self").is_dir() {
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("mender-fuzz-server-") {
                if !std::path::Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
    let dir = tmp.join(format!("mender-fuzz-server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = ServerConfig::new(dir);
    config.rate_quota = 0;
    config.max_artifact_size = 1 << 20;
    let state = Arc::new(AppState::open(config, "http://fuzz.invalid".into()).expect("state"));
    let user_id = state
        .store
        .upsert_user(USER, &hash_password(PASSWORD))
        .expect("operator");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let app = router(state.clone());
    let key = SigningKey::from_pem(DEVICE_KEY, None).expect("device key");
    let user_token = user_token(&state, &user_id, "fuzz-operator");
    let mut s = Server {
        rt,
        device: Mutex::new(enroll(&state, &key)),
        state,
        app,
        key,
        user_id,
        user_token,
        deployment: String::new(),
    };
    s.ensure_artifact();
    let create = json!({
        "name": "fuzz", "artifact_name": "module-1.0", "devices": [s.device().id],
    });
    let (status, location) = s.call(
        Method::POST,
        "/api/management/v1/deployments/deployments",
        Some(&s.user_token),
        "application/json",
        create.to_string().into_bytes(),
    );
    assert_eq!(status, StatusCode::CREATED, "creating the deployment");
    s.deployment = location.rsplit('/').next().unwrap_or_default().to_string();
    s
}

fn user_token(state: &AppState, user_id: &str, jti: &str) -> String {
    let now = clock::unix_now();
    state.tokens.sign(&Claims {
        jti: jti.into(),
        sub: user_id.into(),
        iss: "mender.useradm".into(),
        exp: now + 3600 * 24 * 365,
        iat: now,
        device: false,
        user: true,
    })
}

/// Makes the device with the fixed identity accepted and gives it a token.
fn enroll(state: &AppState, key: &SigningKey) -> Device {
    let pubkey = key.verifying_key().expect("public key").to_spki_pem();
    let (identity, hash) = canonical_identity(&json!({"mac": "02:00:00:00:00:01"})).unwrap();
    let mut out = state.store.auth_request(&hash, &identity, &pubkey).unwrap();
    if out.status != "accepted"
        && state
            .store
            .set_auth_status(&out.device_id, &out.auth_set_id, "accepted")
            .unwrap()
            .is_err()
    {
        // A transition the store refuses (from rejected, say): start the device afresh.
        state.store.decommission(&out.device_id).unwrap();
        out = state.store.auth_request(&hash, &identity, &pubkey).unwrap();
        state
            .store
            .set_auth_status(&out.device_id, &out.auth_set_id, "accepted")
            .unwrap()
            .expect("accepting a new device");
    }
    let now = clock::unix_now();
    let token = state.tokens.sign(&Claims {
        jti: out.auth_set_id.clone(),
        sub: out.device_id.clone(),
        iss: "Mender".into(),
        exp: now + 3600 * 24 * 365,
        iat: now,
        device: true,
        user: false,
    });
    Device {
        id: out.device_id,
        auth_set: out.auth_set_id,
        token,
    }
}

impl Server {
    fn device(&self) -> Device {
        self.device
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts back what earlier requests may have taken away: the device's acceptance and the
    /// known artifact.
    fn restore(&self) {
        let d = self.device();
        if !self.state.store.token_valid(&d.id, &d.auth_set).unwrap() {
            *self.device.lock().unwrap_or_else(|e| e.into_inner()) = enroll(&self.state, &self.key);
        }
        self.ensure_artifact();
    }

    fn ensure_artifact(&self) {
        if self.state.store.artifact(ARTIFACT_ID).unwrap().is_some() {
            return;
        }
        let body = multipart(&[
            ("artifact_id", ARTIFACT_ID.as_bytes()),
            ("artifact", ARTIFACT),
        ]);
        let (status, _) = self.call(
            Method::POST,
            "/api/management/v1/deployments/artifacts",
            Some(&self.user_token),
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            body,
        );
        assert_eq!(status, StatusCode::CREATED, "uploading the known artifact");
    }

    /// A set-up request; the status and the `Location` header.
    fn call(
        &self,
        method: Method,
        uri: &str,
        bearer: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type);
        if let Some(t) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let mut req = req.body(Body::from(body)).unwrap();
        req.extensions_mut().insert(peer());
        let resp = self.send(req).0;
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (resp.status(), location)
    }

    /// Sends `req` through the router on the runtime and reads the answer, within the
    /// deadline and the body cap.
    fn send(&self, req: Request<Body>) -> (axum::http::Response<()>, Vec<u8>) {
        let what = format!("{} {}", req.method(), req.uri());
        let app = self.app.clone();
        let task = self.rt.spawn(async move {
            let resp = app.oneshot(req).await.expect("the router is infallible");
            let (parts, body) = resp.into_parts();
            let body = axum::body::to_bytes(body, BODY_CAP).await;
            (parts, body)
        });
        let joined = self
            .rt
            .block_on(async { tokio::time::timeout(DEADLINE, task).await });
        let (parts, body) = match joined {
            Err(_) => panic!("hang: {what} took longer than {DEADLINE:?}"),
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(Err(e)) => panic!("{what}: {e}"),
            Ok(Ok(r)) => r,
        };
        let body = body.unwrap_or_else(|e| panic!("{what}: reading the response body: {e}"));
        (axum::http::Response::from_parts(parts, ()), body.to_vec())
    }
}

fn peer() -> ConnectInfo<Peer> {
    ConnectInfo(Peer(SocketAddr::from(([127, 0, 0, 1], 40000))))
}

/// A well-formed multipart/form-data body with `fields` in order.
fn multipart(fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, value) in fields {
        b.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        b.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n")
                .as_bytes(),
        );
        b.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        b.extend_from_slice(value);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// `s` with everything but unreserved characters (and, in a query, its delimiters)
/// percent-encoded.
fn encode(s: &[u8], query: bool) -> String {
    let mut out = String::new();
    for &c in s {
        let keep = c.is_ascii_alphanumeric()
            || b"-._~".contains(&c)
            || (query && b"=&+,:;!*'()/?@$".contains(&c));
        if keep {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Decodes and sends one request; panics on any answer the server must never give.
pub fn server_requests(data: &[u8]) {
    let [route, flags, select, len, rest @ ..] = data else {
        return;
    };
    let (param, body) = rest.split_at((*len as usize).min(rest.len()));
    let (route_method, template) = ROUTES[*route as usize % ROUTES.len()];
    let s = server();
    s.restore();
    let device = s.device();

    // The path, its parameters from the known ids or from the fuzz parameter.
    let mut path = String::new();
    let mut param_in_path = false;
    let mut text_param = String::new();
    for (i, piece) in template.split('{').enumerate() {
        let (name, tail) = match piece.split_once('}') {
            Some((name, tail)) if i > 0 => (name, tail),
            _ => ("", piece),
        };
        if !name.is_empty() {
            let fuzzed = match select & 3 {
                0 => name == "any",
                1 => i == 1 || name == "any",
                2 => i == 2 || name == "any",
                _ => true,
            };
            if fuzzed {
                param_in_path = true;
                text_param = String::from_utf8_lossy(param).into_owned();
                path.push_str(&encode(param, false));
            } else {
                path.push_str(match name {
                    "dev" => &device.id,
                    "aid" => &device.auth_set,
                    "art" => ARTIFACT_ID,
                    "dep" => &s.deployment,
                    _ => GROUP,
                });
            }
        }
        path.push_str(tail);
    }
    let download = template.ends_with("/download/{art}");
    let mut uri = path.clone();
    if download && flags & 0x80 != 0 {
        let id = if param_in_path {
            text_param.as_str()
        } else {
            ARTIFACT_ID
        };
        let signed = format!("/api/devices/v1/deployments/download/{id}");
        let query = s.state.links.query(&signed, clock::unix_now() + 3600);
        uri = format!("{path}?{query}");
    } else if !param_in_path && !param.is_empty() {
        uri = format!("{path}?{}", encode(param, true));
    }

    let method = if flags & 4 != 0 {
        METHODS[(*select >> 5) as usize].clone()
    } else {
        Method::from_bytes(route_method.as_bytes()).unwrap()
    };
    let mut req = Request::builder().method(method.clone()).uri(&uri);

    let login = template.ends_with("/auth/login");
    let auth_request = template.ends_with("/auth_requests");
    let upload = route_method == "POST" && template.ends_with("/deployments/artifacts");
    let auth = match flags & 3 {
        0 => None,
        _ if login => Some(format!("Basic {}", B64.encode(param))),
        1 => Some(format!("Bearer {}", device.token)),
        2 if template.ends_with("/logout") => {
            // Logging out revokes the token: give that request a token of its own.
            let jti = mender::server::ids::uuid_v4();
            Some(format!("Bearer {}", user_token(&s.state, &s.user_id, &jti)))
        }
        2 => Some(format!("Bearer {}", s.user_token)),
        _ => Some(format!("Bearer {}", String::from_utf8_lossy(param))),
    };
    if let Some(a) = auth.and_then(|a| HeaderValue::from_str(&a).ok()) {
        req = req.header(header::AUTHORIZATION, a);
    }

    let mut body = body.to_vec();
    let mut content_type = if upload {
        format!("multipart/form-data; boundary={BOUNDARY}")
    } else {
        "application/json".to_string()
    };
    if upload {
        match (select >> 2) & 3 {
            1 => body = multipart(&[("artifact", &body)]),
            2 | 3 => {
                body = multipart(&[
                    ("artifact_id", param),
                    ("description", &body),
                    ("artifact", ARTIFACT),
                ])
            }
            _ => {}
        }
    }
    if auth_request {
        let signature = if flags & 0x80 != 0 {
            B64.encode(s.key.sign(&body).expect("signing"))
        } else {
            String::from_utf8_lossy(param).into_owned()
        };
        if let Ok(v) = HeaderValue::from_str(&signature) {
            req = req.header("X-MEN-Signature", v);
        }
    }
    match (flags >> 3) & 3 {
        0 => {}
        1 => content_type.clear(),
        2 => content_type = "application/json; charset=utf-8".into(),
        _ => content_type = String::from_utf8_lossy(param).into_owned(),
    }
    if !content_type.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&content_type) {
            req = req.header(header::CONTENT_TYPE, v);
        }
    }
    if flags & 0x20 != 0 {
        if let Ok(v) = HeaderValue::from_bytes(param) {
            req = req.header(header::RANGE, v);
        }
    }
    let Ok(mut req) = req.body(Body::from(body)) else {
        return;
    };
    req.extensions_mut().insert(peer());

    let what = format!("{method} {uri}");
    let (resp, body) = s.send(req);
    let status = resp.status();
    assert!(
        !status.is_server_error(),
        "{what}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if json && !body.is_empty() {
        let v: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{what}: {status}: a JSON answer that is not JSON: {e}"));
        // Errors are objects: mostly `{"error": ...}`, some (a preauthorization conflict)
        // the conflicting record, as upstream answers.
        if status.is_client_error() {
            assert!(
                v.is_object(),
                "{what}: {status}: a JSON error that is not an object: {v}"
            );
        }
    }
}
