//! U-Boot's environment in its stored form, for writing a first environment into a disk
//! image: a CRC-32 of the data area, a flag byte when the environment is kept twice
//! (redundant), then `name=value` strings each ended by a NUL, an empty string, and zeros to
//! the end. This is what U-Boot's `saveenv` and libubootenv's `fw_setenv` write.

use std::collections::BTreeMap;

use super::{FsError, Result};

/// Mender's boot variables with their first-boot values (meta-mender's `env_mender.h`):
/// root filesystem A (partition 2) active, no update pending, one trial boot allowed.
pub const MENDER_DEFAULTS: [(&str, &str); 5] = [
    ("bootcount", "0"),
    ("bootlimit", "1"),
    ("mender_boot_part", "2"),
    ("mender_boot_part_hex", "2"),
    ("upgrade_available", "0"),
];

/// Checks that `name=value` can be stored: a name without `=` or NUL, a value without NUL.
pub fn check_var(name: &str, value: &str) -> Result<()> {
    if name.is_empty() || name.contains(['=', '\0']) || name.chars().any(char::is_whitespace) {
        return Err(FsError(format!(
            "{name:?}: not a U-Boot environment variable name"
        )));
    }
    if value.contains('\0') {
        return Err(FsError(format!("{name}: a value cannot hold a NUL byte")));
    }
    Ok(())
}

/// One stored copy of `size` bytes holding `vars` (in name order, as U-Boot exports them).
/// `flag` is the redundancy counter for a redundant environment, `None` for a single one.
pub fn image(vars: &BTreeMap<String, String>, size: usize, flag: Option<u8>) -> Result<Vec<u8>> {
    let header = if flag.is_some() { 5 } else { 4 };
    let mut data = Vec::new();
    for (name, value) in vars {
        check_var(name, value)?;
        data.extend_from_slice(name.as_bytes());
        data.push(b'=');
        data.extend_from_slice(value.as_bytes());
        data.push(0);
    }
    data.push(0);
    if header + data.len() > size {
        return Err(FsError(format!(
            "the boot environment takes {} bytes, more than its {size}-byte area",
            header + data.len()
        )));
    }
    data.resize(size - header, 0);
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&crc32fast::hash(&data).to_le_bytes());
    if let Some(flag) = flag {
        out.push(flag);
    }
    out.extend_from_slice(&data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layout_of_a_redundant_copy() {
        let img = image(&vars(&[("b", "2"), ("a", "1")]), 64, Some(1)).unwrap();
        assert_eq!(img.len(), 64);
        assert_eq!(img[4], 1);
        assert_eq!(&img[5..14], b"a=1\0b=2\0\0");
        assert!(img[14..].iter().all(|&b| b == 0));
        let crc = u32::from_le_bytes(img[0..4].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&img[5..]));
        let single = image(&vars(&[("a", "1")]), 32, None).unwrap();
        assert_eq!(&single[4..9], b"a=1\0\0");
        assert_eq!(
            u32::from_le_bytes(single[0..4].try_into().unwrap()),
            crc32fast::hash(&single[4..])
        );
    }

    #[test]
    fn refuses_what_does_not_fit_or_cannot_be_stored() {
        assert!(image(&vars(&[("a", "1234567890")]), 16, Some(0)).is_err());
        assert!(image(&vars(&[("a=b", "1")]), 64, None).is_err());
        assert!(image(&vars(&[("", "1")]), 64, None).is_err());
        assert!(image(&vars(&[("a b", "1")]), 64, None).is_err());
        assert!(image(&vars(&[("a", "1\0")]), 64, None).is_err());
    }
}
