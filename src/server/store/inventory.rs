//! Device inventory: attributes reported by devices (scope `inventory`) and static groups.

use serde_json::Value;

use super::super::clock;
use super::db::{args, Dialect, Val};
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
        // The last value of a name counts (one statement may not change a row twice).
        let mut seen = std::collections::HashSet::new();
        let mut rows: Vec<&Attribute> = attrs
            .iter()
            .rev()
            .filter(|a| seen.insert(&a.name))
            .collect();
        rows.reverse();
        let now = clock::unix_now();
        // Up to 100 attributes a statement, well within both databases' argument limits.
        let mut upserts = Vec::new();
        for chunk in rows.chunks(100) {
            let mut vals: Vec<Val> = vec![device_id.into(), now.into()];
            let mut tuples = Vec::new();
            for a in chunk {
                let i = vals.len();
                vals.push(Val::from(&a.name));
                vals.push(serde_json::to_string(&a.value)?.into());
                vals.push(a.description.as_deref().into());
                tuples.push(format!("(?1, ?{}, ?{}, ?{}, ?2)", i + 1, i + 2, i + 3));
            }
            let sql = format!(
                "INSERT INTO inventory(device_id, name, value, description, ts) VALUES {}
                 ON CONFLICT(device_id, name) DO UPDATE
                 SET value=excluded.value, description=excluded.description, ts=excluded.ts
                 WHERE inventory.value IS DISTINCT FROM excluded.value
                 OR inventory.description IS DISTINCT FROM excluded.description",
                tuples.join(", ")
            );
            upserts.push((sql, vals));
        }
        self.db
            .write_at(postgres::IsolationLevel::ReadCommitted, |db| {
                if db.dialect() == Dialect::Postgres {
                    // Devices send their inventory again and again: a crash of the database
                    // may lose its last moments rather than each request wait for a flush.
                    db.exec("SET LOCAL synchronous_commit TO OFF", &[])?;
                }
                if replace {
                    let have: Vec<String> = db.col(
                        "SELECT name FROM inventory WHERE device_id=?1",
                        args![device_id],
                    )?;
                    for name in have.iter().filter(|n| !seen.contains(n)) {
                        db.exec(
                            "DELETE FROM inventory WHERE device_id=?1 AND name=?2",
                            args![device_id, name],
                        )?;
                    }
                }
                for (sql, vals) in &upserts {
                    db.exec(sql, vals)?;
                }
                db.exec(
                    "UPDATE devices SET inventory_ts=?2 WHERE id=?1",
                    args![device_id, now],
                )?;
                Ok(())
            })
    }

    /// The inventory attributes of `device_id`, by name.
    pub fn inventory(&self, device_id: &str) -> Result<Vec<(Attribute, i64)>> {
        let rows = self.read(|db| {
            db.rows(
                "SELECT name, value, description, ts FROM inventory WHERE device_id=?1 \
                 ORDER BY name",
                args![device_id],
            )
        })?;
        rows.iter()
            .map(|r| {
                let v: String = r.get(1)?;
                Ok((
                    Attribute {
                        name: r.get(0)?,
                        value: serde_json::from_str(&v).unwrap_or(Value::Null),
                        description: r.get(2)?,
                    },
                    r.get(3)?,
                ))
            })
            .collect()
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
        let mut conds = vec!["1=1".to_string()];
        let mut vals: Vec<Val> = Vec::new();
        if let Some(g) = group {
            vals.push(g.into());
            conds.push(format!("d.grp = ?{}", vals.len()));
        }
        match has_group {
            Some(true) => conds.push("d.grp IS NOT NULL".into()),
            Some(false) => conds.push("d.grp IS NULL".into()),
            None => {}
        }
        for (name, value) in attrs {
            // Stored values are JSON: a string matches its quoted form, a number its digits.
            vals.push(name.into());
            vals.push(Value::String(value.clone()).to_string().into());
            vals.push(value.into());
            let n = vals.len();
            conds.push(format!(
                "EXISTS (SELECT 1 FROM inventory i WHERE i.device_id=d.id AND i.name=?{} \
                 AND (i.value = ?{} OR i.value = ?{n}))",
                n - 2,
                n - 1
            ));
        }
        let cond = conds.join(" AND ");
        let count = format!("SELECT COUNT(*) FROM devices d WHERE {cond}");
        let list = format!(
            "SELECT d.id, d.grp FROM devices d WHERE {cond} ORDER BY d.created_ts, d.id \
             LIMIT {limit} OFFSET {offset}"
        );
        self.read(|db| {
            let total: i64 = db.one(&count, &vals)?;
            let rows = db
                .rows(&list, &vals)?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect::<Result<_>>()?;
            Ok((rows, total))
        })
    }

    /// Puts `device_id` in static group `group` (or none); false if there is no such device.
    pub fn set_group(&self, device_id: &str, group: Option<&str>) -> Result<bool> {
        self.write(|db| {
            db.exec(
                "UPDATE devices SET grp=?2 WHERE id=?1",
                args![device_id, group],
            )
        })
        .map(|n| n > 0)
    }

    /// The static group of `device_id`, if any.
    pub fn device_group(&self, device_id: &str) -> Result<Option<String>> {
        self.read(|db| db.opt("SELECT grp FROM devices WHERE id=?1", args![device_id]))
            .map(Option::flatten)
    }

    /// Puts the existing devices among `ids` in `group`: (matched, changed).
    pub fn add_to_group(&self, ids: &[String], group: &str) -> Result<(u64, u64)> {
        self.write(|db| {
            let (mut matched, mut changed) = (0, 0);
            for id in ids {
                let had: Option<Option<String>> =
                    db.opt("SELECT grp FROM devices WHERE id=?1", args![id])?;
                if let Some(had) = had {
                    matched += 1;
                    if had.as_deref() != Some(group) {
                        db.exec("UPDATE devices SET grp=?2 WHERE id=?1", args![id, group])?;
                        changed += 1;
                    }
                }
            }
            Ok((matched, changed))
        })
    }

    /// Takes the devices among `ids` (all of the group when None) out of `group`; returns how
    /// many changed.
    pub fn remove_from_group(&self, ids: Option<&[String]>, group: &str) -> Result<u64> {
        self.write(|db| match ids {
            None => db.exec("UPDATE devices SET grp=NULL WHERE grp=?1", args![group]),
            Some(ids) => {
                let mut n = 0;
                for id in ids {
                    n += db.exec(
                        "UPDATE devices SET grp=NULL WHERE id=?1 AND grp=?2",
                        args![id, group],
                    )?;
                }
                Ok(n)
            }
        })
    }

    /// Accepted devices in static group `group`.
    pub fn accepted_in_group(&self, group: &str) -> Result<Vec<String>> {
        self.read(|db| {
            db.col(
                "SELECT d.id FROM devices d WHERE d.grp=?1 AND EXISTS (SELECT 1 FROM auth_sets a \
                 WHERE a.device_id=d.id AND a.status='accepted') ORDER BY d.id",
                args![group],
            )
        })
    }

    /// Names of all static groups in use.
    pub fn groups(&self) -> Result<Vec<String>> {
        self.read(|db| {
            db.col(
                "SELECT DISTINCT grp FROM devices WHERE grp IS NOT NULL ORDER BY grp",
                &[],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(name: &str, value: Value) -> Attribute {
        Attribute {
            name: name.into(),
            value,
            description: None,
        }
    }

    fn names(s: &Store, id: &str) -> Vec<(String, Value)> {
        s.inventory(id)
            .unwrap()
            .into_iter()
            .map(|(a, _)| (a.name, a.value))
            .collect()
    }

    #[test]
    fn put_replaces_patch_merges_and_the_last_duplicate_wins() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        let id = s.auth_request("h", "{}", "k").unwrap().device_id;
        let many: Vec<Attribute> = (0..250)
            .map(|i| attr(&format!("a{i:03}"), Value::from(i)))
            .collect();
        s.put_inventory(&id, &many, true).unwrap();
        assert_eq!(names(&s, &id).len(), 250);
        let two = [
            attr("x", Value::from("1")),
            attr("a007", Value::from("old")),
            attr("a007", Value::from("new")),
        ];
        s.put_inventory(&id, &two, false).unwrap();
        let got = names(&s, &id);
        assert_eq!(got.len(), 251);
        assert!(got.contains(&("a007".into(), Value::from("new"))));
        s.put_inventory(&id, &two, true).unwrap();
        assert_eq!(
            names(&s, &id),
            vec![
                ("a007".to_string(), Value::from("new")),
                ("x".to_string(), Value::from("1"))
            ]
        );
        s.put_inventory(&id, &[], true).unwrap();
        assert!(names(&s, &id).is_empty());
    }
}
