//! Owner and group names for tar headers, looked up in the system databases as Go's
//! `os/user` does, empty when unknown.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

fn lookup(db: &str, id: u64) -> String {
    static CACHE: OnceLock<Mutex<HashMap<(String, u64), String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (db.to_string(), id);
    if let Some(v) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return v;
    }
    let name = std::fs::read_to_string(db)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut f = line.split(':');
                let name = f.next()?;
                let _pw = f.next()?;
                let num: u64 = f.next()?.parse().ok()?;
                (num == id).then(|| name.to_string())
            })
        })
        .unwrap_or_default();
    if let Ok(mut c) = cache.lock() {
        c.insert(key, name.clone());
    }
    name
}

/// The user name of `uid`, or an empty string.
pub fn user_name(uid: u64) -> String {
    lookup("/etc/passwd", uid)
}

/// The group name of `gid`, or an empty string.
pub fn group_name(gid: u64) -> String {
    lookup("/etc/group", gid)
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_is_known() {
        assert_eq!(super::user_name(0), "root");
        assert_eq!(super::user_name(4_000_000_000), "");
    }
}
