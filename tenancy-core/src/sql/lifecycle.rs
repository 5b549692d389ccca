//! SQL of the tenant lifecycle: the registry of tenants, per-tenant migration bookkeeping,
//! schema DDL and locks. The registry lives in its own schema (default `_tenancy`), holding
//!
//! - `tenants(name)`: every schema this library created; only these count as tenants;
//! - `migrations(tenant, version, …)`: which sqlx migrations (version and checksum) are applied
//!   in which tenant. One table for all tenants, so finding who is behind is one query.

use crate::tenant::Tenant;

use super::{quote_ident_into, Dialect, Postgres};

fn q(schema: &Tenant) -> String {
    schema.quoted()
}

/// Creates the registry if it is absent. Runs as one implicit transaction holding a
/// transaction-level advisory lock, so concurrent first uses do not race on `IF NOT EXISTS`.
pub fn ensure_registry(registry: &Tenant) -> String {
    let r = q(registry);
    format!(
        "SELECT pg_advisory_xact_lock(hashtextextended({lock}, 0));
CREATE SCHEMA IF NOT EXISTS {r};
CREATE TABLE IF NOT EXISTS {r}.tenants (
    name text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {r}.migrations (
    tenant text NOT NULL REFERENCES {r}.tenants (name) ON DELETE CASCADE ON UPDATE CASCADE,
    version bigint NOT NULL,
    description text NOT NULL,
    checksum bytea NOT NULL,
    installed_on timestamptz NOT NULL DEFAULT now(),
    execution_ms bigint NOT NULL,
    PRIMARY KEY (tenant, version)
);",
        lock = literal(&format!("tenancy-registry:{}", registry.as_str())),
    )
}

/// A string literal; only ever used on validated names, which hold no quote.
fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    super::quote_into(&mut out, s, '\'');
    out
}

/// Takes the per-tenant lock until the end of the transaction; `$1` is the tenant name.
/// Keyed by registry and tenant, so runs on different tenants never wait for each other.
pub fn lock_tenant(registry: &Tenant) -> String {
    format!(
        "SELECT pg_advisory_xact_lock(hashtextextended({} || $1, 0))",
        literal(&format!("tenancy:{}:", registry.as_str()))
    )
}

/// Registers tenant `$1`; fails with a unique violation if it exists.
pub fn register(registry: &Tenant) -> String {
    format!("INSERT INTO {}.tenants (name) VALUES ($1)", q(registry))
}

/// Unregisters tenant `$1` (its bookkeeping rows cascade), returning the name if it was there.
pub fn unregister(registry: &Tenant) -> String {
    format!(
        "DELETE FROM {}.tenants WHERE name = $1 RETURNING name",
        q(registry)
    )
}

/// Renames tenant `$1` to `$2` (bookkeeping rows follow by `ON UPDATE CASCADE`).
pub fn rename(registry: &Tenant) -> String {
    format!(
        "UPDATE {}.tenants SET name = $2 WHERE name = $1 RETURNING name",
        q(registry)
    )
}

/// Whether tenant `$1` is registered.
pub fn exists(registry: &Tenant) -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM {}.tenants WHERE name = $1)",
        q(registry)
    )
}

/// Every tenant name, sorted.
pub fn list(registry: &Tenant) -> String {
    format!("SELECT name FROM {}.tenants ORDER BY name", q(registry))
}

/// `(version, checksum)` of every migration applied in tenant `$1`.
pub fn applied(registry: &Tenant) -> String {
    format!(
        "SELECT version, checksum FROM {}.migrations WHERE tenant = $1 ORDER BY version",
        q(registry)
    )
}

/// Per tenant: its name, and its applied versions and checksums (for status and dry runs).
pub fn applied_all(registry: &Tenant) -> String {
    let r = q(registry);
    format!(
        "SELECT t.name,
    COALESCE(array_agg(m.version ORDER BY m.version) FILTER (WHERE m.version IS NOT NULL), '{{}}'),
    COALESCE(array_agg(m.checksum ORDER BY m.version) FILTER (WHERE m.version IS NOT NULL), '{{}}')
FROM {r}.tenants t LEFT JOIN {r}.migrations m ON m.tenant = t.name
GROUP BY t.name ORDER BY t.name"
    )
}

