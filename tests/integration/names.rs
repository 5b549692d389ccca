//! Hostile and malformed tenant names are refused with an error naming the rule. That the
//! lifecycle refuses them before any SQL, on every backend: `backends/shared/lifecycle.rs`.

use tenancy::{Error, NameRule, Tenant, TenantNamePolicy};

pub fn hostile() -> Vec<(String, NameRule)> {
    vec![
        (
            "tenant_1\"; DROP SCHEMA public CASCADE; --".into(),
            NameRule::InvalidChar { found: '"', at: 8 },
        ),
        (
            "tenant`; DROP DATABASE mysql; --".into(),
            NameRule::InvalidChar { found: '`', at: 6 },
        ),
        ("pg_catalog".into(), NameRule::ReservedPrefix),
        ("public".into(), NameRule::Reserved),
        ("PUBLIC".into(), NameRule::UpperCase { found: 'P', at: 0 }),
        ("a".repeat(64), NameRule::TooLong { len: 64 }),
        (String::new(), NameRule::Empty),
        ("Tenant1".into(), NameRule::UpperCase { found: 'T', at: 0 }),
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

#[test]
fn hostile_names_are_refused_with_the_rule_they_break() {
    for (name, rule) in hostile() {
        let err = Tenant::new(&name).unwrap_err();
        assert_eq!(err.rule, rule, "name {name:?}");
        let message = Error::from(err).to_string();
        assert!(message.starts_with("invalid tenant name"), "{message}");
        // The raw name is shown escaped, never with a raw NUL or quote breaking the message.
        assert!(!message.contains('\0'), "{message:?}");
        assert!(name.parse::<Tenant>().is_err());
        assert!(Tenant::try_from(name.clone()).is_err());
    }
}

#[test]
fn application_reserved_names_are_refused() {
    let policy = TenantNamePolicy::default().reserve("admin").reserve("www");
    for name in ["admin", "www", "public", "pg_toast"] {
        assert!(policy.parse(name).is_err(), "{name}");
    }
    let acme = policy.parse("acme").unwrap();
    assert_eq!(acme.quoted(), "\"acme\"");
}
