//! The load generator behind `bench/server.sh` (ignored in normal runs): seeds N accepted
//! devices through the real API, then has many connections poll `next` and send inventory for
//! a fixed time, and reports throughput, latency percentiles and the server's memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;

use super::Srv;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections_per_host(4)
        .build()
        .into()
}

/// Preauthorizes a fresh ed25519 device `i` and authenticates it; returns its token.
fn seed(agent: &ureq::Agent, url: &str, user: &str, i: usize) -> String {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let mut spki = hex::decode("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(key.public_key().as_ref());
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(&spki)
    );
    let mac = format!("02:00:{:08x}", i);
    let pre = json!({"identity_data": {"mac": mac}, "pubkey": pem});
    let r = agent
        .post(format!("{url}/api/management/v2/devauth/devices"))
        .header("Authorization", format!("Bearer {user}"))
        .send(&serde_json::to_vec(&pre).unwrap()[..])
        .unwrap();
    assert_eq!(r.status(), 201);
    let id_data = json!({"mac": mac}).to_string();
    let mut body =
        serde_json::to_vec(&json!({"id_data": id_data, "tenant_token": "", "pubkey": pem}))
            .unwrap();
    body.push(b'\n');
    let sig = STANDARD.encode(key.sign(&body).as_ref());
    let mut r = agent
        .post(format!("{url}/api/devices/v1/authentication/auth_requests"))
        .header("X-MEN-Signature", sig)
        .header("Content-Type", "application/json")
        .send(&body[..])
        .unwrap();
    assert_eq!(r.status(), 200);
    r.body_mut().read_to_string().unwrap()
}

fn bytes(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "load benchmark: run bench/server.sh"]
fn load() {
    match std::env::var("BENCH_DATABASE").as_deref() {
        Ok("postgres") => {
            println!("database: PostgreSQL ({})", super::pg::admin_url());
            super::pg::with_database(run)
        }
        _ => {
            println!("database: SQLite");
            run()
        }
    }
}

fn run() {
    let devices = env("BENCH_DEVICES", 100_000);
    let seconds = env("BENCH_SECONDS", 20) as u64;
    let conns = env("BENCH_CONNECTIONS", 32);
    let inventory_every = env("BENCH_INVENTORY_EVERY", 10);
    // Seeding makes one user preauthorize every device: no quota for that part.
    let srv = Srv::start(&["--rate-quota", "0"]);
    let user = srv.login();
    let url = srv.url.clone();

    let t0 = Instant::now();
    let next_i = Arc::new(AtomicUsize::new(0));
    let tokens: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..conns)
            .map(|_| {
                let (url, user, next_i) = (&url, &user, Arc::clone(&next_i));
                s.spawn(move || {
                    let a = agent();
                    let mut out = Vec::new();
                    loop {
                        let i = next_i.fetch_add(1, Ordering::Relaxed);
                        if i >= devices {
                            break out;
                        }
                        out.push(seed(&a, url, user, i));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let seed_secs = t0.elapsed().as_secs_f64();
    println!(
        "seeded {} accepted devices in {seed_secs:.1} s ({:.0} devices/s: preauthorize + signed auth request each)",
        tokens.len(),
        tokens.len() as f64 / seed_secs
    );

    // The load runs against a restarted server with the default quota.
    let srv = srv.restart(&[]);
    let url = srv.url.clone();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let results: Vec<(Vec<u32>, Vec<u32>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..conns)
            .map(|c| {
                let (url, tokens) = (&url, &tokens);
                s.spawn(move || {
                    let a = agent();
                    let (mut next, mut inv, mut errors) = (Vec::new(), Vec::new(), 0usize);
                    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (c as u64 + 1);
                    let mut n = 0usize;
                    while Instant::now() < deadline {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let tok = &tokens[(x % tokens.len() as u64) as usize];
                        let t = Instant::now();
                        n += 1;
                        let is_inv = inventory_every > 0 && n % inventory_every == 0;
                        let r = if is_inv {
                            a.put(format!("{url}/api/devices/v1/inventory/device/attributes"))
                                .header("Authorization", format!("Bearer {tok}"))
                                .send(
                                    &bytes(json!([
                                        {"name": "device_type", "value": "bench-dev"},
                                        {"name": "artifact_name", "value": "bench-1"},
                                        {"name": "mender_client_version", "value": "3.4.0"},
                                        {"name": "kernel", "value": "6.1.0"},
                                        {"name": "ipv4_eth0", "value": ["192.0.2.1/24"]},
                                        {"name": "mem_total_kB", "value": 1_000_000},
                                    ]))[..],
                                )
                        } else {
                            a.post(format!(
                                "{url}/api/devices/v1/deployments/device/deployments/next"
                            ))
                            .header("Authorization", format!("Bearer {tok}"))
                            .send(
                                &bytes(json!({
                                    "artifact_name": "bench-1", "device_type": "bench-dev",
                                    "rootfs-image.version": "bench-1",
                                }))[..],
                            )
                        };
                        let us = t.elapsed().as_micros() as u32;
                        match r {
                            Ok(resp) if resp.status() == 204 || resp.status() == 200 => {
                                if is_inv {
                                    inv.push(us)
                                } else {
                                    next.push(us)
                                }
                            }
                            _ => errors += 1,
                        }
                    }
                    (next, inv, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut next: Vec<u32> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    let mut inv: Vec<u32> = results.iter().flat_map(|r| r.1.iter().copied()).collect();
    let errors: usize = results.iter().map(|r| r.2).sum();
    next.sort_unstable();
    inv.sort_unstable();
    let pid = srv.pid();
    println!(
        "load: {conns} connections, {seconds} s, {} devices, one inventory PUT per {inventory_every} requests",
        tokens.len()
    );
    println!(
        "next:      {:>8} requests {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms",
        next.len(),
        next.len() as f64 / elapsed,
        percentile(&next, 0.50),
        percentile(&next, 0.99)
    );
    println!(
        "inventory: {:>8} requests {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms",
        inv.len(),
        inv.len() as f64 / elapsed,
        percentile(&inv, 0.50),
        percentile(&inv, 0.99)
    );
    println!(
        "errors: {errors}; server RSS {} MiB now, peak {} MiB; database {} MiB",
        rss_kib(pid, "VmRSS:") / 1024,
        rss_kib(pid, "VmHWM:") / 1024,
        database_mib(&srv)
    );
    assert_eq!(errors, 0, "requests failed under load");
}

/// Size of the server's database, MiB.
fn database_mib(srv: &Srv) -> u64 {
    match &srv.database {
        Some(url) => {
            let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
            let row = c
                .query_one("SELECT pg_database_size(current_database())", &[])
                .unwrap();
            row.get::<_, i64>(0) as u64 >> 20
        }
        None => std::fs::metadata(srv.data.join("server.db"))
            .map(|m| m.len() >> 20)
            .unwrap_or(0),
    }
}
