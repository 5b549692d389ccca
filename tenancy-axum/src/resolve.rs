//! Where a request names its tenant.
//!
//! A resolver reads the request head and returns the *raw candidate*: the name exactly as the
//! request carries it, unvalidated, or `None` when the request does not name a tenant in the way
//! this resolver looks for. Validation (naming rule, then existence) is the layer's job, so a
//! resolver never decides whether a name is acceptable.
//!
//! Resolvers chain with [`Resolve::or`]: the first candidate wins, **even if it later proves
//! malformed or unknown**. A request cannot pick its tenant through a later resolver by sending
//! garbage to an earlier one.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use axum::http::header::{HeaderName, HOST};
use axum::http::request::Parts;
use axum::http::HeaderMap;

/// Finds the raw tenant name a request carries.
///
/// Implement it for your own source, or wrap a closure with [`from_fn`].
pub trait Resolve: Send + Sync + 'static {
    /// The raw candidate name in `parts`, or `None` if the request names no tenant here.
    fn resolve<'a>(&self, parts: &'a Parts) -> Option<Cow<'a, str>>;

    /// Whether the request names more than one tenant where this resolver looks (e.g. its
    /// header occurs twice), which is why [`resolve`](Self::resolve) gives no candidate. The
    /// layer then refuses the request as
    /// [`TenantRejection::Ambiguous`](crate::TenantRejection::Ambiguous) (400), and a chain
    /// ([`or`](Self::or)) does not ask the next resolver. `false` by default.
    fn names_several(&self, parts: &Parts) -> bool {
        let _ = parts;
        false
    }

    /// Tries `self` first and `next` only when `self` finds no candidate.
    ///
    /// ```
    /// use tenancy_axum::{Header, Resolve, Subdomain};
    ///
    /// let resolver = Subdomain::new("example.com").or(Header::new("x-tenant"));
    /// ```
    fn or<R: Resolve>(self, next: R) -> Or<Self, R>
    where
        Self: Sized,
    {
        Or { first: self, next }
    }
}

impl<R: Resolve + ?Sized> Resolve for Box<R> {
    fn resolve<'a>(&self, parts: &'a Parts) -> Option<Cow<'a, str>> {
        (**self).resolve(parts)
    }

    fn names_several(&self, parts: &Parts) -> bool {
        (**self).names_several(parts)
    }
}

impl<R: Resolve + ?Sized> Resolve for Arc<R> {
    fn resolve<'a>(&self, parts: &'a Parts) -> Option<Cow<'a, str>> {
        (**self).resolve(parts)
    }

    fn names_several(&self, parts: &Parts) -> bool {
        (**self).names_several(parts)
    }
}

/// Two resolvers in order; built by [`Resolve::or`].
#[derive(Debug, Clone)]
pub struct Or<A, B> {
    first: A,
    next: B,
}

impl<A: Resolve, B: Resolve> Resolve for Or<A, B> {
    /// The first resolver's candidate; the next one's only when the first finds none and does
    /// not [name several](Resolve::names_several).
    fn resolve<'a>(&self, parts: &'a Parts) -> Option<Cow<'a, str>> {
        self.first.resolve(parts).or_else(|| {
            if self.first.names_several(parts) {
                None
            } else {
                self.next.resolve(parts)
            }
        })
    }

    fn names_several(&self, parts: &Parts) -> bool {
        self.first.names_several(parts)
            || (self.first.resolve(parts).is_none() && self.next.names_several(parts))
    }
}

/// The tenant is the subdomain of a base domain: `acme.example.com` → `acme`.
///
/// - The host comes from the request target's authority when it has one (HTTP/2, absolute-form
///   HTTP/1.1 requests, which must win over `Host` per RFC 9112 §3.2.2), otherwise from the
///   `Host` header. `X-Forwarded-Host` and `Forwarded` are **not** read: clients can forge them.
///   Behind a proxy, have it pass `Host` through, or write a [`from_fn`] resolver that trusts
///   exactly the header your proxy sets.
/// - A `:port` is ignored, and so is one trailing dot (`acme.example.com.` is the same host).
/// - Host names are case-insensitive (RFC 4343), so the host is lower-cased (ASCII) before
///   matching: `ACME.Example.COM` resolves to `acme`.
/// - The candidate is everything in front of `.<base>`. It is meant to be one label;
///   `a.b.example.com` gives the candidate `a.b`, which the naming rule refuses (malformed,
///   400), and so does an empty label (`.example.com`).
/// - A host that is not under the base domain (`evil.com`, `acme.example.com.evil.com`, an IP
///   address), the bare base domain itself, a host with a malformed port, and a request with
///   several `Host` headers name no tenant (`None`): the request was not addressed to a tenant.
///
/// Reserve the subdomains you use for other purposes (`www`, `api`) in the
/// [`TenantNamePolicy`](tenancy_core::TenantNamePolicy) so they are refused rather than
/// looked up.
#[derive(Debug, Clone)]
pub struct Subdomain {
    /// `.` followed by the lower-cased base domain.
    suffix: String,
}

