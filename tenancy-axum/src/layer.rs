//! The tower layer that resolves each request's tenant once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::request::Parts;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use tenancy_core::{context, Error, Lifecycle, Tenant, TenantNamePolicy, Tenants};
use tower_layer::Layer;
use tower_service::Service;

use crate::cache::TenantCache;
use crate::rejection::TenantRejection;
use crate::resolve::Resolve;

/// What to do with a request in which no resolver finds a tenant name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenMissing {
    /// Answer 400 ([`TenantRejection::Missing`]). The default.
    #[default]
    Reject,
    /// Pass the request on without a tenant; handlers take `Option<CurrentTenant>`. Malformed
    /// and unknown names are still refused.
    Continue,
}

/// Marks a request the layer has seen, so the extractor can tell "no tenant" from "no layer".
/// Private, so nothing else can insert it.
#[derive(Clone, Copy)]
pub(crate) struct Resolved;

/// A tower [`Layer`] that resolves the tenant of every request once, before the handler runs.
///
/// For each request it
/// 1. asks the resolver for a raw candidate name (see [`Resolve`]);
/// 2. validates it with the naming policy: malformed → 400;
/// 3. checks it exists through the [`TenantCache`]: unknown → 404;
/// 4. puts the [`Tenant`] into the request extensions, where
///    [`CurrentTenant`](crate::CurrentTenant) (or `Extension<Tenant>`) finds it, and runs the
///    inner service's future with it as the
///    [current tenant](tenancy_core::context::current).
///
/// No name found → 400, or pass-through with [`WhenMissing::Continue`]; two or more names
/// (a header given twice) → 400 either way. Refusals are
/// [`TenantRejection`] responses.
///
/// Generic over the lifecycle handle like its [`TenantCache`]: [`Tenants`] (PostgreSQL) by
/// default, `Tenants<MySql>` or any [`Lifecycle`].
///
/// Cheap to clone.
pub struct TenantLayer<L = Tenants> {
    resolver: Arc<dyn Resolve>,
    cache: TenantCache<L>,
    policy: Option<Arc<TenantNamePolicy>>,
    when_missing: WhenMissing,
}

impl<L> Clone for TenantLayer<L> {
    fn clone(&self) -> Self {
        TenantLayer {
            resolver: Arc::clone(&self.resolver),
            cache: self.cache.clone(),
            policy: self.policy.clone(),
            when_missing: self.when_missing,
        }
    }
}

impl<L> fmt::Debug for TenantLayer<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantLayer")
            .field("cache", &self.cache)
            .field("policy", &self.policy)
            .field("when_missing", &self.when_missing)
            .finish_non_exhaustive()
    }
}

impl<L: Lifecycle> TenantLayer<L> {
    /// A layer that finds the name with `resolver` and checks it against `cache`. Names are
    /// validated with the policy of the cache's [`Tenants`](tenancy_core::Tenants) handle
    /// ([`Tenants::parse`](tenancy_core::Tenants::parse)), which also reserves its registry.
    pub fn new(cache: TenantCache<L>, resolver: impl Resolve) -> Self {
        TenantLayer {
            resolver: Arc::new(resolver),
            cache,
            policy: None,
            when_missing: WhenMissing::Reject,
        }
    }

    /// Validates names with `policy` instead of the handle's, e.g. to reserve subdomains such
    /// as `www` that the handle itself need not know about. A name the handle's policy refuses
    /// is still refused (400) when it is looked up.
    pub fn with_policy(mut self, policy: TenantNamePolicy) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// What to do when no resolver finds a name (default: [`WhenMissing::Reject`]).
    pub fn when_missing(mut self, when_missing: WhenMissing) -> Self {
        self.when_missing = when_missing;
        self
    }

    /// The cache the layer checks names against.
    pub fn cache(&self) -> &TenantCache<L> {
        &self.cache
    }

    /// Resolves the tenant of a request head, as the layer does: `Ok(None)` only with
    /// [`WhenMissing::Continue`]. For middleware of your own (e.g. with
    /// `axum::middleware::from_fn`).
    ///
    /// # Errors
    ///
    /// The [`TenantRejection`] the layer would answer with.
    pub async fn resolve(&self, parts: &Parts) -> Result<Option<Tenant>, TenantRejection> {
        let Some(tenant) = self.candidate(parts)? else {
            return match self.when_missing {
                WhenMissing::Reject => Err(TenantRejection::Missing),
                WhenMissing::Continue => Ok(None),
            };
        };
        match self.cache.placed(&tenant).await {
            Ok(Some(placed)) => Ok(Some(placed)),
            Ok(None) => Err(TenantRejection::Unknown(tenant)),
            Err(err) => Err(refusal(err)),
        }
    }

    /// The validated candidate; synchronous, so the raw name never outlives this call.
    fn candidate(&self, parts: &Parts) -> Result<Option<Tenant>, TenantRejection> {
        let Some(raw) = self.resolver.resolve(parts) else {
            if self.resolver.names_several(parts) {
                return Err(TenantRejection::Ambiguous);
            }
            return Ok(None);
        };
        let parsed = match &self.policy {
            Some(policy) => policy.parse(&*raw).map_err(Error::from),
            None => self.cache.tenants().parse(&raw),
        };
        parsed.map(Some).map_err(refusal)
    }
}

fn refusal(err: Error) -> TenantRejection {
    match err {
        Error::InvalidTenantName(invalid) => TenantRejection::Malformed(invalid),
        other => TenantRejection::LookupFailed(other),
    }
}

impl<S, L: Lifecycle> Layer<S> for TenantLayer<L> {
    type Service = TenantService<S, L>;

    fn layer(&self, inner: S) -> Self::Service {
        TenantService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`TenantLayer`] wraps around a handler or router.
#[derive(Debug)]
pub struct TenantService<S, L = Tenants> {
    inner: S,
    layer: TenantLayer<L>,
}

impl<S: Clone, L> Clone for TenantService<S, L> {
    fn clone(&self) -> Self {
        TenantService {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S, B, L> Service<Request<B>> for TenantService<S, L>
where
    L: Lifecycle,
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match layer.resolve(&parts).await {
                Ok(tenant) => {
                    parts.extensions.insert(Resolved);
                    // The layer is the authority: no tenant left by earlier middleware survives.
                    match &tenant {
                        Some(tenant) => parts.extensions.insert(tenant.clone()),
                        None => parts.extensions.remove::<Tenant>(),
                    };
                    let call = inner.call(Request::from_parts(parts, body));
                    // The handler (and whatever it awaits) also sees the tenant as the current
                    // one (`tenancy::context`), e.g. for code that cannot take an extractor.
                    let response = match tenant {
                        Some(tenant) => context::with_tenant(tenant, call).await?,
                        None => call.await?,
                    };
                    Ok(response.into_response())
                }
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}
