//! Tar headers written as Go's `archive/tar` writes them for upstream `mender-artifact`:
//! USTAR, with a PAX record only where USTAR cannot hold a value (long or non-ASCII names,
//! sizes of 8 GiB and more), so that archives are byte-compatible with upstream's.

use std::io::{self, Write};

/// Largest size a USTAR header holds (11 octal digits).
pub const USTAR_MAX_SIZE: u64 = 0o77777777777;
const USTAR_MAX_ID: u64 = 0o7777777;

/// The fields of one regular-file entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryMeta {
    /// Full path inside the archive.
    pub name: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Owner name (empty when unknown).
    pub uname: String,
    /// Group name (empty when unknown).
    pub gname: String,
    /// Modification time, whole seconds since the epoch.
    pub mtime: i64,
    /// Content length.
    pub size: u64,
}

impl EntryMeta {
    /// The fixed fields upstream uses for the small members it writes from memory
    /// (`version`, `manifest`, the header documents): mode 0600, root, mtime 0.
    pub fn stream(name: &str, size: u64) -> Self {
        EntryMeta {
            name: name.to_string(),
            mode: 0o600,
            size,
            ..Default::default()
        }
    }
}

fn put_str(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
}

fn put_octal(field: &mut [u8], v: u64) {
    let digits = format!("{v:o}");
    let width = field.len() - 1;
    let s = if digits.len() < width {
        format!("{}{}", "0".repeat(width - digits.len()), digits)
    } else {
        digits
    };
    put_str(field, s.as_bytes());
}

fn finish_checksum(block: &mut [u8; 512]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    put_octal(&mut block[148..155], sum);
    block[154] = 0;
    block[155] = b' ';
}

fn set_ustar_magic(block: &mut [u8; 512]) {
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
}

/// Splits a long name into USTAR prefix and name at a `/`, as Go does, if possible.
fn split_ustar_path(name: &str) -> Option<(&str, &str)> {
    let len = name.len();
    if len <= 100 || !name.is_ascii() {
        return None;
    }
    let max = len.min(156);
    let cut = name[..max].rfind('/')?;
    let (prefix, rest) = (&name[..cut], &name[cut + 1..]);
    (cut > 0 && prefix.len() <= 155 && !rest.is_empty() && rest.len() <= 100)
        .then_some((prefix, rest))
}

fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    loop {
        let total = len.to_string().len() + body.len();
        if total == len {
            return format!("{len}{body}");
        }
        len = total;
    }
}

/// Writes the header block(s) for `meta`: a PAX `x` entry first where USTAR cannot hold a
/// field, then the USTAR header. Returns the number of bytes written.
pub fn write_header<W: Write + ?Sized>(w: &mut W, meta: &EntryMeta) -> io::Result<u64> {
    let mut pax: Vec<(&str, String)> = Vec::new();
    let split = split_ustar_path(&meta.name);
    let name_fits = meta.name.is_ascii() && (meta.name.len() <= 100 || split.is_some());
    if !name_fits {
        pax.push(("path", meta.name.clone()));
    }
    if meta.size > USTAR_MAX_SIZE {
        pax.push(("size", meta.size.to_string()));
    }
    if meta.uid > USTAR_MAX_ID {
        pax.push(("uid", meta.uid.to_string()));
    }
    if meta.gid > USTAR_MAX_ID {
        pax.push(("gid", meta.gid.to_string()));
    }
    if meta.uname.len() > 32 || !meta.uname.is_ascii() {
        pax.push(("uname", meta.uname.clone()));
    }
    if meta.gname.len() > 32 || !meta.gname.is_ascii() {
        pax.push(("gname", meta.gname.clone()));
    }
    if !(0..=USTAR_MAX_SIZE as i64).contains(&meta.mtime) {
        pax.push(("mtime", meta.mtime.to_string()));
    }
    pax.sort_by(|a, b| a.0.cmp(b.0));
    let mut written = 0;
    if !pax.is_empty() {
        let data: String = pax.iter().map(|(k, v)| pax_record(k, v)).collect();
        let (dir, file) = match meta.name.rfind('/') {
            Some(i) => (&meta.name[..=i], &meta.name[i + 1..]),
            None => ("", meta.name.as_str()),
        };
        let pax_name: String = format!("{dir}PaxHeaders.0/{file}")
            .chars()
            .map(|c| if c.is_ascii() { c } else { '?' })
            .collect();
        let mut b = [0u8; 512];
        put_str(&mut b[0..100], pax_name.as_bytes());
        put_octal(&mut b[100..108], 0);
        put_octal(&mut b[108..116], 0);
        put_octal(&mut b[116..124], 0);
        put_octal(&mut b[124..136], data.len() as u64);
        put_octal(&mut b[136..148], 0);
        b[156] = b'x';
        set_ustar_magic(&mut b);
        finish_checksum(&mut b);
        w.write_all(&b)?;
        w.write_all(data.as_bytes())?;
        let pad = padding(data.len() as u64);
        w.write_all(&[0u8; 512][..pad as usize])?;
        written += 512 + data.len() as u64 + pad;
    }
    let mut b = [0u8; 512];
    match split {
        Some((prefix, rest)) => {
            put_str(&mut b[0..100], rest.as_bytes());
            put_str(&mut b[345..500], prefix.as_bytes());
        }
        None => {
            let ascii: String = meta
                .name
                .chars()
                .map(|c| if c.is_ascii() { c } else { '?' })
                .collect();
            put_str(&mut b[0..100], ascii.as_bytes());
        }
    }
    put_octal(&mut b[100..108], u64::from(meta.mode & 0o7777));
    put_octal(
        &mut b[108..116],
        if meta.uid > USTAR_MAX_ID { 0 } else { meta.uid },
    );
    put_octal(
        &mut b[116..124],
        if meta.gid > USTAR_MAX_ID { 0 } else { meta.gid },
    );
    put_octal(
        &mut b[124..136],
        if meta.size > USTAR_MAX_SIZE {
            0
        } else {
            meta.size
        },
    );
    let mtime = u64::try_from(meta.mtime)
        .ok()
        .filter(|&m| m <= USTAR_MAX_SIZE);
    put_octal(&mut b[136..148], mtime.unwrap_or(0));
    b[156] = b'0';
    set_ustar_magic(&mut b);
    if meta.uname.len() <= 32 && meta.uname.is_ascii() {
        put_str(&mut b[265..297], meta.uname.as_bytes());
    }
    if meta.gname.len() <= 32 && meta.gname.is_ascii() {
        put_str(&mut b[297..329], meta.gname.as_bytes());
    }
    put_octal(&mut b[329..337], 0);
    put_octal(&mut b[337..345], 0);
    finish_checksum(&mut b);
    w.write_all(&b)?;
    Ok(written + 512)
}

