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
        fn $name:ident($($arg:ident: $ty:ty),*) = $level:ident $span:literal { $($field:tt)* }
    )*) => {$(
        $(#[$doc])*
        #[allow(unused_variables)]
        #[cfg_attr(not(feature = "tracing"), allow(clippy::extra_unused_type_parameters))]
        pub(crate) fn $name<B: Backend>(operation: &'static str, $($arg: $ty),*) -> Span {
            #[cfg(feature = "tracing")]
            {
                if unheard(tracing::Level::$level) {
                    return Span::none();
                }
                tracing::span!(
                    tracing::Level::$level,
                    $span,
                    db.system = B::DB_SYSTEM,
                    db.operation.name = operation,
                    $($field)*
                )
            }
            #[cfg(not(feature = "tracing"))]
            Span
        }
    )*};
}

/// Whether a span at `level` would reach nobody: no subscriber wants that level, and either a
/// subscriber is set or the `log` crate's logger (tracing's fallback when none is, which sqlx
/// turns on) is below it. Such a span is not built at all: building a disabled one still
/// formats its fields for the fallback, and awaiting inside it still enters and leaves it.
#[cfg(feature = "tracing")]
fn unheard(level: tracing::Level) -> bool {
    let log = match level {
        tracing::Level::ERROR => log::LevelFilter::Error,
        tracing::Level::WARN => log::LevelFilter::Warn,
        tracing::Level::INFO => log::LevelFilter::Info,
        tracing::Level::DEBUG => log::LevelFilter::Debug,
        tracing::Level::TRACE => log::LevelFilter::Trace,
    };
    level > tracing::level_filters::LevelFilter::current()
        && (tracing::dispatcher::has_been_set() || log::max_level() < log)
}

spans! {
    /// One generated statement on `tenant`'s `table`.
    fn statement(tenant: &Tenant, table: &str, sql: &str) = DEBUG "tenancy.statement" {
        db.collection.name = table, db.query.text = sql, tenancy.tenant = %tenant
    }
    /// One generated statement on the `table` of `tenants` tenants at once.
    fn across(tenants: usize, table: &str, sql: &str) = DEBUG "tenancy.statement" {
        db.collection.name = table, db.query.text = sql, tenancy.tenants = tenants
    }
    /// A lifecycle operation (`create`, `drop`, `rename`, `for_each`) on one tenant.
    fn lifecycle(tenant: &Tenant) = INFO "tenancy.lifecycle" { tenancy.tenant = %tenant }
    /// Migrating (or rolling back) one tenant to version `target`.
    fn migration(tenant: &Tenant, target: Option<i64>) = INFO "tenancy.lifecycle" {
        tenancy.tenant = %tenant, tenancy.migration.target = target
    }
    /// A run over many tenants (`migrate_all`, `rollback_all`, `for_each`).
    fn run(target: Option<i64>) = INFO "tenancy.run" { tenancy.migration.target = target }
}

/// `$future.await` inside `$span` (a span nobody hears is not entered), written where it is
/// awaited: a hot path's future (a statement's) is built in place instead of being moved into
/// [`within`]'s.
macro_rules! in_span {
    ($span:expr, $future:expr) => {{
        let span: $crate::trace::Span = $span;
        #[cfg(feature = "tracing")]
        let output = if span.is_none() {
            $future.await
        } else {
            tracing::Instrument::instrument($future, span).await
        };
        #[cfg(not(feature = "tracing"))]
        let output = {
            let _ = span;
            $future.await
        };
        output
    }};
}
pub(crate) use in_span;

/// Runs `future` inside `span` (a span nobody hears is not entered).
pub(crate) async fn within<F: Future>(span: Span, future: F) -> F::Output {
    in_span!(span, future)
}
