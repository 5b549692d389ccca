//! The validated tenant schema name.
//!
//! A [`Tenant`] is the only way to name a tenant container (a PostgreSQL schema, a MySQL
//! database) anywhere in this crate. Its constructors validate; once you hold one, the name is
//! known to be safe to render as a quoted identifier on every backend, so SQL is never built
//! from an unchecked string.
//!
//! # The naming rule
//!
//! A tenant name must
//! 1. be non-empty;
//! 2. be at most [`MAX_TENANT_NAME_LEN`] (63) bytes — PostgreSQL silently truncates longer
//!    identifiers, which could make two tenants share one schema;
//! 3. match `[a-z_][a-z0-9_]*`: ASCII lower-case letters, digits and `_`, not starting with a
//!    digit. Lower case only, so the quoted form (`"acme"`) and the unquoted form (`acme`) always
//!    name the same schema;
//! 4. not be reserved: names starting with `pg_`, `public`, `information_schema`, the MySQL
//!    server's own databases (`mysql`, `sys`, `performance_schema`), plus any name an
//!    application adds with [`TenantNamePolicy::reserve`]. The rule is the same on every
//!    backend, so a name valid on one is valid on all, and no tenant can ever name a server's
//!    own schema or database.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Longest tenant name in bytes (PostgreSQL's `NAMEDATALEN - 1`).
pub const MAX_TENANT_NAME_LEN: usize = 63;

/// Names no policy accepts: they belong to the PostgreSQL or MySQL server, or are shared by
/// every tenant.
pub const ALWAYS_RESERVED: &[&str] = &[
    "public",
    "information_schema",
    "mysql",
    "sys",
    "performance_schema",
];

/// Prefix no policy accepts: PostgreSQL refuses to create schemas starting with it.
pub const RESERVED_PREFIX: &str = "pg_";

/// A validated tenant: the name of the PostgreSQL schema that holds one tenant's tables.
///
/// Cheap to clone (the name is shared). Renders quoted through [`Tenant::quoted`]; its
/// [`Display`](fmt::Display) shows the bare name.
///
/// ```
/// use tenancy_core::Tenant;
///
/// let acme: Tenant = "acme".parse()?;
/// assert_eq!(acme.as_str(), "acme");
/// assert_eq!(acme.quoted(), "\"acme\"");
///
/// assert!(Tenant::new("public").is_err());
/// assert!(Tenant::new("mysql").is_err());
/// assert!(Tenant::new("Acme").is_err());
/// # Ok::<(), tenancy_core::InvalidTenantName>(())
/// ```
///
/// # Row-level tenants
///
/// A tenant's rows are in its own container by default. [`Tenant::rows_in`] gives a tenant
/// whose rows are instead in another tenant's container, in the tables of models declared
/// with `#[tenancy(tenant_column = "tenant_id")]`: every statement on such a table names the
/// container's table, filters by the tenant column and sets it on insert. A tenant is its
/// name: two `Tenant`s of one name compare equal wherever their rows are.
#[derive(Clone)]
pub struct Tenant(Arc<Placed>);

/// A tenant's name and, for a row-level tenant, the container its rows are in. Behind one
/// pointer, so a `Tenant` (which every record and many errors carry) is one word.
struct Placed {
    name: Arc<str>,
    container: Option<Arc<str>>,
}

impl Tenant {
    fn placed(name: Arc<str>, container: Option<Arc<str>>) -> Self {
        Tenant(Arc::new(Placed { name, container }))
    }
}

/// By name; two clones of one tenant (every record a query returns shares its tenant's name)
/// compare without reading it.
impl PartialEq for Tenant {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.name == other.0.name
    }
}

impl Eq for Tenant {}

/// By name, as [`PartialEq`] compares.
impl PartialOrd for Tenant {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// By name, as [`PartialEq`] compares.
impl Ord for Tenant {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.name.cmp(&other.0.name)
    }
}

/// By name, as [`PartialEq`] compares.
impl std::hash::Hash for Tenant {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl Tenant {
    /// Validates `name` under the default policy (see the [module docs](self)).
    pub fn new(name: impl AsRef<str>) -> Result<Self, InvalidTenantName> {
        TenantNamePolicy::default().parse(name)
    }

