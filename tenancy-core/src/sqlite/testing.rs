//! SQLite's side of `#[tenancy::test]` (`backend = "sqlite"`): no server; each test gets a
//! temporary folder of its own (`<temp>/tenancy-test-<tenant name>`), holding the test registry
//! and the tenant's file, removed after the test. Folders left by killed runs are swept like
//! the other backends' leftover tenants.

use std::path::Path;

use futures_util::future::BoxFuture;
use sqlx::Sqlite;

use crate::error::Error;
use crate::lifecycle::Tenants;
use crate::testing::{
    causes, is_stale, process_running, unique_name, unix_secs, TempFolder, TestBackend,
    TestDatabase, SQLITE_TMPDIR_ENV,
};

/// The start of the name of every test's folder in the temporary folder.
const FOLDER_PREFIX: &str = "tenancy-test-";

impl TestBackend for Sqlite {
    const URL_ENV: &'static str = SQLITE_TMPDIR_ENV;

    const EXAMPLE_URL: &'static str = "/tmp";

    fn private_server_url() -> Result<String, String> {
        Ok(std::env::temp_dir().to_string_lossy().into_owned())
    }

    fn test_database(test: &str) -> BoxFuture<'static, Result<TestDatabase<Self>, String>> {
        let folder = std::env::temp_dir().join(format!("{FOLDER_PREFIX}{}", unique_name(test)));
        Box::pin(async move {
            // Removed again if opening fails.
            let folder = TempFolder(folder);
            let place = format!("the temporary folder {}", folder.0.display());
            let pool = super::open(&folder.0.to_string_lossy())
                .await
                .map_err(|e| format!("cannot open a SQLite registry in {place}: {}", causes(&e)))?;
            Ok(TestDatabase {
                pool,
                place,
                folder: Some(folder),
            })
        })
    }

    /// Each test's folder is its own and removed after it: what a killed run leaves is a
    /// folder, removed here when its name says it is stale.
    fn sweep(tenants: &Tenants<Self>) -> BoxFuture<'_, Result<usize, Error>> {
        let _ = tenants;
        Box::pin(async move { Ok(sweep_folders(&std::env::temp_dir())) })
    }
}

/// Removes the test folders in `temp` that are stale (see `testing::is_stale`); how many.
fn sweep_folders(temp: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return 0;
    };
    let now = unix_secs();
    let mut swept = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(tenant) = name.to_str().and_then(|n| n.strip_prefix(FOLDER_PREFIX)) else {
            continue;
        };
        if is_stale(tenant, now, process_running) && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            swept += 1;
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SWEEP_AFTER;

    #[test]
    fn stale_folders_of_gone_processes_are_swept() {
        let temp = std::env::temp_dir().join(unique_name("sqlite::sweep_test"));
        std::fs::create_dir_all(&temp).unwrap();
        let now = unix_secs();
        // No process has pid 4194304 or above on Linux (its maximum pid).
        let name = |pid: u32, secs: u64| {
            format!("{FOLDER_PREFIX}t_left_{pid}_0_{:08x}0000", secs as u32)
        };
        let old = now - SWEEP_AFTER.as_secs() - 60;
        let stale = temp.join(name(4_194_305, old));
        let young = temp.join(name(4_194_305, now));
        let running = temp.join(name(std::process::id(), old));
        let other = temp.join("tenancy-test-not_a_test_name");
        for folder in [&stale, &young, &running, &other] {
            std::fs::create_dir_all(folder.join("inside")).unwrap();
        }
        let swept = sweep_folders(&temp);
        let left = [&stale, &young, &running, &other].map(|f| f.exists());
        std::fs::remove_dir_all(&temp).unwrap();
        assert_eq!(swept, 1);
        assert_eq!(left, [false, true, true, true]);
    }
}