impl Subdomain {
    /// Resolves subdomains of `base_domain` (e.g. `example.com`, or `localhost` for
    /// `acme.localhost:3000`). Case and a leading or trailing dot are ignored.
    ///
    /// # Panics
    ///
    /// If `base_domain` is empty or contains a character that cannot be in a host name (`:`,
    /// `/`, whitespace, …): a configuration mistake, not a request error.
    pub fn new(base_domain: impl AsRef<str>) -> Self {
        let base = base_domain.as_ref().trim_matches('.').to_ascii_lowercase();
        assert!(
            !base.is_empty()
                && base
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')),
            "Subdomain::new: {:?} is not a domain name (no port, scheme or path)",
            base_domain.as_ref()
        );
        Subdomain {
            suffix: format!(".{base}"),
        }
    }

    /// The base domain, lower-cased.
    pub fn base_domain(&self) -> &str {
        &self.suffix[1..]
    }
}

impl Resolve for Subdomain {
    fn resolve<'a>(&self, parts: &'a Parts) -> Option<Cow<'a, str>> {
        let host = request_host(parts)?;
        let host = host.strip_suffix('.').unwrap_or(host);
        let label_len = host.len().checked_sub(self.suffix.len())?;
        let (label, suffix) = (host.get(..label_len)?, host.get(label_len..)?);
        if !suffix.eq_ignore_ascii_case(&self.suffix) {
            return None;
        }
        Some(Cow::Owned(label.to_ascii_lowercase()))
    }
}

/// The request's host name without its port, or `None` if there is none or it is ambiguous.
fn request_host(parts: &Parts) -> Option<&str> {
    if let Some(host) = parts.uri.host() {
        return Some(host);
    }
    let host = single_value(&parts.headers, &HOST)?.to_str().ok()?;
    strip_port(host)
}

fn strip_port(host: &str) -> Option<&str> {
    if host.starts_with('[') {
        return None; // an IPv6 literal is never a subdomain
    }
    match host.split_once(':') {
        None => Some(host),
        Some((name, port)) if port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(name)
        }
        Some(_) => None,
    }
}

/// The value of header `name` if it occurs exactly once. Several values are ambiguous (e.g. a
/// client's own next to one a proxy added), so they count as none.
fn single_value<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Option<&'a axum::http::HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// The tenant is the value of a request header, e.g. `X-Tenant: acme`.
///
/// The value is taken as is: **not** case-folded (`X-Tenant: Acme` is malformed, 400) and not
/// trimmed beyond what HTTP parsing already strips. An empty value is a (malformed) candidate.
/// Several occurrences of the header name several tenants: the request is refused
/// ([`TenantRejection::Ambiguous`](crate::TenantRejection::Ambiguous), 400), even when they
/// agree, and a resolver chained after this one is not asked. Bytes that are not visible ASCII
/// make a candidate that the naming rule refuses.
///
/// Only use a header a client may set itself when any client may choose any tenant (e.g. the
/// tenant is then checked against the caller's credentials), or when a proxy in front
/// overwrites it.
#[derive(Debug, Clone)]
pub struct Header {
    name: HeaderName,
}

impl Header {
    /// Resolves the value of header `name` (case-insensitive, as header names are).
    ///
    /// # Panics
    ///
    /// If `name` is not a valid header name: a configuration mistake.
    pub fn new(name: &str) -> Self {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => Header { name },
            Err(_) => panic!("Header::new: {name:?} is not a valid header name"),
        }
    }

    /// The header's name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }
}

