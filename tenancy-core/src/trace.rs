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

/// Span functions: each `fn name(args) = level!("span name", fields…)` a function
/// `name::<B>(operation, args…)` opening that span with `db.system` and `db.operation.name`
/// before the fields, and without the feature a no-op.
macro_rules! spans {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),*) = $level:ident!($span:literal, $($field:tt)*);
    )*) => {$(
        $(#[$doc])*
        #[allow(unused_variables)]
        #[cfg_attr(not(feature = "tracing"), allow(clippy::extra_unused_type_parameters))]
        pub(crate) fn $name<B: Backend>(operation: &'static str, $($arg: $ty),*) -> Span {
            #[cfg(feature = "tracing")]
            return tracing::$level!(
                $span,
                db.system = B::DB_SYSTEM,
                db.operation.name = operation,
                $($field)*
            );
            #[cfg(not(feature = "tracing"))]
            Span
        }
    )*};
}

spans! {
    /// One generated statement on `tenant`'s `table`.
    fn statement(tenant: &Tenant, table: &str, sql: &str) = debug_span!(
        "tenancy.statement",
        db.collection.name = table, db.query.text = sql, tenancy.tenant = %tenant
    );
    /// One generated statement on the `table` of `tenants` tenants at once.
    fn across(tenants: usize, table: &str, sql: &str) = debug_span!(
        "tenancy.statement",
        db.collection.name = table, db.query.text = sql, tenancy.tenants = tenants
    );
    /// A lifecycle operation (`create`, `drop`, `rename`, `for_each`) on one tenant.
    fn lifecycle(tenant: &Tenant) = info_span!("tenancy.lifecycle", tenancy.tenant = %tenant);
    /// Migrating (or rolling back) one tenant to version `target`.
    fn migration(tenant: &Tenant, target: Option<i64>) = info_span!(
        "tenancy.lifecycle",
        tenancy.tenant = %tenant, tenancy.migration.target = target
    );
    /// A run over many tenants (`migrate_all`, `rollback_all`, `for_each`).
    fn run(target: Option<i64>) = info_span!("tenancy.run", tenancy.migration.target = target);
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
