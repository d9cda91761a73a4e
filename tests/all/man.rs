//! The man pages in `man/` are generated from the clap definitions; this fails when they are
//! stale. Regenerate with `MENDER_UPDATE_MAN=1 cargo test --test all man`.

use std::path::Path;

#[test]
fn man_pages_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages = mender::cli::man::pages();
    if std::env::var_os("MENDER_UPDATE_MAN").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "1") {
                std::fs::remove_file(p).unwrap();
            }
        }
        for (name, text) in &pages {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    let mut stale = Vec::new();
    for (name, text) in &pages {
        match std::fs::read(dir.join(name)) {
            Ok(on_disk) if &on_disk == text => {}
            _ => stale.push(name.clone()),
        }
    }
    let on_disk = std::fs::read_dir(&dir).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "1"))
        })
        .count()
    });
    assert!(
        stale.is_empty() && on_disk == pages.len(),
        "man pages are stale ({stale:?}); run MENDER_UPDATE_MAN=1 cargo test --test all man"
    );
}