    /// The schema of a shared model's table, as the tenant its records carry: not validated
    /// as a tenant name (`public` is none); the derive checked it as an identifier, and it is
    /// only ever rendered quoted.
    pub(crate) fn shared(schema: &'static str) -> Self {
        Tenant::placed(Arc::from(schema), None)
    }

    /// This tenant with its rows in `container`'s container (a PostgreSQL schema, a MySQL
    /// database, a SQLite file) rather than its own: a row-level tenant. Its statements name
    /// `container`'s tables and carry this tenant's name in each model's tenant column
    /// (`#[tenancy(tenant_column = "tenant_id")]`): they read, count, change and delete only
    /// the rows whose column holds this name, and insert rows holding it. A statement on a
    /// model without a tenant column is refused ([`Error::NotRowLevel`](crate::Error)), as is
    /// a raw statement: neither could keep to the tenant's rows.
    ///
    /// `container` is a tenant like any other: created and migrated by
    /// [`Tenants`](crate::Tenants), its tables made by the same migrations, each with the
    /// tenant column. Rows of `container` itself (used as a tenant of its own) have no
    /// filter; keep it for row-level tenants only.
    ///
    /// ```
    /// use tenancy_core::Tenant;
    ///
    /// let free: Tenant = "free_tier".parse()?;
    /// let acme = Tenant::new("acme")?.rows_in(&free);
    /// assert_eq!(acme.as_str(), "acme");
    /// assert_eq!(acme.container(), "free_tier");
    /// assert!(acme.is_row_level());
    /// assert_eq!(acme, Tenant::new("acme")?);
    /// # Ok::<(), tenancy_core::InvalidTenantName>(())
    /// ```
    pub fn rows_in(&self, container: &Tenant) -> Tenant {
        Tenant::placed(
            Arc::clone(&self.0.name),
            Some(Arc::clone(container.container_arc())),
        )
    }

    /// The tenant with its rows in its own container (the name alone).
    pub fn own(&self) -> Tenant {
        Tenant::placed(Arc::clone(&self.0.name), None)
    }

    /// Whether the tenant's rows are in another tenant's container ([`Tenant::rows_in`]).
    pub fn is_row_level(&self) -> bool {
        self.0.container.is_some()
    }

    /// The name of the container that holds the tenant's rows: its own name, or for a
    /// row-level tenant, the container's.
    pub fn container(&self) -> &str {
        self.0.container.as_deref().unwrap_or(&self.0.name)
    }

    /// The container as a tenant of its own (what a connection to it serves).
    pub(crate) fn container_tenant(&self) -> Tenant {
        match &self.0.container {
            Some(container) => Tenant::placed(Arc::clone(container), None),
            None => self.clone(),
        }
    }

    /// The tenant's name, shared (a statement binds it in a tenant column).
    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.0.name
    }

    /// The name of the container that holds the tenant's rows, shared.
    pub(crate) fn container_arc(&self) -> &Arc<str> {
        self.0.container.as_ref().unwrap_or(&self.0.name)
    }

    /// The bare schema name, e.g. `acme`.
    pub fn as_str(&self) -> &str {
        &self.0.name
    }

    /// The name as a quoted SQL identifier, e.g. `"acme"`.
    ///
    /// The naming rule admits no `"`, so no escaping is needed; quoting still keeps a future
    /// change of the rule from turning into an injection.
    pub fn quoted(&self) -> String {
        crate::ident::double_quoted(&self.0.name)
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.name)
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.container {
            Some(container) => write!(f, "Tenant({:?} in {:?})", &*self.0.name, &**container),
            None => write!(f, "Tenant({:?})", &*self.0.name),
        }
    }
}

impl AsRef<str> for Tenant {
    fn as_ref(&self) -> &str {
        &self.0.name
    }
}

impl Borrow<str> for Tenant {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

impl FromStr for Tenant {
    type Err = InvalidTenantName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tenant::new(s)
    }
}

impl TryFrom<&str> for Tenant {
    type Error = InvalidTenantName;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Tenant::new(s)
    }
}

impl TryFrom<String> for Tenant {
    type Error = InvalidTenantName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Tenant::new(s)
    }
}