impl From<HeaderName> for Header {
    fn from(name: HeaderName) -> Self {
        Header { name }
    }
}

impl Resolve for Header {
    fn resolve<'a>(&self, parts: &'a Parts) -> Option<Cow<'a, str>> {
        let value = single_value(&parts.headers, &self.name)?;
        Some(match value.to_str() {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(value.as_bytes()),
        })
    }

    fn names_several(&self, parts: &Parts) -> bool {
        parts.headers.get_all(&self.name).iter().nth(1).is_some()
    }
}

/// The tenant is the `index`-th segment (from 0) of the request path: with `PathSegment::new(1)`,
/// `/t/acme/guards` → `acme`.
///
/// The segment is taken as is, not percent-decoded (a tenant name never needs escaping, so an
/// escaped one is malformed). A missing or empty segment names no tenant. The path is the one the
/// layer sees: inside [`Router::nest`](axum::Router::nest) the nest prefix is already stripped,
/// so install the layer on the outer router or count from the inner path.
#[derive(Debug, Clone, Copy)]
pub struct PathSegment {
    index: usize,
}

impl PathSegment {
    /// Resolves the `index`-th path segment, counting from 0.
    pub fn new(index: usize) -> Self {
        PathSegment { index }
    }
}

impl Resolve for PathSegment {
    fn resolve<'a>(&self, parts: &'a Parts) -> Option<Cow<'a, str>> {
        let path = parts.uri.path();
        let segment = path.strip_prefix('/')?.split('/').nth(self.index)?;
        (!segment.is_empty()).then_some(Cow::Borrowed(segment))
    }
}

/// A resolver from a closure; see [`from_fn`].
#[derive(Clone)]
pub struct FromFn<F> {
    f: F,
}

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFn").finish_non_exhaustive()
    }
}

/// A resolver from a closure over the request head, for sources the built-in resolvers do not
/// cover (a query parameter, a claim of an already verified token, a header only your proxy
/// sets).
///
/// ```
/// use tenancy_axum::from_fn;
///
/// // `?tenant=acme`
/// let resolver = from_fn(|parts| {
///     parts.uri.query()?.split('&').find_map(|pair| {
///         pair.strip_prefix("tenant=").map(str::to_owned)
///     })
/// });
/// ```
pub fn from_fn<F>(f: F) -> FromFn<F>
where
    F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
{
    FromFn { f }
}

