//! mender-server on PostgreSQL over TLS: a private PostgreSQL instance (run as `postgres`)
//! with a test CA's certificate for `localhost` that accepts TCP connections only over TLS,
//! and password (SCRAM) authentication, which then also binds to the TLS channel.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{bin, Srv};

const ROLE: &str = "mender_tls";
const ROLE_PASSWORD: &str = "tls-secret";

/// The newest installed PostgreSQL's binaries.
fn pg_bin() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server binaries under {} (scripts/test installs Debian's postgresql)",
            root.display()
        ),
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn as_postgres(program: &Path) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(program);
    cmd
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

/// A CA (`NAME.pem`, `NAME.key`).
fn make_ca(dir: &Path, name: &str) {
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &format!("/CN=Test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A running private PostgreSQL instance; stopped when dropped.
struct Instance {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Instance {
    fn start() -> Instance {
        let bin = pg_bin();
        let dir = tempfile::tempdir().unwrap();
        let d = &dir.path().to_path_buf();
        make_ca(d, "ca");
        make_ca(d, "other-ca");
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(d));
        run(Command::new("chmod").arg("0600").arg(d.join("server.key")));
        run(Command::new("chmod").arg("0700").arg(d));

        let data = d.join("pgdata");
        run(as_postgres(&bin.join("initdb"))
            .args(["-U", "postgres", "--auth=trust", "-D"])
            .arg(&data));
        // Over TCP only TLS, with a password; the Unix socket (for setting up) trusts.
        std::fs::write(
            data.join("pg_hba.conf"),
            format!("local all postgres trust\nhostssl all {ROLE} 127.0.0.1/32 scram-sha-256\n"),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let instance = Instance { bin, dir, port };
        instance.pg_ctl("start", "on");

        let mut admin = instance.admin();
        for sql in [
            format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{ROLE_PASSWORD}'"),
            format!("CREATE DATABASE mender OWNER {ROLE}"),
        ] {
            admin.batch_execute(&sql).unwrap();
        }
        instance
    }

    /// `pg_ctl start` or `restart` with `ssl` on or off.
    fn pg_ctl(&self, action: &str, ssl: &str) {
        let d = self.dir.path();
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={dir} \
             -c ssl={ssl} -c ssl_cert_file={dir}/server.pem -c ssl_key_file={dir}/server.key",
            port = self.port,
            dir = d.display()
        );
        run(as_postgres(&self.bin.join("pg_ctl"))
            .args([action, "-w", "-D"])
            .arg(d.join("pgdata"))
            .arg("-l")
            .arg(d.join("log"))
            .args(["-o", &options]));
    }

    fn restart_without_tls(&self) {
        self.pg_ctl("restart", "off");
    }

    /// A superuser connection over the Unix socket.
    fn admin(&self) -> postgres::Client {
        postgres::Config::new()
            .host_path(self.dir.path())
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect(postgres::NoTls)
            .unwrap()
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The database's URL on `host` with `params`.
    fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgres://{ROLE}:{ROLE_PASSWORD}@{host}:{}/mender?{params}",
            self.port
        )
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.dir.path().join("pgdata"))
            .output();
    }
}

/// `mender-server create-user` on `url`: its stderr when it fails.
fn create_user(url: &str, user: &str) -> Result<(), String> {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["create-user", "--data"])
        .arg(data.path())
        .args([
            "--username",
            user,
            "--password",
            "password-1",
            "--database",
            url,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if out.status.success() {
        Ok(())
    } else {
        assert!(!err.contains(ROLE_PASSWORD), "password shown: {err}");
        assert_eq!(err.lines().count(), 1, "not one line: {err}");
        Err(err)
    }
}

fn fails(url: &str, expected: &str) {
    match create_user(url, "nobody@example.com") {
        Ok(()) => panic!("{url} worked"),
        Err(e) => assert!(e.contains(expected), "{url}: {e:?} lacks {expected:?}"),
    }
}

#[test]
fn connections_are_encrypted_and_checked_as_sslmode_says() {
    let pg = Instance::start();
    let ca = pg.path("ca.pem");
    let full = |host: &str| {
        pg.url(
            host,
            &format!("sslmode=verify-full&sslrootcert={ca}&channel_binding=require"),
        )
    };

    // The chain and the name check out (and SCRAM binds to the channel).
    create_user(&full("localhost"), "full@example.com").unwrap();
    // The name is not in the certificate.
    fails(
        &full("127.0.0.1"),
        "certificate not valid for name \"127.0.0.1\"",
    );
    // verify-ca does not look at the name.
    create_user(
        &pg.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")),
        "ca@example.com",
    )
    .unwrap();
    // The test CA is not among the webpki roots.
    fails(
        &pg.url("localhost", "sslmode=verify-full"),
        "invalid peer certificate: UnknownIssuer",
    );
    // require checks nothing without sslrootcert, and the chain with it.
    create_user(&pg.url("127.0.0.1", "sslmode=require"), "req@example.com").unwrap();
    let other = pg.path("other-ca.pem");
    fails(
        &pg.url("127.0.0.1", &format!("sslmode=require&sslrootcert={other}")),
        "UnknownIssuer",
    );
    // The default, prefer, encrypts: the server allows nothing else.
    create_user(&pg.url("127.0.0.1", ""), "prefer@example.com").unwrap();
    // Without TLS PostgreSQL itself says no.
    fails(
        &pg.url("127.0.0.1", "sslmode=disable"),
        "no pg_hba.conf entry for host \"127.0.0.1\"",
    );
    // A missing roots file is named.
    let missing = pg.path("missing.pem");
    fails(
        &pg.url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={missing}"),
        ),
        &format!("sslrootcert {missing}: No such file"),
    );
    fails(
        &pg.url("localhost", "sslmode=verify"),
        "invalid sslmode \"verify\"",
    );

    // A server's pool works over TLS.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = full("localhost");
    Srv::create_user(&data, Some(&url));
    let srv = Srv::start_on(dir, data, Some(url), &[], &[]);
    let token = srv.login();
    let a = srv.get("/api/management/v2/devauth/devices", &token);
    assert_eq!(a.status, 200, "{}", a.text());
    // The database restarts under the running server: its pooled connections are gone, and
    // the next requests, reads and writes, go through on new ones.
    pg.pg_ctl("restart", "on");
    let again = srv.login();
    let a = srv.get("/api/management/v2/devauth/devices", &again);
    assert_eq!(a.status, 200, "{}", a.text());
    pg.pg_ctl("restart", "on");
    let out = srv.logout(&again);
    assert_eq!(out.status, 202, "{}", out.text());
    drop(srv);

    // A server without TLS, and verify-full insists.
    pg.restart_without_tls();
    fails(&full("localhost"), "server does not support TLS");
}