/// A tenant serializes as its bare name.
#[cfg(feature = "serde")]
impl serde::Serialize for Tenant {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.name)
    }
}

/// A tenant deserializes from a string, validated by [`Tenant::new`]: a payload naming an
/// invalid tenant is refused with the rule it broke, so a job never starts on an unchecked
/// name.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Tenant {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Tenant::new(&*name).map_err(serde::de::Error::custom)
    }
}

/// Which part of the naming rule a refused name broke.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameRule {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_TENANT_NAME_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// An upper-case ASCII letter (`A`–`Z`): tenant names are lower case, and a name is never
    /// case-folded. Reported for the first character that breaks the rule, when it is one.
    UpperCase {
        /// The offending letter.
        found: char,
        /// Its byte offset in the name.
        at: usize,
    },
    /// The first character is not `a`–`z` or `_`.
    InvalidStart {
        /// The offending character.
        found: char,
    },
    /// A character other than `a`–`z`, `0`–`9` or `_`.
    InvalidChar {
        /// The offending character.
        found: char,
        /// Its byte offset in the name.
        at: usize,
    },
    /// The name starts with `pg_`, which PostgreSQL reserves.
    ReservedPrefix,
    /// The name is reserved (`public`, `information_schema`, or by the application's policy).
    Reserved,
}

impl fmt::Display for NameRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameRule::Empty => f.write_str("it is empty"),
            NameRule::TooLong { len } => write!(
                f,
                "it is {len} bytes long, over the limit of {MAX_TENANT_NAME_LEN} (PostgreSQL would truncate it)"
            ),
            NameRule::UpperCase { found, at } => write!(
                f,
                "it contains the upper-case letter {found:?} at byte {at}; upper-case letters \
                 are not allowed: a tenant name holds only a-z, 0-9 and _"
            ),
            NameRule::InvalidStart { found } => write!(
                f,
                "it starts with {found:?}; a tenant name starts with a-z or _"
            ),
            NameRule::InvalidChar { found, at } => write!(
                f,
                "it contains {found:?} at byte {at}; a tenant name holds only a-z, 0-9 and _"
            ),
            NameRule::ReservedPrefix => {
                f.write_str("names starting with \"pg_\" are reserved by PostgreSQL")
            }
            NameRule::Reserved => f.write_str("the name is reserved"),
        }
    }
}

/// A name refused as a tenant name, and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant name {name:?}: {rule}")]
pub struct InvalidTenantName {
    /// The refused name (shown escaped by `Display`, so control characters stay visible).
    /// Truncated to 100 characters so a hostile input cannot flood a log.
    pub name: String,
    /// The rule it broke.
    pub rule: NameRule,
}

/// The naming rule, with an application's own reserved names.
///
/// ```
/// use tenancy_core::{NameRule, TenantNamePolicy};
///
/// let policy = TenantNamePolicy::default().reserve("admin").reserve("www");
/// assert_eq!(policy.parse("www").unwrap_err().rule, NameRule::Reserved);
/// assert!(policy.parse("acme").is_ok());
/// ```
#[derive(Debug, Clone, Default)]
pub struct TenantNamePolicy {
    reserved: BTreeSet<String>,
}

impl TenantNamePolicy {
    /// Adds a reserved name; [`parse`](Self::parse) refuses it from now on.
    pub fn reserve(mut self, name: impl Into<String>) -> Self {
        self.reserved.insert(name.into());
        self
    }

    /// Whether `name` is reserved by this policy or always reserved.
    pub fn is_reserved(&self, name: &str) -> bool {
        name.starts_with(RESERVED_PREFIX)
            || ALWAYS_RESERVED.contains(&name)
            || self.reserved.contains(name)
    }

    /// Validates `name` against the rule and this policy's reserved names.
    pub fn parse(&self, name: impl AsRef<str>) -> Result<Tenant, InvalidTenantName> {
        let name = name.as_ref();
        match self.check(name) {
            Ok(()) => Ok(Tenant::placed(Arc::from(name), None)),
            Err(rule) => Err(InvalidTenantName {
                name: name.chars().take(100).collect(),
                rule,
            }),
        }
    }

