//! The spans of library operations (feature `tracing`); without the feature every function
//! here is a no-op the compiler removes.
//!
//! Field names follow tracing's dotted convention and OpenTelemetry's database conventions
//! where they fit: `db.system` (`"postgresql"`, `"mysql"` or `"sqlite"`), `db.operation.name`,
//! `db.collection.name` (the model's table), `db.query.text` (the generated SQL: values are
//! placeholders, so it holds no data); and `tenancy.tenant`, `tenancy.tenants` (how many),
//! `tenancy.migration.target` (the version a migration or rollback goes to). Statements are
//! `DEBUG` spans named `tenancy.statement`; lifecycle operations and runs across tenants are
//! `INFO` spans named `tenancy.<operation>`.

use std::future::Future;

use crate::backend::Backend;
use crate::tenant::Tenant;

#[cfg(feature = "tracing")]
pub(crate) use tracing::Span;

/// Stands in for `tracing::Span` without the feature.
#[cfg(not(feature = "tracing"))]
#[derive(Clone)]
pub(crate) struct Span;

/// One generated statement on `tenant`'s `table`.
#[allow(unused_variables)]
pub(crate) fn statement<B: Backend>(
    operation: &'static str,
    tenant: &Tenant,
    table: &str,
    sql: &str,
) -> Span {
    #[cfg(feature = "tracing")]
    return tracing::debug_span!(
        "tenancy.statement",
        db.system = B::DB_SYSTEM,
        db.operation.name = operation,
        db.collection.name = table,
        db.query.text = sql,
        tenancy.tenant = %tenant,
    );
    #[cfg(not(feature = "tracing"))]
    Span
}

/// One generated statement on the `table` of `tenants` tenants at once.
#[allow(unused_variables)]
pub(crate) fn across<B: Backend>(
    operation: &'static str,
    tenants: usize,
    table: &str,
    sql: &str,
) -> Span {
    #[cfg(feature = "tracing")]
    return tracing::debug_span!(
        "tenancy.statement",
        db.system = B::DB_SYSTEM,
        db.operation.name = operation,
        db.collection.name = table,
        db.query.text = sql,
        tenancy.tenants = tenants,
    );
    #[cfg(not(feature = "tracing"))]
    Span
}

/// A lifecycle operation (`create`, `drop`, `rename`, `for_each`) on one tenant.
#[allow(unused_variables)]
pub(crate) fn lifecycle<B: Backend>(operation: &'static str, tenant: &Tenant) -> Span {
    #[cfg(feature = "tracing")]
    return tracing::info_span!(
        "tenancy.lifecycle",
        db.system = B::DB_SYSTEM,
        db.operation.name = operation,
        tenancy.tenant = %tenant,
    );
    #[cfg(not(feature = "tracing"))]
    Span
}

/// Migrating (or rolling back) one tenant to version `target`.
#[allow(unused_variables)]
pub(crate) fn migration<B: Backend>(
    operation: &'static str,
    tenant: &Tenant,
    target: Option<i64>,
) -> Span {
    #[cfg(feature = "tracing")]
    return tracing::info_span!(
        "tenancy.lifecycle",
        db.system = B::DB_SYSTEM,
        db.operation.name = operation,
        tenancy.tenant = %tenant,
        tenancy.migration.target = target,
    );
    #[cfg(not(feature = "tracing"))]
    Span
}

/// A run over many tenants (`migrate_all`, `rollback_all`, `for_each`).
#[allow(unused_variables)]
pub(crate) fn run<B: Backend>(operation: &'static str, target: Option<i64>) -> Span {
    #[cfg(feature = "tracing")]
    return tracing::info_span!(
        "tenancy.run",
        db.system = B::DB_SYSTEM,
        db.operation.name = operation,
        tenancy.migration.target = target,
    );
    #[cfg(not(feature = "tracing"))]
    Span
}

/// Runs `future` inside `span`.
pub(crate) async fn within<F: Future>(span: Span, future: F) -> F::Output {
    #[cfg(feature = "tracing")]
    return tracing::Instrument::instrument(future, span).await;
    #[cfg(not(feature = "tracing"))]
    {
        let _ = span;
        future.await
    }
}
