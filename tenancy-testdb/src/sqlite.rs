//! Temporary folders: SQLite's tenants (a database file per tenant in a folder, so no server is
//! needed and the SQLite tests always run), and migrations a test writes as files.
//!
//! - [`TempFolder`]: a fresh folder removed when the value is dropped, for a test that owns
//!   it to the end.
//! - [`folder`]: a fresh folder that outlives its test, for a value that cannot carry a guard
//!   (a `Tenants<Sqlite>` handle built on it). Such folders are under one base folder, and
//!   those of earlier runs older than an hour are removed when a process first asks for one.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use crate::unique_name;

/// The folder [`folder`]'s folders are made in, under the system's temporary folder.
pub const BASE: &str = "tenancy-sqlite-tests";

/// How old a folder of an earlier run must be for [`folder`] to remove it.
const SWEEP_AFTER: Duration = Duration::from_secs(3600);

/// A fresh, empty folder `<temp>/tenancy-sqlite-tests/<unique name from prefix>`, created. It is
/// not removed at the end of the test: the first call in a process removes the folders there
/// older than an hour.
///
/// # Errors
///
/// The error of creating the folder.
pub fn folder(prefix: &str) -> io::Result<PathBuf> {
    static SWEPT: Once = Once::new();
    let base = std::env::temp_dir().join(BASE);
    SWEPT.call_once(|| sweep(&base, SWEEP_AFTER));
    let path = base.join(unique_name(prefix));
    std::fs::create_dir_all(&path)?;
    Ok(path)
}

/// Removes the folders in `base` last modified longer than `age` ago (best effort).
fn sweep(base: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|elapsed| elapsed > age);
        if old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A fresh, empty folder in the system's temporary folder, named after a prefix and unique
/// across threads and processes; it is removed with everything in it when the value is dropped
/// (also when the test panics).
#[derive(Debug)]
pub struct TempFolder {
    path: PathBuf,
}

impl TempFolder {
    /// Creates `<temp>/<unique name from prefix>`.
    ///
    /// # Errors
    ///
    /// The error of creating the folder.
    pub fn new(prefix: &str) -> io::Result<TempFolder> {
        let path = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&path)?;
        Ok(TempFolder { path })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name` in the folder.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temp_folder_is_fresh_and_goes_with_its_value() {
        let a = TempFolder::new("tf").unwrap();
        let b = TempFolder::new("tf").unwrap();
        assert_ne!(a.path(), b.path());
        std::fs::write(a.join("x.db"), "x").unwrap();
        let path = a.path().to_owned();
        drop(a);
        assert!(!path.exists(), "{} left", path.display());
        assert!(b.path().is_dir());
    }

    #[test]
    fn sweeping_removes_only_old_folders() {
        let base = TempFolder::new("sweep").unwrap();
        std::fs::create_dir(base.join("old")).unwrap();
        std::fs::create_dir(base.join("new")).unwrap();
        let two_hours_ago = std::time::SystemTime::now() - 2 * SWEEP_AFTER;
        std::fs::File::open(base.join("old"))
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        sweep(base.path(), SWEEP_AFTER);
        assert!(!base.join("old").exists());
        assert!(base.join("new").exists());
        let made = folder("f").unwrap();
        assert!(made.is_dir() && made.starts_with(std::env::temp_dir().join(BASE)));
        std::fs::remove_dir(made).unwrap();
    }
}
