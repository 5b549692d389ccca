//! Hostile and malformed tenant names are refused before any SQL exists, with an error naming
//! the rule, and the database is unchanged.

use tenancy::{Error, NameRule, Tenant, TenantNamePolicy};

use crate::assert_err;
use crate::lifecycle_support::{v1, Lifecycle};
use crate::support::{pool, schema_names};

fn hostile() -> Vec<(String, NameRule)> {
    vec![
        (
            "tenant_1\"; DROP SCHEMA public CASCADE; --".into(),
            NameRule::InvalidChar { found: '"', at: 8 },
        ),
        ("pg_catalog".into(), NameRule::ReservedPrefix),
        ("public".into(), NameRule::Reserved),
        ("PUBLIC".into(), NameRule::InvalidStart { found: 'P' }),
        ("a".repeat(64), NameRule::TooLong { len: 64 }),
        (String::new(), NameRule::Empty),
        ("Tenant1".into(), NameRule::InvalidStart { found: 'T' }),
        (
            "tenant-1".into(),
            NameRule::InvalidChar { found: '-', at: 6 },
        ),
        (
            "tenant\0one".into(),
            NameRule::InvalidChar { found: '\0', at: 6 },
        ),
        ("tenänt".into(), NameRule::InvalidChar { found: 'ä', at: 3 }),
        ("information_schema".into(), NameRule::Reserved),
    ]
}

#[tokio::test]
async fn hostile_names_are_refused_and_the_database_is_unchanged() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, v1()).await;
    let before = schema_names(&pool).await;
    for (name, rule) in hostile() {
        let err = Tenant::new(&name).unwrap_err();
        assert_eq!(err.rule, rule, "name {name:?}");
        let message = Error::from(err).to_string();
        assert!(message.starts_with("invalid tenant name"), "{message}");
        // The raw name is shown escaped, never with a raw NUL or quote breaking the message.
        assert!(!message.contains('\0'), "{message:?}");
        assert!(name.parse::<Tenant>().is_err());
        assert!(Tenant::try_from(name.clone()).is_err());
        // Through the lifecycle too: refused before any SQL is sent.
        assert_err!(l.tenants.create(&name).await, Error::InvalidTenantName(_));
        assert_err!(l.tenants.migrate(&name).await, Error::InvalidTenantName(_));
    }
    // Other tests create and drop schemas meanwhile, so look only at what these names could
    // have made, or (the reserved ones that exist) broken.
    let after = schema_names(&pool).await;
    for (name, _) in hostile() {
        assert_eq!(
            before.contains(&name),
            after.contains(&name),
            "schema {name:?}"
        );
    }
    assert!(after.iter().any(|s| s == "public"));
    assert!(l.tenants.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn application_reserved_names_are_refused() {
    let policy = TenantNamePolicy::default().reserve("admin").reserve("www");
    for name in ["admin", "www", "public", "pg_toast"] {
        assert!(policy.parse(name).is_err(), "{name}");
    }
    let acme = policy.parse("acme").unwrap();
    assert_eq!(acme.quoted(), "\"acme\"");
}
