//! The two database backends behind one small interface: statements written once with `?N`
//! placeholders and portable SQL, run in a transaction by [`Store::write`] or outside one by
//! [`Store::read`], their rows returned as owned values.
//!
//! SQLite is one connection behind a lock. PostgreSQL is a pool of connections, each with its
//! own cache of prepared statements; writes run at SERIALIZABLE isolation and are retried when
//! PostgreSQL reports a serialization failure or deadlock, so several servers can share one
//! database with the same outcome as one server on SQLite.

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{GenericClient, IsolationLevel, Statement};

use super::pgtls::PgTls;
use super::pgurl;
use super::{pg_message, Result, StoreError};

/// A column value or statement argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// NULL.
    Null,
    /// An integer (booleans are 0 and 1).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Int(v as i64)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}
impl From<&[u8]> for Val {
    fn from(v: &[u8]) -> Val {
        Val::Blob(v.to_vec())
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

/// Statement arguments: `args![a, b]`.
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$($crate::server::store::db::Val::from($a)),*][..] };
}
pub(crate) use args;

/// A value read from a column.
pub trait FromVal: Sized {
    /// Converts `v`, or says why not.
    fn from_val(v: &Val) -> std::result::Result<Self, String>;
}

impl FromVal for i64 {
    fn from_val(v: &Val) -> std::result::Result<Self, String> {
        match v {
            Val::Int(i) => Ok(*i),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}
impl FromVal for bool {
    fn from_val(v: &Val) -> std::result::Result<Self, String> {
        i64::from_val(v).map(|i| i != 0)
    }
}
impl FromVal for String {
    fn from_val(v: &Val) -> std::result::Result<Self, String> {
        match v {
            Val::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}
impl FromVal for Vec<u8> {
    fn from_val(v: &Val) -> std::result::Result<Self, String> {
        match v {
            Val::Blob(b) => Ok(b.clone()),
            Val::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}
impl<T: FromVal> FromVal for Option<T> {
    fn from_val(v: &Val) -> std::result::Result<Self, String> {
        match v {
            Val::Null => Ok(None),
            v => T::from_val(v).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(Vec<Val>);

impl Row {
    /// Column `i` as a `T`.
    pub fn get<T: FromVal>(&self, i: usize) -> Result<T> {
        let v = self
            .0
            .get(i)
            .ok_or_else(|| StoreError::Column(format!("no column {i}")))?;
        T::from_val(v).map_err(|e| StoreError::Column(format!("column {i}: {e}")))
    }
}

/// The backend a statement runs on, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Runs statements: a transaction for [`Store::write`], or plain statements for reads.
pub trait Db {
    /// Runs a statement; returns the number of rows it changed.
    fn exec(&mut self, sql: &str, args: &[Val]) -> Result<u64>;
    /// Runs a query; returns every row.
    fn rows(&mut self, sql: &str, args: &[Val]) -> Result<Vec<Row>>;
    /// Runs statements separated by `;`, without arguments (migrations).
    fn batch(&mut self, sql: &str) -> Result<()>;
    /// Which backend this is.
    fn dialect(&self) -> Dialect;
}

impl dyn Db + '_ {
    /// The first row, if any.
    pub fn row(&mut self, sql: &str, args: &[Val]) -> Result<Option<Row>> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }

    /// Column 0 of the first row, if any.
    pub fn opt<T: FromVal>(&mut self, sql: &str, args: &[Val]) -> Result<Option<T>> {
        self.row(sql, args)?.map(|r| r.get(0)).transpose()
    }

    /// Column 0 of the first row, which must exist.
    pub fn one<T: FromVal>(&mut self, sql: &str, args: &[Val]) -> Result<T> {
        self.opt(sql, args)?
            .ok_or_else(|| StoreError::Column("query returned no row".into()))
    }

    /// True when the query returns a row.
    pub fn exists(&mut self, sql: &str, args: &[Val]) -> Result<bool> {
        Ok(self.row(sql, args)?.is_some())
    }

    /// Column 0 of every row.
    pub fn col<T: FromVal>(&mut self, sql: &str, args: &[Val]) -> Result<Vec<T>> {
        self.rows(sql, args)?.iter().map(|r| r.get(0)).collect()
    }
}

// ---- SQLite ----

struct Sqlite<'a>(&'a rusqlite::Connection);

impl rusqlite::types::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Val::Null => ValueRef::Null,
            Val::Int(i) => ValueRef::Integer(*i),
            Val::Text(s) => ValueRef::Text(s.as_bytes()),
            Val::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn sqlite_val(v: rusqlite::types::ValueRef<'_>) -> Val {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        ValueRef::Real(f) => Val::Int(f as i64),
        ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Val::Blob(b.to_vec()),
    }
}

impl Db for Sqlite<'_> {
    fn exec(&mut self, sql: &str, args: &[Val]) -> Result<u64> {
        let mut st = self.0.prepare_cached(sql)?;
        Ok(st.execute(rusqlite::params_from_iter(args))? as u64)
    }

    fn rows(&mut self, sql: &str, args: &[Val]) -> Result<Vec<Row>> {
        let mut st = self.0.prepare_cached(sql)?;
        let n = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(Row((0..n)
                .map(|i| r.get_ref(i).map(sqlite_val))
                .collect::<rusqlite::Result<_>>()?));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.0.execute_batch(sql)?)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
}

// ---- PostgreSQL ----

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self, ty) {
            (Val::Null, _) => return Ok(IsNull::Yes),
            (Val::Int(i), &Type::INT8) => i.to_sql(ty, out)?,
            (Val::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out)?,
            (Val::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out)?,
            (Val::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out)?,
            (Val::Int(i), _) => i.to_string().to_sql(ty, out)?,
            (Val::Text(s), _) => s.to_sql(ty, out)?,
            (Val::Blob(b), _) => b.to_sql(ty, out)?,
        };
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for Val {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Val, Box<dyn std::error::Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => Val::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Val::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Val::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Val::Int(bool::from_sql(ty, raw)?.into()),
            Type::BYTEA => Val::Blob(raw.to_vec()),
            _ => Val::Text(String::from_utf8(raw.to_vec())?),
        })
    }

    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Val, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Val::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A pooled PostgreSQL connection with the statements prepared on it.
pub struct PgConn {
    client: postgres::Client,
    prepared: HashMap<String, Statement>,
}

/// Makes and checks pooled connections.
pub struct PgManager(postgres::Config, PgTls);

impl r2d2::ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.0.connect(self.1.clone())?,
            prepared: HashMap::new(),
        })
    }

    fn is_valid(&self, c: &mut PgConn) -> std::result::Result<(), postgres::Error> {
        c.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, c: &mut PgConn) -> bool {
        c.client.is_closed()
    }
}

