//! A snapshot of desired state as files, with a digest: what an announcement pins, so that
//! the maintenance it announces applies that desired state, not whatever is on disk when it
//! runs. Only desired state's own files count (`settings.yaml`, `tiers.yaml`, `features/`,
//! `accounts/`, `policies/`), so anything else kept beside them changes nothing.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The files and folders of desired state.
const PARTS: [&str; 5] = ["settings.yaml", "tiers.yaml", "features", "accounts", "policies"];

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Path relative to the desired-state directory → content.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Snapshot {
    /// Reads desired state's files under `dir`.
    pub fn read(dir: &Path) -> std::io::Result<Snapshot> {
        fn walk(root: &Path, rel: &str, files: &mut BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
            let path = root.join(rel);
            if path.is_dir() {
                for e in std::fs::read_dir(&path)? {
                    let name = e?.file_name().to_string_lossy().to_string();
                    walk(root, &format!("{rel}/{name}"), files)?;
                }
            } else if path.is_file() {
                files.insert(rel.to_string(), std::fs::read(&path)?);
            }
            Ok(())
        }
        let mut files = BTreeMap::new();
        for part in PARTS {
            walk(dir, part, &mut files)?;
        }
        Ok(Snapshot { files })
    }

    /// SHA-256 over every file's path and content, in path order (hex).
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (path, content) in &self.files {
            h.update((path.len() as u64).to_be_bytes());
            h.update(path.as_bytes());
            h.update((content.len() as u64).to_be_bytes());
            h.update(content);
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The files as one byte string (each path and content with its length): what the
    /// journal keeps of a pinned desired state.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, content) in &self.files {
            out.extend((path.len() as u64).to_be_bytes());
            out.extend(path.as_bytes());
            out.extend((content.len() as u64).to_be_bytes());
            out.extend(content);
        }
        out
    }

    /// The snapshot [`to_bytes`](Self::to_bytes) gave; `Err` when `bytes` is not one.
    pub fn from_bytes(mut bytes: &[u8]) -> Result<Snapshot, String> {
        fn take<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], String> {
            let (len, rest) = bytes.split_at_checked(8).ok_or("truncated length")?;
            let len = u64::from_be_bytes(len.try_into().map_err(|_| "bad length")?) as usize;
            let (value, rest) = rest.split_at_checked(len).ok_or("truncated value")?;
            *bytes = rest;
            Ok(value)
        }
        let mut files = BTreeMap::new();
        while !bytes.is_empty() {
            let path = String::from_utf8(take(&mut bytes)?.to_vec()).map_err(|e| format!("path: {e}"))?;
            if path.split('/').any(|p| p == ".." || p.is_empty()) {
                return Err(format!("unsafe path {path:?}"));
            }
            files.insert(path, take(&mut bytes)?.to_vec());
        }
        Ok(Snapshot { files })
    }

    /// Writes the files under `dir` (made when missing).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        for (rel, content) in &self.files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, content)?;
        }
        Ok(())
    }

    /// The files that differ between `self` and `newer`: added, changed or removed.
    pub fn changed_in(&self, newer: &Snapshot) -> Vec<String> {
        let mut out: Vec<String> = newer
            .files
            .iter()
            .filter(|(p, c)| self.files.get(*p) != Some(*c))
            .map(|(p, _)| p.clone())
            .chain(self.files.keys().filter(|p| !newer.files.contains_key(*p)).cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_follows_desired_states_files_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("features")).unwrap();
        std::fs::create_dir_all(d.join("state")).unwrap();
        std::fs::write(d.join("settings.yaml"), "home_region: ap-northeast-1\n").unwrap();
        std::fs::write(d.join("features/F01.yaml"), "id: F01\n").unwrap();
        let a = Snapshot::read(d).unwrap();
        std::fs::write(d.join("state/journal.sqlite"), "anything").unwrap();
        assert_eq!(Snapshot::read(d).unwrap().digest(), a.digest(), "files beside desired state count");
        std::fs::write(d.join("features/F01.yaml"), "id: F01 # edited\n").unwrap();
        std::fs::write(d.join("accounts.yaml"), "not desired state").unwrap();
        let b = Snapshot::read(d).unwrap();
        assert_ne!(b.digest(), a.digest());
        assert_eq!(a.changed_in(&b), ["features/F01.yaml"]);
        let copy = tempfile::tempdir().unwrap();
        a.write(copy.path()).unwrap();
        assert_eq!(Snapshot::read(copy.path()).unwrap(), a);
        assert_eq!(a.digest().len(), 64);
        // As the journal keeps it: the same snapshot back, and nothing else taken for one.
        let back = Snapshot::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!((back.digest(), &back), (a.digest(), &a));
        let bytes = a.to_bytes();
        assert!(Snapshot::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let evil = Snapshot { files: [("../x".to_string(), vec![1])].into() };
        assert!(Snapshot::from_bytes(&evil.to_bytes()).unwrap_err().contains("unsafe path"));
    }
}