    fn check(&self, name: &str) -> Result<(), NameRule> {
        let mut chars = name.char_indices();
        let Some((_, first)) = chars.next() else {
            return Err(NameRule::Empty);
        };
        if name.len() > MAX_TENANT_NAME_LEN {
            return Err(NameRule::TooLong { len: name.len() });
        }
        if first.is_ascii_uppercase() {
            return Err(NameRule::UpperCase {
                found: first,
                at: 0,
            });
        }
        if !(first.is_ascii_lowercase() || first == '_') {
            return Err(NameRule::InvalidStart { found: first });
        }
        if let Some((at, found)) =
            chars.find(|&(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        {
            if found.is_ascii_uppercase() {
                return Err(NameRule::UpperCase { found, at });
            }
            return Err(NameRule::InvalidChar { found, at });
        }
        if name.starts_with(RESERVED_PREFIX) {
            return Err(NameRule::ReservedPrefix);
        }
        if self.is_reserved(name) {
            return Err(NameRule::Reserved);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str) -> NameRule {
        Tenant::new(name).unwrap_err().rule
    }

    #[test]
    fn accepts_valid_names() {
        for name in ["acme", "tenant_1", "_x", "a", &"a".repeat(63)] {
            assert_eq!(Tenant::new(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn refuses_each_rule() {
        assert_eq!(rule(""), NameRule::Empty);
        assert_eq!(rule(&"a".repeat(64)), NameRule::TooLong { len: 64 });
        assert_eq!(rule("Tenant1"), NameRule::UpperCase { found: 'T', at: 0 });
        assert_eq!(rule("tenAnt"), NameRule::UpperCase { found: 'A', at: 3 });
        assert_eq!(rule("TENANT_1"), NameRule::UpperCase { found: 'T', at: 0 });
        // The first character that breaks the rule decides.
        assert_eq!(rule("ten-Ant"), NameRule::InvalidChar { found: '-', at: 3 });
        assert_eq!(rule("1tenant"), NameRule::InvalidStart { found: '1' });
        assert_eq!(
            rule("tenant-1"),
            NameRule::InvalidChar { found: '-', at: 6 }
        );
        assert_eq!(
            rule("tenant\0"),
            NameRule::InvalidChar { found: '\0', at: 6 }
        );
        assert_eq!(rule("tenantä"), NameRule::InvalidChar { found: 'ä', at: 6 });
        assert_eq!(rule("pg_catalog"), NameRule::ReservedPrefix);
        assert_eq!(rule("public"), NameRule::Reserved);
        assert_eq!(rule("PUBLIC"), NameRule::UpperCase { found: 'P', at: 0 });
        assert_eq!(rule("information_schema"), NameRule::Reserved);
        assert_eq!(
            rule("tenant_1\"; DROP SCHEMA public CASCADE; --"),
            NameRule::InvalidChar { found: '"', at: 8 }
        );
    }

    #[test]
    fn error_message_names_input_and_rule() {
        let err = Tenant::new("tenant\0x").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid tenant name \"tenant\\0x\": it contains '\\0' at byte 6; a tenant name holds only a-z, 0-9 and _"
        );
    }

    #[test]
    fn long_hostile_input_is_truncated_in_the_error() {
        let err = Tenant::new("X".repeat(10_000)).unwrap_err();
        assert_eq!(err.name.len(), 100);
    }

    #[test]
    fn policy_extends_reserved_names() {
        let policy = TenantNamePolicy::default().reserve("www");
        assert_eq!(policy.parse("www").unwrap_err().rule, NameRule::Reserved);
        assert!(Tenant::new("www").is_ok());
        assert!(policy.is_reserved("pg_toast"));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip_validates() {
        let acme = Tenant::new("acme").unwrap();
        let json = serde_json::to_string(&acme).unwrap();
        assert_eq!(json, "\"acme\"");
        assert_eq!(serde_json::from_str::<Tenant>(&json).unwrap(), acme);
        let err = serde_json::from_str::<Tenant>("\"Acme\"").unwrap_err();
        assert!(err.to_string().contains("upper-case letter 'A'"), "{err}");
    }

    #[test]
    fn renders_quoted() {
        assert_eq!(Tenant::new("tenant_1").unwrap().quoted(), "\"tenant_1\"");
    }
}
