//! GRUB's environment block: a fixed-size file of `name=value` lines after a signature line,
//! padded with `#`. Edits keep the size and the other lines byte for byte, as `grub-editenv`
//! does, because GRUB's `save_env` can only overwrite the blocks the file already occupies.

use std::collections::BTreeMap;

/// The first line of every block; GRUB refuses a file without it.
pub const SIGNATURE: &[u8] = b"# GRUB Environment Block\n";

/// The size `grub-editenv create` gives a new block.
pub const DEFAULT_SIZE: usize = 1024;

/// Why bytes are not an environment block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockError {
    /// The variables do not fit in the block's size.
    Full,
    /// Not a block; the text says why.
    Invalid(&'static str),
}

/// One environment block, kept as its lines so edits reproduce `grub-editenv`'s bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvBlock {
    size: usize,
    /// Raw lines after the signature, escapes kept, without their `\n`.
    lines: Vec<Vec<u8>>,
}

impl Default for EnvBlock {
    fn default() -> Self {
        Self::new()
    }
}

impl EnvBlock {
    /// An empty block of [`DEFAULT_SIZE`], for provisioning new environment and lock files.
    pub fn new() -> Self {
        EnvBlock {
            size: DEFAULT_SIZE,
            lines: Vec::new(),
        }
    }

    /// Parses a whole file. A torn write shows up here as a missing signature or as content
    /// that does not end in a line break before the padding.
    pub fn parse(bytes: &[u8]) -> Result<Self, BlockError> {
        let body = bytes
            .strip_prefix(SIGNATURE)
            .ok_or(BlockError::Invalid("missing signature"))?;
        let content_len = body.len() - body.iter().rev().take_while(|&&b| b == b'#').count();
        let content = &body[..content_len];
        if content.last().is_some_and(|&b| b != b'\n') {
            return Err(BlockError::Invalid("content does not end in a line break"));
        }
        let mut lines = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < content.len() {
            match content[i] {
                b'\\' => i += 2,
                b'\n' => {
                    lines.push(content[start..i].to_vec());
                    i += 1;
                    start = i;
                }
                _ => i += 1,
            }
        }
        if start != content.len() {
            return Err(BlockError::Invalid("escape at the end of the content"));
        }
        Ok(EnvBlock {
            size: bytes.len(),
            lines,
        })
    }

    /// The file's bytes: signature, lines, `#` padding up to the original size.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size);
        out.extend_from_slice(SIGNATURE);
        for l in &self.lines {
            out.extend_from_slice(l);
            out.push(b'\n');
        }
        out.resize(self.size, b'#');
        out
    }

    fn used(&self) -> usize {
        SIGNATURE.len() + self.lines.iter().map(|l| l.len() + 1).sum::<usize>()
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.lines.iter().position(|l| {
            l.strip_prefix(name.as_bytes())
                .is_some_and(|rest| rest.first() == Some(&b'='))
        })
    }

    /// The value of a variable (the first line that defines it, the one `set` changes).
    pub fn get(&self, name: &str) -> Option<String> {
        let line = &self.lines[self.find(name)?];
        Some(unescape(&line[name.len() + 1..]))
    }

    /// Every variable; comment lines and lines without `=` are skipped, as GRUB does.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for l in &self.lines {
            if l.first() == Some(&b'#') {
                continue;
            }
            if let Some(eq) = l.iter().position(|&b| b == b'=') {
                let name = String::from_utf8_lossy(&l[..eq]).into_owned();
                out.entry(name).or_insert_with(|| unescape(&l[eq + 1..]));
            }
        }
        out
    }

    /// Sets a variable in place, or appends it after the last line; fails without changing
    /// anything when it does not fit.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), BlockError> {
        let mut line = Vec::with_capacity(name.len() + 1 + value.len());
        line.extend_from_slice(name.as_bytes());
        line.push(b'=');
        for &b in value.as_bytes() {
            if b == b'\\' || b == b'\n' {
                line.push(b'\\');
            }
            line.push(b);
        }
        let (old, index) = match self.find(name) {
            Some(i) => (self.lines[i].len() + 1, Some(i)),
            None => (0, None),
        };
        if self.used() - old + line.len() + 1 > self.size {
            return Err(BlockError::Full);
        }
        match index {
            Some(i) => self.lines[i] = line,
            None => self.lines.push(line),
        }
        Ok(())
    }

    /// Removes a variable; its line's bytes become padding.
    pub fn unset(&mut self, name: &str) {
        if let Some(i) = self.find(name) {
            self.lines.remove(i);
        }
    }
}

