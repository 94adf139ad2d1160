//! The profiles directory: `<dir>/<name>.toml` definitions and
//! `<dir>/<name>/` state (trend files, materialized slot files, lock).

use std::fs;
use std::path::{Path, PathBuf};

use crate::def::{Profile, check_name};
use crate::error::{ProfileError, Result};
use crate::trend::{Trend, write_atomic};

/// Extension of trend files.
pub const TREND_EXT: &str = "trend";

/// A profiles directory plus the live data directory its shadow profiles
/// read.
#[derive(Debug, Clone)]
pub struct ProfileStore {
    dir: PathBuf,
    data: PathBuf,
}

impl ProfileStore {
    /// Profiles in `dir`, live data under `data`.
    pub fn new(dir: impl Into<PathBuf>, data: impl Into<PathBuf>) -> ProfileStore {
        ProfileStore { dir: dir.into(), data: data.into() }
    }

    /// The profiles directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The live data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// `<dir>/<name>.toml` (the name is checked first).
    pub fn def_path(&self, name: &str) -> Result<PathBuf> {
        check_name("profile", name)?;
        Ok(self.dir.join(format!("{name}.toml")))
    }

    /// `<dir>/<name>/`: the profile's state.
    pub fn state_dir(&self, name: &str) -> Result<PathBuf> {
        check_name("profile", name)?;
        Ok(self.dir.join(name))
    }

    /// The trend file of a channel.
    pub fn trend_path(&self, profile: &str, channel: &str) -> Result<PathBuf> {
        check_name("channel", channel)?;
        Ok(self.state_dir(profile)?.join("trends").join(format!("{channel}.{TREND_EXT}")))
    }

    /// Root of a materialized channel's slot files.
    pub fn channel_data(&self, profile: &str, channel: &str) -> Result<PathBuf> {
        check_name("channel", channel)?;
        Ok(self.data_root(profile)?.join(channel))
    }

    /// The root of a materialized profile's channel files (what
    /// `weir expire --profile` expires).
    pub fn data_root(&self, profile: &str) -> Result<PathBuf> {
        Ok(self.state_dir(profile)?.join("data"))
    }

    /// Loads a profile by name.
    pub fn load(&self, name: &str) -> Result<Profile> {
        let p = self.def_path(name)?;
        if !p.is_file() {
            return Err(ProfileError::NotFound(name.to_string()));
        }
        Profile::load(&p)
    }