/// `?N` placeholders as PostgreSQL's `$N`.
fn pg_sql(sql: &str) -> String {
    sql.replace('?', "$")
}

struct Pg<'a, C: GenericClient> {
    client: &'a mut C,
    prepared: &'a mut HashMap<String, Statement>,
}

impl<C: GenericClient> Pg<'_, C> {
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(st) = self.prepared.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(&pg_sql(sql))?;
        self.prepared.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    fn params(args: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
        args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
    }
}

impl<C: GenericClient> Db for Pg<'_, C> {
    fn exec(&mut self, sql: &str, args: &[Val]) -> Result<u64> {
        let st = self.statement(sql)?;
        Ok(self.client.execute(&st, &Self::params(args))?)
    }

    fn rows(&mut self, sql: &str, args: &[Val]) -> Result<Vec<Row>> {
        let st = self.statement(sql)?;
        let rows = self.client.query(&st, &Self::params(args))?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.try_get::<_, Val>(i))
                    .collect::<std::result::Result<_, _>>()
                    .map(Row)
                    .map_err(StoreError::from)
            })
            .collect()
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.client.batch_execute(sql)?)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}

/// How many lost connections a statement moves past: every pooled one, and a new one.
const LOST_RETRIES: u32 = super::PG_POOL_SIZE + 1;

/// True when the connection itself is gone: closed, or ended by the server (restarted or
/// shut down), so that the same statements on a new connection may well succeed.
fn connection_lost(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.is_closed()
        || e.code().is_some_and(|c| {
            *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        })
}

/// True for errors after which a transaction is worth running again.
fn retryable(e: &StoreError) -> bool {
    use postgres::error::SqlState;
    match e {
        StoreError::Pg(e) => e.code().is_some_and(|c| {
            *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
        }),
        _ => false,
    }
}

