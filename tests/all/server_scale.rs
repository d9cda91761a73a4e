//! Scale-out: two servers on one PostgreSQL database and one S3 bucket act as one. A device
//! admitted through one is served by the other; keys, tokens, revocations, artifacts and
//! deployments are shared; devices polling both at once for one deployment are each assigned
//! exactly once.

use std::sync::{Arc, Barrier};

use serde_json::{json, Value};

use super::pg::TestDb;
use super::s3::{object_store, ObjectStore, SECRET_KEY};
use super::{artifact, http, Dev, Srv};

const NEXT: &str = "/api/devices/v1/deployments/device/deployments/next";
const DEPLOYMENTS: &str = "/api/management/v1/deployments/deployments";

fn start(db: &TestDb, storage: &str, env: &[(&str, &str)]) -> Srv {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    Srv::start_on(
        dir,
        data,
        Some(db.url.clone()),
        &["--storage", storage, "--rate-quota", "0"],
        env,
    )
}

#[test]
fn two_servers_on_one_database_and_bucket_serve_one_fleet() {
    let db = TestDb::new();
    let m = object_store();
    let storage = m.storage();
    let env = ObjectStore::env(SECRET_KEY);
    let tmp = tempfile::tempdir().unwrap();
    Srv::create_user(&tmp.path().join("setup"), Some(&db.url));
    let a = start(&db, &storage, &env);
    let b = start(&db, &storage, &env);
    let (ua, ub) = (a.login(), b.login());

    // Admission through b of a device that asks a; its token works on both.
    let dev = Dev::new("ec", "scale-0");
    assert_eq!(dev.auth(&a).status, 401);
    let id0 = b.accept(&ub, "scale-0");
    let tok = dev.auth(&a);
    assert_eq!(tok.status, 200, "{}", tok.text());
    let tok = tok.text();
    let probe = json!({"artifact_name": "old", "device_type": "scale-dev"});
    assert_eq!(b.send("POST", NEXT, &tok, &probe).status, 204);

    // Uploaded through a, listed by b, deployed through b, handed out by a from the bucket.
    let art = artifact(tmp.path(), "scale-rel", "scale-dev", 30000);
    let bytes = std::fs::read(&art).unwrap();
    let up = a.upload(&ua, &art);
    assert_eq!(up.status, 201, "{}", up.text());
    let listed = b
        .get("/api/management/v1/deployments/artifacts", &ub)
        .json();
    assert_eq!(listed[0]["name"], "scale-rel", "{listed}");

    let mut ids = vec![id0.clone()];
    let mut tokens = vec![tok.clone()];
    for i in 1..12 {
        let srv = if i % 2 == 0 { &a } else { &b };
        let (id, t) = Dev::new("ec", &format!("scale-{i}")).join(srv, &ub);
        ids.push(id);
        tokens.push(t);
    }
    let body = json!({"name": "wide", "artifact_name": "scale-rel", "devices": ids});
    let created = b.send("POST", DEPLOYMENTS, &ub, &body);
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(a.send("POST", DEPLOYMENTS, &ua, &body).status, 409);
    let dep = created.header("location").unwrap();

    // Every device polls both servers at the same moment.
    let srvs = Arc::new([a.url.clone(), b.url.clone()]);
    let start = Arc::new(Barrier::new(tokens.len() * 2));
    let answers: Vec<(u16, Value)> = tokens
        .iter()
        .flat_map(|t| [(t.clone(), 0), (t.clone(), 1)])
        .map(|(t, which)| {
            let (srvs, start, probe) = (srvs.clone(), start.clone(), probe.clone());
            std::thread::spawn(move || {
                start.wait();
                let body = serde_json::to_vec(&probe).unwrap();
                let r = http(
                    "POST",
                    &format!("{}{NEXT}", srvs[which]),
                    Some(&t),
                    &[("Content-Type", "application/json")],
                    Some(&body),
                );
                let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                (r.status, v)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for (status, v) in &answers {
        assert_eq!(*status, 200, "{v}");
    }
    let uri = answers[0].1["artifact"]["source"]["uri"].as_str().unwrap();
    assert!(uri.starts_with(&m.url), "not a bucket URL: {uri}");
    let part = http("GET", uri, None, &[("Range", "bytes=500-")], None);
    assert_eq!((part.status, &part.body[..]), (206, &bytes[500..]));

    let d = a.get(&dep, &ua).json();
    assert_eq!(d["device_count"], 12, "{d}");
    assert_eq!(d["statistics"]["total_size"], 12 * bytes.len(), "{d}");

    // Reports alternate between the servers; the statistics agree on both.
    let dep_id = dep.rsplit('/').next().unwrap();
    let status = format!("/api/devices/v1/deployments/device/deployments/{dep_id}/status");
    for (i, t) in tokens.iter().enumerate() {
        for (k, s) in ["downloading", "installing", "success"].iter().enumerate() {
            let srv = if (i + k) % 2 == 0 { &a } else { &b };
            let r = srv.send("PUT", &status, t, &json!({"status": s}));
            assert_eq!(r.status, 204, "{s}: {}", r.text());
        }
    }
    for (srv, u) in [(&a, &ua), (&b, &ub)] {
        let stats = srv.get(&format!("{dep}/statistics"), u).json();
        assert_eq!(stats["success"], 12, "{stats}");
        assert_eq!(srv.get(&dep, u).json()["status"], "finished");
    }

    // A logout on one server revokes the token on the other.
    let out = a.logout(&ua);
    assert_eq!(out.status, 202, "{}", out.text());
    assert_eq!(b.get(DEPLOYMENTS, &ua).status, 401);
}