    /// Every profile, by name; broken definitions come back as errors in
    /// place so one bad file does not hide the others.
    pub fn list(&self) -> Result<Vec<(String, Result<Profile>)>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ProfileError::io(&self.dir, "read directory", e)),
        };
        let mut out = Vec::new();
        for ent in rd.flatten() {
            let path = ent.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
            if path.extension().and_then(|e| e.to_str()) != Some("toml")
                || check_name("profile", stem).is_err()
            {
                continue;
            }
            out.push((stem.to_string(), Profile::load(&path)));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Adds a new profile (fails if it exists).
    pub fn add(&self, p: &Profile) -> Result<PathBuf> {
        let path = self.def_path(&p.name)?;
        p.check(&path)?;
        if path.exists() {
            return Err(ProfileError::Exists(p.name.clone()));
        }
        write_atomic(&path, p.to_toml().as_bytes())?;
        Ok(path)
    }

    /// Replaces a profile's definition. Channels whose filter changed, and
    /// channels removed, lose their trend series and materialized files
    /// (they no longer describe the same flows); the returned names need a
    /// rebuild.
    pub fn modify(&self, p: &Profile) -> Result<Vec<String>> {
        let old = self.load(&p.name)?;
        let path = self.def_path(&p.name)?;
        p.check(&path)?;
        let mut stale = Vec::new();
        for c in &old.channels {
            let same = p.channels.iter().any(|n| n.name == c.name && n.filter == c.filter);
            let sources_same = old.sources == p.sources && old.slot == p.slot;
            if !same || !sources_same {
                self.remove_channel_state(&p.name, &c.name)?;
                if p.channels.iter().any(|n| n.name == c.name) {
                    stale.push(c.name.clone());
                }
            }
        }
        write_atomic(&path, p.to_toml().as_bytes())?;
        Ok(stale)
    }

    fn remove_channel_state(&self, profile: &str, channel: &str) -> Result<()> {
        let t = self.trend_path(profile, channel)?;
        if t.exists() {
            fs::remove_file(&t).map_err(|e| ProfileError::io(&t, "remove", e))?;
        }
        let d = self.channel_data(profile, channel)?;
        if d.exists() {
            fs::remove_dir_all(&d).map_err(|e| ProfileError::io(&d, "remove", e))?;
        }
        Ok(())
    }

    /// Deletes a profile: its definition and all its state.
    pub fn delete(&self, name: &str) -> Result<()> {
        let path = self.def_path(name)?;
        if !path.is_file() {
            return Err(ProfileError::NotFound(name.to_string()));
        }
        let _lock = self.lock(name)?;
        let state = self.state_dir(name)?;
        fs::remove_file(&path).map_err(|e| ProfileError::io(&path, "remove", e))?;
        if state.exists() {
            // The lock file lives inside; remove_dir_all takes it too.
            fs::remove_dir_all(&state).map_err(|e| ProfileError::io(&state, "remove", e))?;
        }
        Ok(())
    }

    /// Removes the trend series and materialized files (before a rebuild).
    pub fn reset(&self, p: &Profile) -> Result<()> {
        for c in &p.channels {
            self.remove_channel_state(&p.name, &c.name)?;
        }
        Ok(())
    }

    /// The trend series of a channel, `None` if never built.
    pub fn trend(&self, profile: &str, channel: &str) -> Result<Option<Trend>> {
        let p = self.trend_path(profile, channel)?;
        if !p.exists() {
            return Ok(None);
        }
        Trend::load(&p).map(Some)
    }

    /// Takes the profile's build lock (`<state>/.lock` holding the pid). A
    /// lock left by a process that is gone is taken over.
    pub fn lock(&self, name: &str) -> Result<Lock> {
        let dir = self.state_dir(name)?;
        fs::create_dir_all(&dir).map_err(|e| ProfileError::io(&dir, "create directory", e))?;
        let path = dir.join(".lock");
        for _ in 0..2 {
            match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = f.write_all(std::process::id().to_string().as_bytes());
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid: u32 = fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .unwrap_or(0);
                    if pid != 0 && pid != std::process::id() && process_alive(pid) {
                        return Err(ProfileError::Locked { profile: name.to_string(), pid, path });
                    }
                    let _ = fs::remove_file(&path);
                }
                Err(e) => return Err(ProfileError::io(&path, "create lock", e)),
            }
        }
        Err(ProfileError::Locked { profile: name.to_string(), pid: 0, path })
    }
}

/// Whether a process id is alive (Linux `/proc`; elsewhere assumed alive).
/// Deliberately looser than the collector's start-up check (which also
/// wants a `weir` command line and skips its own pid): a builder that
/// wrongly thinks a writer is alive only waits for the slot, while a
/// collector that did so would never recover it.
pub fn process_alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// A held build lock; released on drop.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_lock_is_respected_and_a_stale_one_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ProfileStore::new(tmp.path(), tmp.path().join("flows"));
        fs::create_dir_all(tmp.path().join("p")).unwrap();
        let lock = tmp.path().join("p/.lock");
        fs::write(&lock, "1").unwrap(); // init: alive
        match store.lock("p") {
            Err(ProfileError::Locked { pid: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
        fs::write(&lock, "4194999").unwrap(); // above pid_max: gone
        let held = store.lock("p").unwrap();
        assert_eq!(fs::read_to_string(&lock).unwrap(), std::process::id().to_string());
        drop(held);
        assert!(!lock.exists());
        assert!(store.lock("../p").is_err());
    }
}
