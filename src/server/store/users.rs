//! Users of the management API: email and an argon2 password hash.

use super::db::args;
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
        self.write(|db| {
            let id = super::super::ids::uuid_v4();
            db.exec(
                "INSERT INTO users(id, email, password_hash, created_ts) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(email) DO UPDATE SET password_hash=excluded.password_hash",
                args![id, email, password_hash, super::super::clock::unix_now()],
            )?;
            db.one("SELECT id FROM users WHERE email=?1", args![email])
        })
    }

    /// Revokes the user token `jti` (valid until `exp`); expired entries are dropped.
    pub fn revoke_token(&self, jti: &str, exp: i64) -> Result<()> {
        self.write(|db| {
            db.exec(
                "DELETE FROM revoked_tokens WHERE exp < ?1",
                args![super::super::clock::unix_now()],
            )?;
            db.exec(
                "INSERT INTO revoked_tokens(jti, exp) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                args![jti, exp],
            )?;
            Ok(())
        })
    }

    /// True when the user token `jti` was revoked.
    pub fn token_revoked(&self, jti: &str) -> Result<bool> {
        self.read(|db| db.exists("SELECT 1 FROM revoked_tokens WHERE jti=?1", args![jti]))
    }

    /// The user with login `email`.
    pub fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.user_where(
            "SELECT id, email, password_hash, created_ts FROM users WHERE email=?1",
            email,
        )
    }

    /// The user with id `id`.
    pub fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        self.user_where(
            "SELECT id, email, password_hash, created_ts FROM users WHERE id=?1",
            id,
        )
    }

    fn user_where(&self, sql: &str, v: &str) -> Result<Option<User>> {
        let Some(r) = self.read(|db| db.row(sql, args![v]))? else {
            return Ok(None);
        };
        Ok(Some(User {
            id: r.get(0)?,
            email: r.get(1)?,
            password_hash: r.get(2)?,
            created_ts: r.get(3)?,
        }))
    }
}