// ---- The backend ----

/// An open database.
pub enum Backend {
    /// One SQLite connection.
    Sqlite(Mutex<rusqlite::Connection>),
    /// A pool of PostgreSQL connections.
    Postgres(PgPool),
}

/// The pool; dropped on a thread of its own, as each connection owns a small runtime that
/// must not be dropped inside the server's.
pub struct PgPool(Option<r2d2::Pool<PgManager>>);

impl Drop for PgPool {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

impl Backend {
    /// Opens the SQLite database at `path` (WAL mode).
    pub fn sqlite(path: &std::path::Path) -> Result<Backend> {
        let conn = rusqlite::Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;
             PRAGMA busy_timeout=5000;",
        )?;
        Ok(Backend::Sqlite(Mutex::new(conn)))
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user:pass@host/db`, or
    /// key=value form) with a pool of up to `size` connections.
    pub fn postgres(url: &str, size: u32) -> Result<Backend> {
        off_runtime(|| Self::connect_postgres(url, size))
    }

    fn connect_postgres(url: &str, size: u32) -> Result<Backend> {
        // libpq's sslmode and sslrootcert, which the driver does not know, taken out first.
        let tls_error = |e: String| StoreError::Connect(format!("{}: {e}", redact(url)));
        let (driver_url, tls) = pgurl::split_url(url).map_err(tls_error)?;
        let tls = PgTls::new(&tls).map_err(tls_error)?;
        let mut config: postgres::Config = driver_url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Url(format!("{}: {e}", redact(url))))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // One connection first, for a precise error (the pool only reports a timeout).
        config
            .connect(tls.clone())
            .map_err(|e| StoreError::Connect(format!("{}: {}", redact(url), pg_message(&e))))?;
        let pool = r2d2::Pool::builder()
            .max_size(size.max(1))
            .min_idle(Some(1))
            // A closed connection is noticed when it is handed back (and the statement run
            // again), so no round trip is spent checking each one out.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(PgManager(config, tls))
            .map_err(|e| StoreError::Connect(format!("{}: {}", redact(url), pool_error(&e))))?;
        Ok(Backend::Postgres(PgPool(Some(pool))))
    }

    fn lock(m: &Mutex<rusqlite::Connection>) -> MutexGuard<'_, rusqlite::Connection> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pg(pool: &PgPool) -> Result<r2d2::PooledConnection<PgManager>> {
        pool.0
            .as_ref()
            .expect("the pool lives until drop")
            .get()
            .map_err(|e| StoreError::Connect(pool_error(&e).to_string()))
    }

    /// Runs `f` outside a transaction (SQLite: under the lock).
    /// On PostgreSQL a read that finds its pooled connection closed (the database restarted)
    /// is run again on another (each pooled connection may have been closed).
    pub fn read<T: Send>(&self, mut f: impl FnMut(&mut dyn Db) -> Result<T> + Send) -> Result<T> {
        match self {
            Backend::Sqlite(m) => f(&mut Sqlite(&Self::lock(m))),
            Backend::Postgres(pool) => off_runtime(|| {
                let mut attempt = 0;
                loop {
                    let mut c = Self::pg(pool)?;
                    let c = &mut *c;
                    let out = f(&mut Pg {
                        client: &mut c.client,
                        prepared: &mut c.prepared,
                    });
                    match out {
                        Err(StoreError::Pg(e)) if connection_lost(&e) && attempt < LOST_RETRIES => {
                            attempt += 1
                        }
                        other => return other,
                    }
                }
            }),
        }
    }

    /// Runs `f` in a transaction, committed when it returns `Ok`. On PostgreSQL the
    /// transaction is SERIALIZABLE and run again (up to 20 times) when it loses a race.
    pub fn write<T: Send>(&self, f: impl FnMut(&mut dyn Db) -> Result<T> + Send) -> Result<T> {
        self.write_at(IsolationLevel::Serializable, f)
    }

    /// As `write`, at isolation `level` on PostgreSQL: READ COMMITTED for changes that only
    /// touch rows of their own and read nothing they depend on (a device's inventory).
    pub fn write_at<T: Send>(
        &self,
        level: IsolationLevel,
        mut f: impl FnMut(&mut dyn Db) -> Result<T> + Send,
    ) -> Result<T> {
        match self {
            Backend::Sqlite(m) => {
                let mut c = Self::lock(m);
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let out = f(&mut Sqlite(&tx))?;
                tx.commit()?;
                Ok(out)
            }
            Backend::Postgres(pool) => off_runtime(|| {
                let (mut attempt, mut reconnected) = (0, 0);
                loop {
                    let mut c = Self::pg(pool)?;
                    let c = &mut *c;
                    let tx = c.client.build_transaction().isolation_level(level).start();
                    let mut tx = match tx {
                        // Nothing was sent yet: a connection the database closed is replaced.
                        Err(e) if connection_lost(&e) && reconnected < LOST_RETRIES => {
                            reconnected += 1;
                            continue;
                        }
                        other => other?,
                    };
                    let run = || -> Result<T> {
                        let out = f(&mut Pg {
                            client: &mut tx,
                            prepared: &mut c.prepared,
                        })?;
                        tx.commit()?;
                        Ok(out)
                    };
                    match run() {
                        Err(e) if attempt < 20 && retryable(&e) => {
                            attempt += 1;
                            std::thread::sleep(Duration::from_millis(
                                (1u64 << attempt.min(6)) + fastrand_jitter(),
                            ));
                        }
                        other => return other,
                    }
                }
            }),
        }
    }

    /// Which backend this is.
    pub fn dialect(&self) -> Dialect {
        match self {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// A few milliseconds of jitter so that retried transactions do not collide again.
fn fastrand_jitter() -> u64 {
    u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            % 5,
    )
}

/// The root cause of a pool error (r2d2 only says it timed out).
fn pool_error(e: &r2d2::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s = x.to_string();
        src = x.source();
    }
    s
}

/// `url` with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    if url.contains("://") {
        let mut out = match pgurl::url_parts(url).creds {
            Some((start, at)) => match url[start..at].split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..start], &url[at..]),
                None => url.to_string(),
            },
            None => url.to_string(),
        };
        // A password among the parameters too.
        let mut from = 0;
        while let Some(i) = out[from..].find("password=").map(|i| from + i) {
            let value = i + "password=".len();
            let end = out[value..].find('&').map_or(out.len(), |e| value + e);
            if i > 0 && matches!(out.as_bytes()[i - 1], b'?' | b'&') {
                out.replace_range(value..end, "***");
            }
            from = value;
        }
        return out;
    }
    url.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the blocking `f` so that it does not stall the async runtime it may be called from:
/// on a multi-threaded runtime the worker hands its tasks over first; on a current-thread one
/// `f` runs on a thread of its own. (The PostgreSQL client runs a runtime of its own, which
/// must not be entered from inside another.)
fn off_runtime<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| {
            s.spawn(f)
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        }),
        Err(_) => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(pg_sql("a=?1 AND b=?12"), "a=$1 AND b=$12");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://mender:s3cret@db:5432/mender"),
            "postgres://mender:***@db:5432/mender"
        );
        assert_eq!(
            redact("host=db user=m password=x dbname=y"),
            "host=db user=m password=*** dbname=y"
        );
        assert_eq!(redact("postgres://db/mender"), "postgres://db/mender");
        assert_eq!(
            redact("postgres://m:x@db/y?sslmode=verify-full&sslrootcert=/etc/a@b/ca.pem"),
            "postgres://m:***@db/y?sslmode=verify-full&sslrootcert=/etc/a@b/ca.pem"
        );
        assert_eq!(
            redact("postgresql://db/y?sslrootcert=/c@a.pem&password=x"),
            "postgresql://db/y?sslrootcert=/c@a.pem&password=***"
        );
        assert_eq!(
            redact("postgres://u:p@ss/w@db/y?password=a&x=1"),
            "postgres://u:***@db/y?password=***&x=1"
        );
    }

    #[test]
    fn values_convert() {
        assert_eq!(Val::from(Some("a")), Val::Text("a".into()));
        assert_eq!(Val::from(None::<i64>), Val::Null);
        assert!(bool::from_val(&Val::Int(1)).unwrap());
        assert_eq!(Option::<i64>::from_val(&Val::Null).unwrap(), None);
        assert!(i64::from_val(&Val::Text("x".into())).is_err());
    }
}
