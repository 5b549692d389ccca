//! The extractor that hands a handler its tenant.

use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use tenancy_core::Tenant;

use crate::layer::Resolved;
use crate::rejection::TenantRejection;

/// The request's tenant, resolved and checked by [`TenantLayer`](crate::TenantLayer).
///
/// - `CurrentTenant` requires one: without a tenant (the layer let the request through with
///   [`WhenMissing::Continue`](crate::WhenMissing::Continue)) it rejects with 400.
/// - `Option<CurrentTenant>` is `None` for such requests.
/// - Either rejects with 500 ([`TenantRejection::LayerMissing`]) when the route has no
///   `TenantLayer`, so a forgotten layer is loud rather than tenant-less.
///
/// Dereferences to [`Tenant`].
///
/// ```
/// use tenancy_axum::CurrentTenant;
///
/// async fn whoami(CurrentTenant(tenant): CurrentTenant) -> String {
///     format!("you are in {tenant}")
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CurrentTenant(pub Tenant);

impl CurrentTenant {
    /// The tenant.
    pub fn into_inner(self) -> Tenant {
        self.0
    }
}

impl Deref for CurrentTenant {
    type Target = Tenant;

    fn deref(&self) -> &Tenant {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentTenant {
    type Rejection = TenantRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        <Self as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
            .await?
            .ok_or(TenantRejection::Missing)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for CurrentTenant {
    type Rejection = TenantRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if parts.extensions.get::<Resolved>().is_none() {
            return Err(TenantRejection::LayerMissing);
        }
        Ok(parts.extensions.get::<Tenant>().cloned().map(CurrentTenant))
    }
}
