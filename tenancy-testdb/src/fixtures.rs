//! The tables and migrations the tests share, written once per SQL dialect: the `guards` table
//! (the tests' `Guard` model), the `badges` table (a key the application chooses, a unique
//! column), and migration 2 adding `guards.badge`, reversible.
//!
//! The statements are unqualified, as a tenant's migration is: [`in_container`] puts a
//! `CREATE TABLE` into a named schema (database) for a fixture that bypasses the lifecycle.
//!
//! With the `migrations` feature, `Dialect::v1()` and `Dialect::v2()` are the standard migration
//! sets as sqlx's `Migration`s, the type `tenancy`'s `Tenants::new` takes through a `Migrator`. They are sqlx's types, not tenancy's: this crate never depends
//! on `tenancy-core` (which depends on it for its `testing` feature).
//!
//! ```
//! use tenancy_testdb::fixtures::{in_container, MYSQL, POSTGRES};
//!
//! assert!(POSTGRES.guards.starts_with("CREATE TABLE guards ("));
//! assert!(in_container(MYSQL.guards, "`acme`").starts_with("CREATE TABLE `acme`.guards ("));
//! ```

/// The shared tables and migration 2 in one SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// `postgres`, `mysql` or `sqlite`.
    pub name: &'static str,
    /// `CREATE TABLE guards (…)`: a generated `id` key, `name` and `position` (required), a
    /// nullable `age`, a generated `inserted_at` timestamp. Migration 1.
    pub guards: &'static str,
    /// `CREATE TABLE badges (…)`: a `code` key the application chooses and a unique `holder`.
    pub badges: &'static str,
    /// Migration 2 (up): adds the nullable text column `guards.badge`.
    pub badge_up: &'static str,
    /// Migration 2 (down): drops `guards.badge`.
    pub badge_down: &'static str,
}

/// PostgreSQL (and Citus): a schema per tenant.
pub const POSTGRES: Dialect = Dialect {
    name: "postgres",
    guards: "CREATE TABLE guards (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    position text NOT NULL,
    age integer,
    inserted_at timestamptz NOT NULL DEFAULT now()
)",
    badges: "CREATE TABLE badges (code text PRIMARY KEY, holder text NOT NULL UNIQUE)",
    badge_up: "ALTER TABLE guards ADD COLUMN badge text",
    badge_down: "ALTER TABLE guards DROP COLUMN badge",
};

/// MySQL / MariaDB: a database per tenant.
pub const MYSQL: Dialect = Dialect {
    name: "mysql",
    guards: "CREATE TABLE guards (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    position VARCHAR(255) NOT NULL,
    age INT NULL,
    inserted_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
)",
    badges:
        "CREATE TABLE badges (code VARCHAR(32) PRIMARY KEY, holder VARCHAR(255) NOT NULL UNIQUE)",
    badge_up: "ALTER TABLE guards ADD COLUMN badge VARCHAR(32) NULL",
    badge_down: "ALTER TABLE guards DROP COLUMN badge",
};

/// SQLite: a database file per tenant.
pub const SQLITE: Dialect = Dialect {
    name: "sqlite",
    guards: "CREATE TABLE guards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    position TEXT NOT NULL,
    age INTEGER NULL,
    inserted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)",
    badges: "CREATE TABLE badges (code TEXT PRIMARY KEY NOT NULL, holder TEXT NOT NULL UNIQUE)",
    badge_up: "ALTER TABLE guards ADD COLUMN badge TEXT NULL",
    badge_down: "ALTER TABLE guards DROP COLUMN badge",
};

/// `ddl`, a `CREATE TABLE <name> …` statement, creating its table in the schema (database)
/// `quoted` instead: `CREATE TABLE <quoted>.<name> …`. Any other statement is returned as it is.
pub fn in_container(ddl: &str, quoted: &str) -> String {
    const CREATE: &str = "CREATE TABLE ";
    match ddl.strip_prefix(CREATE) {
        Some(rest) => format!("{CREATE}{quoted}.{rest}"),
        None => ddl.to_owned(),
    }
}

#[cfg(feature = "migrations")]
mod migrations {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use sqlx::SqlSafeStr;

    use super::Dialect;

    /// Migration `version` of kind `kind` running `sql`, described as `v<version>`.
    pub fn migration(version: i64, kind: MigrationType, sql: &str) -> Migration {
        Migration::new(
            version,
            format!("v{version}").into(),
            kind,
            sqlx::AssertSqlSafe(sql.to_owned()).into_sql_str(),
            false,
        )
    }

    /// A migrator of `migrations`, for `Tenants::new`.
    pub fn migrator(migrations: Vec<Migration>) -> Migrator {
        Migrator::with_migrations(migrations)
    }

    impl Dialect {
        /// Version 1: the `guards` table.
        pub fn v1(&self) -> Vec<Migration> {
            vec![migration(1, MigrationType::Simple, self.guards)]
        }

        /// [`v1`](Self::v1), then version 2 (reversible): `guards.badge`.
        pub fn v2(&self) -> Vec<Migration> {
            let mut all = self.v1();
            all.push(migration(2, MigrationType::ReversibleUp, self.badge_up));
            all.push(migration(2, MigrationType::ReversibleDown, self.badge_down));
            all
        }
    }
}

#[cfg(feature = "migrations")]
pub use migrations::{migration, migrator};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_container_qualifies_a_create_table_only() {
        assert_eq!(
            in_container(POSTGRES.badges, "\"a\""),
            "CREATE TABLE \"a\".badges (code text PRIMARY KEY, holder text NOT NULL UNIQUE)"
        );
        assert_eq!(in_container("SELECT 1", "\"a\""), "SELECT 1");
    }

    #[test]
    fn every_dialect_creates_the_same_tables() {
        for d in [POSTGRES, MYSQL, SQLITE] {
            assert!(d.guards.starts_with("CREATE TABLE guards ("), "{}", d.name);
            assert!(d.badges.starts_with("CREATE TABLE badges ("), "{}", d.name);
            for column in ["id", "name", "position", "age", "inserted_at"] {
                assert!(
                    d.guards.contains(&format!("\n    {column} ")),
                    "{}: {column}",
                    d.name
                );
            }
            assert!(d.badge_up.contains("ADD COLUMN badge"), "{}", d.name);
            assert!(d.badge_down.contains("DROP COLUMN badge"), "{}", d.name);
        }
    }
}
