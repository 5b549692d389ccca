//! The current tenant of a task: set it once (per request, per job) and read it wherever the
//! code needs it, without passing it through every call.
//!
//! It is a tokio task-local: [`with_tenant`] runs a future with a tenant, [`current`] and
//! [`require`] read it inside that future, and [`spawn`] starts a task that keeps the caller's
//! tenant (a plain `tokio::spawn` does not: a new task starts without one). The axum layer of
//! `tenancy-axum` runs every request's handler inside [`with_tenant`].
//!
//! The context only *names* the tenant; every statement still takes its tenant explicitly, so
//! a query can never pick up a tenant it did not ask for.
//!
//! ```
//! use tenancy_core::{context, Error, Tenant};
//!
//! async fn job() -> Result<String, Error> {
//!     let tenant = context::require()?; // Err(Error::NoCurrentTenant) outside `with_tenant`
//!     Ok(format!("working for {tenant}"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let acme = Tenant::new("acme")?;
//! assert_eq!(context::with_tenant(acme, job()).await?, "working for acme");
//! assert!(matches!(job().await, Err(Error::NoCurrentTenant)));
//! # Ok(()) }
//! ```

use std::future::Future;

use tokio::task::JoinHandle;

use crate::error::Error;
use crate::tenant::Tenant;

tokio::task_local! {
    static CURRENT: Tenant;
}

/// Runs `future` with `tenant` as the current tenant (inside it, [`current`] returns it). An
/// inner `with_tenant` overrides an outer one for its own future.
pub async fn with_tenant<F: Future>(tenant: Tenant, future: F) -> F::Output {
    CURRENT.scope(tenant, future).await
}

/// Runs `f` with `tenant` as the current tenant, for synchronous code.
pub fn with_tenant_sync<R>(tenant: Tenant, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(tenant, f)
}

/// The current tenant, if the task runs inside [`with_tenant`] (or a request of the axum
/// layer).
pub fn current() -> Option<Tenant> {
    CURRENT.try_with(Tenant::clone).ok()
}

/// The current tenant, or [`Error::NoCurrentTenant`] when there is none: for code that must
/// never run without one.
pub fn require() -> Result<Tenant, Error> {
    current().ok_or(Error::NoCurrentTenant)
}

/// `future`, made to run with the caller's current tenant (if any) wherever it is polled: for
/// a `JoinSet`, `spawn_blocking`'s runtime handle, or any executor of your own.
pub fn inherit<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let tenant = current();
    async move {
        match tenant {
            Some(tenant) => with_tenant(tenant, future).await,
            None => future.await,
        }
    }
}

/// `tokio::spawn`, keeping the caller's current tenant (if any) for the new task.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(inherit(future))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> Tenant {
        Tenant::new(name).unwrap()
    }

    #[tokio::test]
    async fn inner_scope_overrides_and_ends() {
        assert_eq!(current(), None);
        with_tenant(t("outer"), async {
            assert_eq!(current(), Some(t("outer")));
            with_tenant(t("inner"), async {
                assert_eq!(current(), Some(t("inner")))
            })
            .await;
            assert_eq!(current(), Some(t("outer")));
        })
        .await;
        assert_eq!(current(), None);
    }

    #[tokio::test]
    async fn sync_scope() {
        assert_eq!(with_tenant_sync(t("acme"), current), Some(t("acme")));
        assert!(matches!(require(), Err(Error::NoCurrentTenant)));
    }
}
