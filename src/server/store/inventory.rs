//! Device inventory: attributes reported by devices (scope `inventory`) and static groups.

use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use super::super::clock;
use super::{Result, Store};

/// One inventory attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Name.
    pub name: String,
    /// A string, a number, or an array of them.
    pub value: Value,
    /// Optional description.
    pub description: Option<String>,
}

/// A device id and its static group.
pub type DeviceGroup = (String, Option<String>);

impl Store {
    /// Stores attributes reported by `device_id`. `replace` drops the attributes not in
    /// `attrs` (PUT); otherwise they are merged in (PATCH). Unchanged values are not rewritten.
    pub fn put_inventory(&self, device_id: &str, attrs: &[Attribute], replace: bool) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let now = clock::unix_now();
        if replace {
            let names: Vec<&str> = attrs.iter().map(|a| a.name.as_str()).collect();
            let keep = serde_json::to_string(&names)?;
            tx.execute(
                "DELETE FROM inventory WHERE device_id=?1
                 AND name NOT IN (SELECT value FROM json_each(?2))",
                params![device_id, keep],
            )?;
        }
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO inventory(device_id, name, value, description, ts)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(device_id, name) DO UPDATE
                 SET value=excluded.value, description=excluded.description, ts=excluded.ts
                 WHERE value IS NOT excluded.value OR description IS NOT excluded.description",
            )?;
            for a in attrs {
                st.execute(params![
                    device_id,
                    a.name,
                    serde_json::to_string(&a.value)?,
                    a.description,
                    now
                ])?;
            }
        }
        tx.execute(
            "UPDATE devices SET inventory_ts=?2 WHERE id=?1",
            params![device_id, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The inventory attributes of `device_id`, by name.
    pub fn inventory(&self, device_id: &str) -> Result<Vec<(Attribute, i64)>> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT name, value, description, ts FROM inventory WHERE device_id=?1 ORDER BY name",
        )?;
        let rows = st.query_map([device_id], |r| {
            let v: String = r.get(1)?;
            Ok((
                Attribute {
                    name: r.get(0)?,
                    value: serde_json::from_str(&v).unwrap_or(Value::Null),
                    description: r.get(2)?,
                },
                r.get(3)?,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Ids of devices (newest inventory last), filtered by group and inventory attribute
    /// equality; with the total count.
    pub fn inventory_device_ids(
        &self,
        group: Option<&str>,
        has_group: Option<bool>,
        attrs: &[(String, String)],
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<DeviceGroup>, i64)> {
        let db = self.db();
        let mut conds = vec!["1=1".to_string()];
        let mut args: Vec<String> = Vec::new();
        if let Some(g) = group {
            args.push(g.into());
            conds.push(format!("d.grp = ?{}", args.len()));
        }
        match has_group {
            Some(true) => conds.push("d.grp IS NOT NULL".into()),
            Some(false) => conds.push("d.grp IS NULL".into()),
            None => {}
        }
        for (name, value) in attrs {
            args.push(name.clone());
            let n = args.len();
            args.push(value.clone());
            conds.push(format!(
                "EXISTS (SELECT 1 FROM inventory i WHERE i.device_id=d.id AND i.name=?{n} \
                 AND (i.value = json_quote(?{}) OR i.value = ?{}))",
                n + 1,
                n + 1
            ));
        }
        let cond = conds.join(" AND ");
        let total: i64 = db.query_row(
            &format!("SELECT COUNT(*) FROM devices d WHERE {cond}"),
            rusqlite::params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        let mut st = db.prepare(&format!(
            "SELECT d.id, d.grp FROM devices d WHERE {cond} ORDER BY d.created_ts, d.id \
             LIMIT {limit} OFFSET {offset}"
        ))?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok((rows.collect::<rusqlite::Result<_>>()?, total))
    }

    /// Puts `device_id` in static group `group` (or none); false if there is no such device.
    pub fn set_group(&self, device_id: &str, group: Option<&str>) -> Result<bool> {
        Ok(self.db().execute(
            "UPDATE devices SET grp=?2 WHERE id=?1",
            params![device_id, group],
        )? > 0)
    }

    /// The static group of `device_id`, if any.
    pub fn device_group(&self, device_id: &str) -> Result<Option<String>> {
        Ok(self
            .db()
            .query_row("SELECT grp FROM devices WHERE id=?1", [device_id], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()?
            .flatten())
    }

    /// Puts the existing devices among `ids` in `group`: (matched, changed).
    pub fn add_to_group(&self, ids: &[String], group: &str) -> Result<(u64, u64)> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let (mut matched, mut changed) = (0, 0);
        for id in ids {
            let had: Option<Option<String>> = tx
                .query_row("SELECT grp FROM devices WHERE id=?1", [id], |r| r.get(0))
                .optional()?;
            if let Some(had) = had {
                matched += 1;
                if had.as_deref() != Some(group) {
                    tx.execute("UPDATE devices SET grp=?2 WHERE id=?1", params![id, group])?;
                    changed += 1;
                }
            }
        }
        tx.commit()?;
        Ok((matched, changed))
    }

    /// Takes the devices among `ids` (all of the group when None) out of `group`; returns how
    /// many changed.
    pub fn remove_from_group(&self, ids: Option<&[String]>, group: &str) -> Result<u64> {
        let db = self.db();
        Ok(match ids {
            None => db.execute("UPDATE devices SET grp=NULL WHERE grp=?1", [group])?,
            Some(ids) => {
                let mut n = 0;
                for id in ids {
                    n += db.execute(
                        "UPDATE devices SET grp=NULL WHERE id=?1 AND grp=?2",
                        params![id, group],
                    )?;
                }
                n
            }
        } as u64)
    }

    /// Accepted devices in static group `group`.
    pub fn accepted_in_group(&self, group: &str) -> Result<Vec<String>> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT d.id FROM devices d WHERE d.grp=?1 AND EXISTS (SELECT 1 FROM auth_sets a \
             WHERE a.device_id=d.id AND a.status='accepted') ORDER BY d.id",
        )?;
        let rows = st.query_map([group], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Names of all static groups in use.
    pub fn groups(&self) -> Result<Vec<String>> {
        let db = self.db();
        let mut st =
            db.prepare("SELECT DISTINCT grp FROM devices WHERE grp IS NOT NULL ORDER BY grp")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
