//! The `manifest` (and `manifest-augment`) member: one `sha256  path` line per file, the same
//! text as `sha256sum` prints.

use std::fmt::Write as _;

/// Longest manifest accepted when reading; a real one is a few hundred bytes a file.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// An ordered list of (path, SHA-256) entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: Vec<(String, [u8; 32])>,
}

impl Manifest {
    /// An empty manifest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry; a path may appear only once.
    pub fn push(&mut self, path: &str, sum: [u8; 32]) -> Result<(), String> {
        if self.get(path).is_some() {
            return Err(format!("{path}: file already exists"));
        }
        self.entries.push((path.to_string(), sum));
        Ok(())
    }

    /// The checksum recorded for `path`.
    pub fn get(&self, path: &str) -> Option<&[u8; 32]> {
        self.entries.iter().find(|(p, _)| p == path).map(|(_, s)| s)
    }

    /// The entries in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u8; 32])> {
        self.entries.iter().map(|(p, s)| (p.as_str(), s))
    }

    /// The canonical text: `<hex>  <path>\n` per entry, LF after the last line too, so that
    /// every reader (those that hash the raw bytes and those that re-serialise) agrees.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (p, sum) in &self.entries {
            let _ = writeln!(s, "{}  {}", hex::encode(sum), p);
        }
        s
    }

    /// Parses manifest text. Unlike upstream 3.9.0, which silently drops a last line without a
    /// newline, every line counts; blank lines are skipped.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(text).map_err(|_| "manifest is not UTF-8".to_string())?;
        let mut m = Manifest::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (sum, path) = line
                .split_once("  ")
                .ok_or_else(|| format!("manifest line {} is not `<sha256>  <path>`", n + 1))?;
            let path = path.trim();
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(sum.trim(), &mut bytes).map_err(|_| {
                format!("manifest line {}: {sum:?} is not a SHA-256 checksum", n + 1)
            })?;
            if path.is_empty() {
                return Err(format!("manifest line {} has no path", n + 1));
            }
            m.push(path, bytes)
                .map_err(|e| format!("manifest line {}: duplicate entry {e}", n + 1))?;
        }
        Ok(m)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the manifest has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut m = Manifest::new();
        m.push("data/0000/a", [1; 32]).unwrap();
        m.push("version", [2; 32]).unwrap();
        let text = m.to_text();
        assert!(text.ends_with("  version\n"));
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
        assert!(m.push("version", [3; 32]).is_err());
    }

    #[test]
    fn last_line_without_newline_counts() {
        let text = format!("{}  version", "ab".repeat(32));
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Manifest::parse(b"xyz  version\n").is_err());
        assert!(Manifest::parse(b"nospaces\n").is_err());
        let dup = format!("{0}  a\n{0}  a\n", "00".repeat(32));
        assert!(Manifest::parse(dup.as_bytes()).is_err());
    }
}