impl<F> Resolve for FromFn<F>
where
    F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
{
    fn resolve<'a>(&self, parts: &'a Parts) -> Option<Cow<'a, str>> {
        (self.f)(parts).map(Cow::Owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn host(host: &str) -> Option<String> {
        let sub = Subdomain::new("example.com");
        sub.resolve(&parts("/", &[("host", host)]))
            .map(Cow::into_owned)
    }

    #[test]
    fn subdomain_is_the_label_in_front_of_the_base() {
        assert_eq!(host("acme.example.com").as_deref(), Some("acme"));
        assert_eq!(host("acme.example.com:8080").as_deref(), Some("acme"));
        assert_eq!(host("acme.example.com:").as_deref(), Some("acme"));
        assert_eq!(host("acme.example.com.").as_deref(), Some("acme"));
    }

    #[test]
    fn subdomain_is_case_folded() {
        assert_eq!(host("TENANT_1.EXAMPLE.COM").as_deref(), Some("tenant_1"));
        assert_eq!(host("Acme.Example.Com:443").as_deref(), Some("acme"));
        let sub = Subdomain::new("Example.COM.");
        assert_eq!(sub.base_domain(), "example.com");
    }

    #[test]
    fn nested_or_empty_labels_are_candidates_the_naming_rule_refuses() {
        assert_eq!(host("a.b.example.com").as_deref(), Some("a.b"));
        assert_eq!(host(".example.com").as_deref(), Some(""));
    }

    #[test]
    fn hosts_outside_the_base_domain_name_no_tenant() {
        for h in [
            "evil.com",
            "example.com",
            "example.com:80",
            "tenant_1.example.com.evil.com",
            "tenant_1example.com",
            "tenant_1.example.com:80.evil.com",
            "tenant_1.example.com:abc",
            "tenant_1.example.com:123456",
            "[::1]:3000",
            "127.0.0.1",
            "\"; DROP SCHEMA public CASCADE; --",
            "",
        ] {
            assert_eq!(host(h), None, "{h:?}");
        }
        assert_eq!(host(&"a".repeat(10_000)), None);
    }

    #[test]
    fn subdomain_needs_exactly_one_host_header() {
        let sub = Subdomain::new("example.com");
        assert_eq!(sub.resolve(&parts("/", &[])), None);
        let two = parts("/", &[("host", "a.example.com"), ("host", "b.example.com")]);
        assert_eq!(sub.resolve(&two), None);
    }

    #[test]
    fn absolute_uri_authority_wins_over_host() {
        let sub = Subdomain::new("example.com");
        let p = parts(
            "http://acme.example.com:8080/guards",
            &[("host", "other.example.com")],
        );
        assert_eq!(sub.resolve(&p).as_deref(), Some("acme"));
    }

    #[test]
    #[should_panic(expected = "not a domain name")]
    fn subdomain_refuses_a_base_with_a_port() {
        Subdomain::new("localhost:3000");
    }

    #[test]
    fn header_value_is_taken_as_is() {
        let h = Header::new("X-Tenant");
        assert_eq!(h.name().as_str(), "x-tenant");
        let get = |value: &str| {
            h.resolve(&parts("/", &[("x-tenant", value)]))
                .map(Cow::into_owned)
        };
        assert_eq!(get("acme").as_deref(), Some("acme"));
        assert_eq!(get("Tenant1").as_deref(), Some("Tenant1"));
        assert_eq!(get("").as_deref(), Some(""));
        assert_eq!(h.resolve(&parts("/", &[])), None);
        let two = parts("/", &[("x-tenant", "a"), ("x-tenant", "b")]);
        assert_eq!(h.resolve(&two), None);
    }

    #[test]
    fn non_ascii_header_value_is_a_candidate_not_a_silent_miss() {
        let mut p = parts("/", &[]);
        p.headers.insert(
            "x-tenant",
            axum::http::HeaderValue::from_bytes(b"acm\xe9").unwrap(),
        );
        let got = Header::new("x-tenant").resolve(&p).unwrap();
        assert_eq!(got, "acm\u{fffd}");
    }

    #[test]
    fn path_segment_counts_from_zero() {
        let p = parts("/t/acme/guards?x=1", &[]);
        assert_eq!(PathSegment::new(0).resolve(&p).as_deref(), Some("t"));
        assert_eq!(PathSegment::new(1).resolve(&p).as_deref(), Some("acme"));
        assert_eq!(PathSegment::new(2).resolve(&p).as_deref(), Some("guards"));
        assert_eq!(PathSegment::new(3).resolve(&p), None);
        assert_eq!(PathSegment::new(0).resolve(&parts("/", &[])), None);
        assert_eq!(PathSegment::new(1).resolve(&parts("/t//x", &[])), None);
        let escaped = parts("/t/acme%5F1", &[]);
        assert_eq!(
            PathSegment::new(1).resolve(&escaped).as_deref(),
            Some("acme%5F1")
        );
    }

    #[test]
    fn closure_resolver() {
        let r = from_fn(|parts| {
            parts
                .uri
                .query()?
                .split('&')
                .find_map(|pair| pair.strip_prefix("tenant=").map(str::to_owned))
        });
        assert_eq!(
            r.resolve(&parts("/?a=1&tenant=acme", &[])).as_deref(),
            Some("acme")
        );
        assert_eq!(r.resolve(&parts("/?a=1", &[])), None);
    }

    #[test]
    fn chain_takes_the_first_candidate_even_if_bad() {
        let chain = Header::new("x-tenant").or(Subdomain::new("example.com"));
        let both = parts(
            "/",
            &[("host", "sub.example.com"), ("x-tenant", "Not Valid")],
        );
        assert_eq!(chain.resolve(&both).as_deref(), Some("Not Valid"));
        let host_only = parts("/", &[("host", "sub.example.com")]);
        assert_eq!(chain.resolve(&host_only).as_deref(), Some("sub"));
        let neither = parts("/", &[("host", "evil.com")]);
        assert_eq!(chain.resolve(&neither), None);

        let boxed: Box<dyn Resolve> = Box::new(chain);
        assert_eq!(boxed.resolve(&host_only).as_deref(), Some("sub"));
    }
}
