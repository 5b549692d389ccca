//! Why a request got no tenant, and the response that says so.

use std::fmt;

use axum::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tenancy_core::{InvalidTenantName, NameRule, Tenant, MAX_TENANT_NAME_LEN};

/// Why a request could not be given a tenant: the layer's refusal and the extractor's
/// rejection.
///
/// Its response is JSON, `{"error": code, "message": text}` with the [`status`](Self::status)
/// and [`code`](Self::code) below, `Content-Type: application/json` and
/// `X-Content-Type-Options: nosniff`. The message never contains the raw input, only fixed text
/// and, for [`Unknown`](Self::Unknown), the tenant name, which passed the naming rule.
///
/// | variant | status | code |
/// | --- | --- | --- |
/// | [`Missing`](Self::Missing) | 400 | `missing_tenant` |
/// | [`Ambiguous`](Self::Ambiguous) | 400 | `ambiguous_tenant` |
/// | [`Malformed`](Self::Malformed) | 400 | `malformed_tenant` |
/// | [`Unknown`](Self::Unknown) | 404 | `unknown_tenant` |
/// | [`LookupFailed`](Self::LookupFailed) | 503 | `tenant_lookup_failed` |
/// | [`LayerMissing`](Self::LayerMissing) | 500 | `tenant_layer_missing` |
#[derive(Debug)]
#[non_exhaustive]
pub enum TenantRejection {
    /// No resolver found a tenant name and one is required.
    Missing,
    /// The request names more than one tenant where a resolver looks (its header given twice,
    /// see [`Resolve::names_several`](crate::Resolve::names_several)). Refused whether or not a
    /// tenant is required.
    Ambiguous,
    /// The name found breaks the naming rule. The error holds the raw name (truncated) for
    /// logs; the response does not.
    Malformed(InvalidTenantName),
    /// The name is valid but no such tenant exists.
    Unknown(Tenant),
    /// Whether the tenant exists could not be checked (e.g. the database is unreachable). The
    /// error is for logs; the response does not show it.
    LookupFailed(tenancy_core::Error),
    /// [`CurrentTenant`](crate::CurrentTenant) was extracted on a route without
    /// [`TenantLayer`](crate::TenantLayer): a programming error.
    LayerMissing,
}

impl TenantRejection {
    /// The response status.
    pub fn status(&self) -> StatusCode {
        match self {
            TenantRejection::Missing
            | TenantRejection::Ambiguous
            | TenantRejection::Malformed(_) => StatusCode::BAD_REQUEST,
            TenantRejection::Unknown(_) => StatusCode::NOT_FOUND,
            TenantRejection::LookupFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            TenantRejection::LayerMissing => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code in the response's `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            TenantRejection::Missing => "missing_tenant",
            TenantRejection::Ambiguous => "ambiguous_tenant",
            TenantRejection::Malformed(_) => "malformed_tenant",
            TenantRejection::Unknown(_) => "unknown_tenant",
            TenantRejection::LookupFailed(_) => "tenant_lookup_failed",
            TenantRejection::LayerMissing => "tenant_layer_missing",
        }
    }
}

/// The broken rule in words, without the offending character: part of a response.
fn rule_text(rule: &NameRule) -> String {
    match rule {
        NameRule::Empty => "it is empty".into(),
        NameRule::TooLong { .. } => format!("it is longer than {MAX_TENANT_NAME_LEN} bytes"),
        NameRule::UpperCase { .. } => {
            "upper-case letters are not allowed; a tenant name holds only a-z, 0-9 and _".into()
        }
        NameRule::InvalidStart { .. } => "a tenant name starts with a-z or _".into(),
        NameRule::InvalidChar { .. } => "a tenant name holds only a-z, 0-9 and _".into(),
        NameRule::ReservedPrefix => "names starting with pg_ are reserved".into(),
        NameRule::Reserved => "the name is reserved".into(),
        _ => "it breaks the tenant naming rule".into(),
    }
}

impl fmt::Display for TenantRejection {
    /// The response's message: fixed text, never the raw input.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantRejection::Missing => f.write_str("the request names no tenant"),
            TenantRejection::Ambiguous => f.write_str(
                "the request names two or more tenants (a header given more than once); name one",
            ),
            TenantRejection::Malformed(err) => {
                write!(f, "malformed tenant name: {}", rule_text(&err.rule))
            }
            TenantRejection::Unknown(tenant) => write!(f, "no tenant named {tenant}"),
            TenantRejection::LookupFailed(_) => {
                f.write_str("could not check whether the tenant exists; try again later")
            }
            TenantRejection::LayerMissing => f.write_str(
                "CurrentTenant needs tenancy_axum::TenantLayer on this route; \
                 add it with Router::layer",
            ),
        }
    }
}

impl std::error::Error for TenantRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TenantRejection::Malformed(err) => Some(err),
            TenantRejection::LookupFailed(err) => Some(err),
            _ => None,
        }
    }
}

impl IntoResponse for TenantRejection {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        let mut response = (self.status(), body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_message_does_not_echo_the_input() {
        let hostile = "x\"; DROP SCHEMA public CASCADE; --<script>";
        for input in [hostile, "Xy", &"a".repeat(10_000), "", "pg_x", "public"] {
            let err = Tenant::new(input).unwrap_err();
            let message = TenantRejection::Malformed(err).to_string();
            assert!(message.len() < 100, "{message}");
            assert!(
                !message.contains('"') && !message.contains('<'),
                "{message}"
            );
            if input.len() > 2 {
                assert!(!message.contains(input), "{message}");
            }
        }
    }

    #[test]
    fn statuses_and_codes() {
        let unknown = TenantRejection::Unknown(Tenant::new("acme").unwrap());
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert_eq!(unknown.code(), "unknown_tenant");
        assert_eq!(unknown.to_string(), "no tenant named acme");
        assert_eq!(TenantRejection::Missing.status(), StatusCode::BAD_REQUEST);
        let response = TenantRejection::LayerMissing.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    }
}
