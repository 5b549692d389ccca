//! The tenant of each request, for [axum](https://docs.rs/axum) and tower services using
//! [`tenancy`](https://docs.rs/tenancy). Also available as `tenancy::axum` with the `axum`
//! feature of the facade crate.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use tenancy_axum::{CurrentTenant, Header, Resolve, Subdomain, TenantCache, TenantLayer};
//!
//! async fn guards(CurrentTenant(tenant): CurrentTenant) -> String {
//!     format!("the guards of {tenant}") // e.g. Guard::query(&tenant).fetch_all(&pool)
//! }
//!
//! # fn app(tenants: tenancy_core::Tenants) -> Router {
//! // `tenants` is the lifecycle handle (`Tenants::new(pool, migrator)`).
//! let cache = TenantCache::new(&tenants);
//! let resolver = Subdomain::new("example.com").or(Header::new("x-tenant"));
//! Router::new()
//!     .route("/guards", get(guards))
//!     .layer(TenantLayer::new(cache, resolver))
//! # }
//! ```
//!
//! # Pieces
//!
//! - Resolvers ([`Resolve`]) find the raw name a request carries: [`Subdomain`] of a base
//!   domain, a [`Header`], a [`PathSegment`], or a closure ([`from_fn`]); [`Resolve::or`] chains
//!   them and the first name found wins.
//! - [`TenantLayer`] resolves once per request: it validates the name with the naming policy,
//!   checks the tenant exists, and stores the [`Tenant`](tenancy_core::Tenant) in the request
//!   extensions.
//! - [`CurrentTenant`] is the extractor handlers take (`Option<CurrentTenant>` when the tenant
//!   is optional).
//! - [`TenantCache`] answers "does this tenant exist?" without a catalog query per request,
//!   with an expiry, a size bound, and updates from the lifecycle handle.
//!
//! The cache and the layer take any lifecycle handle ([`Lifecycle`](tenancy_core::Lifecycle)):
//! `Tenants` (PostgreSQL, the default type parameter) or, with tenancy's `mysql` feature,
//! `Tenants<MySql>` (a database per tenant); `TenantCache::new(&tenants)` infers which.
//! - [`TenantRejection`] is every refusal and its response.
//!
//! # Refusals
//!
//! | the request | status | `error` |
//! | --- | --- | --- |
//! | names no tenant (and one is required, the default) | 400 | `missing_tenant` |
//! | names two or more (e.g. `X-Tenant` given twice), required or not | 400 | `ambiguous_tenant` |
//! | names one that breaks the naming rule (`Acme`: "upper-case letters are not allowed"; `a.b`, `pg_x`, 64+ bytes, …) | 400 | `malformed_tenant` |
//! | names a valid one that does not exist | 404 | `unknown_tenant` |
//! | the existence check failed (database down) | 503 | `tenant_lookup_failed` |
//!
//! Bodies are short JSON (`{"error":"unknown_tenant","message":"no tenant named acme"}`), never
//! HTML, and never echo the raw input: only fixed text, plus the tenant name in a 404, which has
//! passed the naming rule (`[a-z_][a-z0-9_]*`).
//!
//! # Case
//!
//! Host names are case-insensitive, so [`Subdomain`] lower-cases the host: `ACME.example.com`
//! is tenant `acme`. Every other source is taken as is: `X-Tenant: Acme` is malformed, since
//! tenant names are lower case and a header or path is not a host name.

#![warn(missing_docs)]

mod cache;
mod extract;
mod layer;
mod rejection;
mod resolve;

pub use cache::{CacheConfig, Clock, SystemClock, TenantCache};
pub use extract::CurrentTenant;
pub use layer::{TenantLayer, TenantService, WhenMissing};
pub use rejection::TenantRejection;
pub use resolve::{from_fn, FromFn, Header, Or, PathSegment, Resolve, Subdomain};