/// Zero bytes needed after `size` bytes of content to reach a 512-byte boundary.
pub fn padding(size: u64) -> u64 {
    (512 - size % 512) % 512
}

/// Writes one complete in-memory entry (header, content, padding).
pub fn write_entry<W: Write + ?Sized>(w: &mut W, meta: &EntryMeta, data: &[u8]) -> io::Result<u64> {
    debug_assert_eq!(meta.size, data.len() as u64);
    let n = write_header(w, meta)?;
    w.write_all(data)?;
    let pad = padding(data.len() as u64);
    w.write_all(&[0u8; 512][..pad as usize])?;
    Ok(n + data.len() as u64 + pad)
}

/// Writes the end-of-archive marker: exactly two zero blocks (Go does not pad to a record).
pub fn write_end<W: Write + ?Sized>(w: &mut W) -> io::Result<u64> {
    w.write_all(&[0u8; 1024])?;
    Ok(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_entry_matches_upstream_bytes() {
        let mut out = Vec::new();
        write_entry(&mut out, &EntryMeta::stream("version", 31), &[b'x'; 31]).unwrap();
        assert_eq!(out.len(), 1024);
        assert_eq!(&out[100..108], b"0000600\0");
        assert_eq!(&out[124..136], b"00000000037\0");
        assert_eq!(&out[148..156], b"010605\0 ");
        assert_eq!(&out[257..265], b"ustar\x0000");
        assert_eq!(&out[329..345], b"0000000\x000000000\0");
    }

    #[test]
    fn long_names_get_pax_path() {
        let name = "a".repeat(120);
        let mut out = Vec::new();
        write_header(&mut out, &EntryMeta::stream(&name, 0)).unwrap();
        assert_eq!(&out[0..13], b"PaxHeaders.0/");
        assert_eq!(out[156], b'x');
        let rec = format!("130 path={name}\n");
        assert_eq!(&out[512..512 + rec.len()], rec.as_bytes());
        let real = &out[1024..];
        assert_eq!(&real[0..100], &name.as_bytes()[..100]);
        let mut ar = tar::Archive::new(std::io::Cursor::new([out, vec![0; 1024]].concat()));
        let e = ar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str().unwrap(), name);
    }

    #[test]
    fn huge_sizes_get_pax_size() {
        let mut out = Vec::new();
        let meta = EntryMeta {
            name: "data/0000.tar".into(),
            size: 8_589_937_664,
            ..EntryMeta::stream("", 0)
        };
        write_header(&mut out, &meta).unwrap();
        assert_eq!(&out[0..26], b"data/PaxHeaders.0/0000.tar");
        assert_eq!(&out[512..531], b"19 size=8589937664\n");
        assert_eq!(&out[1024 + 124..1024 + 136], b"00000000000\0");
    }

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("size", "8589934593"), "19 size=8589934593\n");
        let r = pax_record("path", &"x".repeat(93));
        assert_eq!(
            r.len(),
            r.split(' ').next().unwrap().parse::<usize>().unwrap()
        );
    }
}
