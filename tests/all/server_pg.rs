//! PostgreSQL for the server tests: each test gets a database of its own on the server that
//! `scripts/test` installs and starts (`MENDER_TEST_POSTGRES`, default
//! `postgres://mender:mender@127.0.0.1:5432/postgres`, a role allowed to create databases),
//! dropped at the end. `on_postgres!` runs existing scenarios again with their servers on it.

use std::cell::RefCell;

thread_local! {
    static DATABASE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The database URL servers started on this thread use, if any.
pub fn current() -> Option<String> {
    DATABASE.with(|d| d.borrow().clone())
}

/// The URL of the maintenance database on the test PostgreSQL server.
pub fn admin_url() -> String {
    std::env::var("MENDER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://mender:mender@127.0.0.1:5432/postgres".into())
}

fn admin() -> postgres::Client {
    let url = admin_url();
    postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {url} ({e}); scripts/test installs and starts it, \
             or set MENDER_TEST_POSTGRES"
        )
    })
}

/// A fresh database, dropped (with any connections left) when this goes.
pub struct TestDb {
    name: String,
    /// Its URL.
    pub url: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        let name = format!(
            "mender_test_{}_{}",
            std::process::id(),
            &mender::server::ids::uuid_v4().replace('-', "")[..12]
        );
        admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let url = match admin_url().rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("MENDER_TEST_POSTGRES must end in /DBNAME"),
        };
        TestDb { name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = admin().batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Runs `f` with the servers it starts on a fresh PostgreSQL database.
pub fn with_database(f: impl FnOnce()) {
    let db = TestDb::new();
    DATABASE.with(|d| *d.borrow_mut() = Some(db.url.clone()));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    DATABASE.with(|d| *d.borrow_mut() = None);
    drop(db);
    if let Err(p) = out {
        std::panic::resume_unwind(p);
    }
}

/// `on_postgres!(a, b)` in a scenario module: tests `postgres::a` and `postgres::b` that run
/// scenarios `a` and `b` with their servers on PostgreSQL.
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[test]
                fn $name() {
                    crate::server::pg::with_database(super::$name);
                }
            )*
        }
    };
}
pub(crate) use on_postgres;