/// One catalog query for `migrate_all`: every tenant and whether it lacks any of the expected
/// migrations (`$1` versions, `$2` checksums, paired by position) or has one with another
/// checksum. An index probe per tenant and migration; no round trip per tenant.
pub fn behind(registry: &Tenant) -> String {
    let r = q(registry);
    format!(
        "SELECT t.name, EXISTS (
    SELECT 1 FROM unnest($1::bigint[], $2::bytea[]) AS e(version, checksum)
    WHERE NOT EXISTS (
        SELECT 1 FROM {r}.migrations m
        WHERE m.tenant = t.name AND m.version = e.version AND m.checksum = e.checksum))
FROM {r}.tenants t ORDER BY t.name"
    )
}

/// Records applied migrations of tenant `$1`: `$2` versions, `$3` descriptions, `$4` checksums,
/// `$5` execution times in milliseconds.
pub fn record_applied(registry: &Tenant) -> String {
    format!(
        "INSERT INTO {}.migrations (tenant, version, description, checksum, execution_ms)
SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bytea[], $5::bigint[])",
        q(registry)
    )
}

/// Forgets reverted migrations of tenant `$1`: `$2` versions.
pub fn forget_applied(registry: &Tenant) -> String {
    format!(
        "DELETE FROM {}.migrations WHERE tenant = $1 AND version = ANY($2)",
        q(registry)
    )
}

/// `CREATE SCHEMA "t"`.
pub fn create_schema(tenant: &Tenant) -> String {
    format!("CREATE SCHEMA {}", q(tenant))
}

/// `DROP SCHEMA "t" CASCADE`.
pub fn drop_schema(tenant: &Tenant) -> String {
    format!("DROP SCHEMA {} CASCADE", q(tenant))
}

/// `ALTER SCHEMA "old" RENAME TO "new"`.
pub fn rename_schema(old: &Tenant, new: &Tenant) -> String {
    format!("ALTER SCHEMA {} RENAME TO {}", q(old), q(new))
}

/// Points unqualified names of migration SQL at the tenant, for the current transaction only
/// (`SET LOCAL` ends with it, so the pooled connection is not left changed). `public` stays
/// on the path so shared types and extension functions resolve.
pub fn set_local_search_path(tenant: &Tenant) -> String {
    let mut out = String::from("SET LOCAL search_path TO ");
    Postgres::quote_ident(&mut out, tenant.as_str());
    out.push_str(", ");
    quote_ident_into(&mut out, "public");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> Tenant {
        Tenant::new(name).unwrap()
    }

    #[test]
    fn statements_quote_every_schema() {
        let reg = t("_tenancy");
        assert_eq!(
            register(&reg),
            r#"INSERT INTO "_tenancy".tenants (name) VALUES ($1)"#
        );
        assert_eq!(
            lock_tenant(&reg),
            "SELECT pg_advisory_xact_lock(hashtextextended('tenancy:_tenancy:' || $1, 0))"
        );
        assert_eq!(create_schema(&t("acme")), r#"CREATE SCHEMA "acme""#);
        assert_eq!(drop_schema(&t("acme")), r#"DROP SCHEMA "acme" CASCADE"#);
        assert_eq!(
            rename_schema(&t("a"), &t("b")),
            r#"ALTER SCHEMA "a" RENAME TO "b""#
        );
        assert_eq!(
            set_local_search_path(&t("acme")),
            r#"SET LOCAL search_path TO "acme", "public""#
        );
        assert!(ensure_registry(&reg).contains(r#"CREATE SCHEMA IF NOT EXISTS "_tenancy";"#));
        assert!(behind(&reg).contains(r#"FROM "_tenancy".tenants t ORDER BY t.name"#));
    }

    #[test]
    fn literals_double_quotes() {
        assert_eq!(literal("it's"), "'it''s'");
    }
}