fn unescape(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&b) = it.next() {
        if b == b'\\' {
            if let Some(&next) = it.next() {
                out.push(next);
            }
        } else {
            out.push(b);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// Runs `grub-editenv`; a missing tool fails the test, since CI installs it.
    fn grub_editenv(file: &Path, args: &[&str]) -> String {
        let out = Command::new("grub-editenv")
            .arg(file)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("grub-editenv: {e}; apt-get install grub-common to run this test")
            });
        assert!(out.status.success(), "grub-editenv {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn new_block_is_signature_and_padding() {
        let b = EnvBlock::new().to_bytes();
        assert_eq!(b.len(), 1024);
        assert!(b.starts_with(SIGNATURE));
        assert!(b[SIGNATURE.len()..].iter().all(|&c| c == b'#'));
    }

    #[test]
    fn edits_match_grub_editenv_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        grub_editenv(&theirs, &["create"]);
        let mut ours = EnvBlock::parse(&std::fs::read(&theirs).unwrap()).unwrap();
        let steps: &[&[&str]] = &[
            &[
                "set",
                "mender_boot_part=2",
                "upgrade_available=0",
                "bootcount=0",
            ],
            &["set", "upgrade_available=1", "odd=back\\slash"],
            &["set", "mender_boot_part=10", "bootcount=1"],
            &["unset", "odd"],
            &["set", "mender_boot_part=3", "empty="],
        ];
        for step in steps {
            grub_editenv(&theirs, step);
            for arg in &step[1..] {
                match (step[0], arg.split_once('=')) {
                    ("set", Some((k, v))) => ours.set(k, v).unwrap(),
                    _ => ours.unset(arg),
                }
            }
            assert_eq!(
                String::from_utf8_lossy(&ours.to_bytes()),
                String::from_utf8_lossy(&std::fs::read(&theirs).unwrap()),
                "after {step:?}"
            );
        }
        assert_eq!(ours.get("mender_boot_part").as_deref(), Some("3"));
        assert_eq!(ours.get("empty").as_deref(), Some(""));
        assert_eq!(ours.get("odd"), None);
    }

    #[test]
    fn escapes_round_trip_through_grub_editenv() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("env");
        let mut b = EnvBlock::new();
        b.set("path", "a\\b").unwrap();
        b.set("multi", "one\ntwo").unwrap();
        std::fs::write(&file, b.to_bytes()).unwrap();
        assert_eq!(
            grub_editenv(&file, &["list"]),
            "path=a\\b\nmulti=one\ntwo\n"
        );
        let back = EnvBlock::parse(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(back.get("multi").as_deref(), Some("one\ntwo"));
        assert_eq!(back.vars().len(), 2);
    }

    #[test]
    fn full_block_is_left_unchanged() {
        let mut b = EnvBlock::new();
        let big = "x".repeat(DEFAULT_SIZE - SIGNATURE.len() - 2);
        assert_eq!(b.set("a", &big), Err(BlockError::Full));
        assert_eq!(b, EnvBlock::new());
        b.set("a", &big[1..]).unwrap();
        assert_eq!(b.to_bytes().len(), DEFAULT_SIZE);
        assert!(b.to_bytes().ends_with(b"x\n"));
    }

    #[test]
    fn torn_blocks_are_rejected() {
        let mut good = EnvBlock::new();
        good.set("a", "1").unwrap();
        let bytes = good.to_bytes();
        assert!(EnvBlock::parse(&bytes).is_ok());
        assert!(EnvBlock::parse(&bytes[..10]).is_err());
        let mut cut = bytes.clone();
        cut[SIGNATURE.len() + 3] = b'#'; // the line break after `a=1` lost
        assert!(EnvBlock::parse(&cut).is_err());
        assert!(EnvBlock::parse(&[0u8; 1024]).is_err());
    }
}
