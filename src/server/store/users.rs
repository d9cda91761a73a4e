//! Users of the management API: email and an argon2 password hash.

use rusqlite::{params, OptionalExtension};

use super::{Result, Store};

/// A stored user.
#[derive(Debug, Clone)]
pub struct User {
    /// User id.
    pub id: String,
    /// Login name (upstream calls it email).
    pub email: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// Creation, unix seconds.
    pub created_ts: i64,
}

impl Store {
    /// Creates or replaces the password of user `email`; returns the user id.
    pub fn upsert_user(&self, email: &str, password_hash: &str) -> Result<String> {
        let db = self.db();
        let id = super::super::ids::uuid_v4();
        db.execute(
            "INSERT INTO users(id, email, password_hash, created_ts) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(email) DO UPDATE SET password_hash=excluded.password_hash",
            params![id, email, password_hash, super::super::clock::unix_now()],
        )?;
        Ok(db.query_row("SELECT id FROM users WHERE email=?1", [email], |r| r.get(0))?)
    }

    /// Revokes the user token `jti` (valid until `exp`); expired entries are dropped.
    pub fn revoke_token(&self, jti: &str, exp: i64) -> Result<()> {
        let db = self.db();
        db.execute(
            "DELETE FROM revoked_tokens WHERE exp < ?1",
            [super::super::clock::unix_now()],
        )?;
        db.execute(
            "INSERT INTO revoked_tokens(jti, exp) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![jti, exp],
        )?;
        Ok(())
    }

    /// True when the user token `jti` was revoked.
    pub fn token_revoked(&self, jti: &str) -> Result<bool> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT 1 FROM revoked_tokens WHERE jti=?1")?;
        Ok(st.exists([jti])?)
    }

    /// The user with login `email`.
    pub fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.user_where("email", email)
    }

    /// The user with id `id`.
    pub fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        self.user_where("id", id)
    }

    fn user_where(&self, col: &str, v: &str) -> Result<Option<User>> {
        let sql = format!("SELECT id, email, password_hash, created_ts FROM users WHERE {col}=?1");
        Ok(self
            .db()
            .prepare_cached(&sql)?
            .query_row([v], |r| {
                Ok(User {
                    id: r.get(0)?,
                    email: r.get(1)?,
                    password_hash: r.get(2)?,
                    created_ts: r.get(3)?,
                })
            })
            .optional()?)
    }
}
