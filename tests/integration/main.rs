//! Integration tests against real servers: PostgreSQL (`DATABASE_URL`, otherwise a private
//! throwaway cluster), MySQL/MariaDB (`MYSQL_URL`, otherwise a private throwaway server), SQLite
//! (temporary folders), PgBouncer (`PGBOUNCER_URL`, otherwise a private one), MySQL over TLS
//! (`MYSQL_TLS_URL`, otherwise the private MySQL/MariaDB server) and Citus
//! (`CITUS_URL`); see `tenancy-testdb`. Before the tests start, the binary prints one line per
//! backend saying whether its tests run, and on what; the tests of a backend whose server can
//! neither be reached nor started are filtered out (`TENANCY_TEST_BACKENDS` selects backends
//! explicitly: see `tenancy_testdb::select`). One binary, one module per concern; every test
//! makes its own schemas, so tests run in parallel. The behaviours every backend shares run once
//! per backend from one source (`backends`); the other modules are PostgreSQL's own.

use tenancy_testdb::select::Backend;

/// The backends each test needs, by its name.
fn needs(test: &str) -> &'static [Backend] {
    if let Some(pair) = test.strip_prefix("portable_pairs::") {
        // Named after the backends the archive leaves and enters.
        match (pair.contains("postgresql"), pair.contains("mysql")) {
            (true, true) => &[Backend::Postgres, Backend::Mysql],
            (true, false) => &[Backend::Postgres],
            (false, true) => &[Backend::Mysql],
            (false, false) => &[Backend::Sqlite],
        }
    } else if test.starts_with("backends::sqlite::") || test.ends_with("_on_sqlite") {
        &[Backend::Sqlite]
    } else if test == "backends::citus::placement_on_plain_postgresql_is_a_typed_error" {
        &[Backend::Postgres]
    } else if test.starts_with("backends::citus::") {
        &[Backend::Citus]
    } else if test == "testing::a_failing_fixture_leaves_no_tenant" {
        &[Backend::Postgres, Backend::Mysql]
    } else if test.starts_with("backends::mysql::")
        || test.contains("mariadb")
        || test.starts_with("testing::mysql_")
    {
        &[Backend::Mysql]
    } else if test.starts_with("pgbouncer::") {
        &[Backend::PgBouncer]
    } else if test.starts_with("hardening::tls_mysql_") {
        &[Backend::MysqlTls]
    } else if test.starts_with("hardening::tls_") {
        &[Backend::Tls]
    } else if test.starts_with("faults::crash::") {
        &[Backend::PgCluster]
    } else {
        &[Backend::Postgres]
    }
}

tenancy_testdb::select_tests!(needs);

mod support;

mod backends;

mod across;
mod context;
mod crud;
pub(crate) mod faults;
mod fleet;
mod hardening;
mod isolation;
mod lifecycle;
mod lifecycle_support;
mod migrations;
mod names;
mod pgbouncer;
mod portable;
mod portable_pairs;
mod rls;
mod spans;
mod testing;
mod types;
