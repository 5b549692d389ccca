//! The statements of [`super`], as text.

use super::*;

fn t(name: &str) -> Tenant {
    Tenant::new(name).unwrap()
}

#[test]
fn statements_quote_every_schema() {
    let reg = t("_tenancy");
    assert_eq!(
        register(&reg),
        r#"INSERT INTO "_tenancy".tenants (name) VALUES ($1)"#
    );
    assert_eq!(
        lock_tenant_named(&reg, &t("acme")),
        "SELECT pg_advisory_xact_lock(hashtextextended('tenancy:_tenancy:' || 'acme', 0))"
    );
    assert_eq!(create_schema(&t("acme")), r#"CREATE SCHEMA "acme""#);
    assert!(drop_schema(&t("acme")).ends_with(r#"DROP SCHEMA "acme" CASCADE"#));
    assert!(drop_schema(&t("acme")).contains("n.nspname = 'acme'"));
    assert!(rename_schema(&t("a"), &t("b")).ends_with(r#"ALTER SCHEMA "a" RENAME TO "b""#));
    assert!(rename_schema(&t("a"), &t("b")).contains("n.nspname = 'a'"));
    assert_eq!(
        set_local_search_path(&t("acme"), &BatchOptions::default()),
        r#"SET LOCAL search_path TO "acme""#
    );
    let shared = BatchOptions {
        shared_schemas: vec!["public".into(), "we\"ird".into()],
        lock_timeout: Some(Duration::from_millis(1500)),
    };
    assert_eq!(
        set_local_search_path(&t("acme"), &shared),
        r#"SET LOCAL search_path TO "acme", "public", "we""ird""#
    );
    assert_eq!(
        set_lock_timeout(&shared),
        "SELECT set_config('lock_timeout', '1500ms', true);\n"
    );
    assert_eq!(set_lock_timeout(&BatchOptions::default()), "");
    assert!(ensure_registry(&reg).contains(r#"CREATE SCHEMA IF NOT EXISTS "_tenancy";"#));
    assert!(behind(&reg).contains(r#"FROM "_tenancy".tenants t ORDER BY t.name"#));
    let placed = t("acme").rows_in(&t("free"));
    assert_eq!(
        create_in(&reg, &placed, &BatchOptions::default()),
        r#"SELECT * FROM "_tenancy".create_in('acme', 'free', NULL)"#
    );
    assert_eq!(
        create_in(&reg, &placed, &shared),
        r#"SELECT * FROM "_tenancy".create_in('acme', 'free', '1500ms')"#
    );
    assert_eq!(
        create_in_many(&reg, &[t("acme"), t("globex")], &t("free"), &shared),
        r#"SELECT * FROM "_tenancy".create_in_many(ARRAY['acme', 'globex']::text[], 'free', '1500ms')"#
    );
}

#[test]
fn the_registry_function_create_in_locks_as_the_lifecycle_does_then_reads_then_inserts() {
    let reg = t("_tenancy");
    let ddl = ensure_registry(&reg);
    let body = &ddl[ddl.find(r#"FUNCTION "_tenancy".create_in("#).unwrap()..];
    let body = &body[..body.find("$tenancy$;").unwrap()];
    let at = |needle: &str| {
        body.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from:\n{body}"))
    };
    // The keys are those of lock_tenant_named: the tenant's, then the container's.
    let key = |name: &str| format!("hashtextextended('tenancy:_tenancy:' || {name}, 0)");
    assert!(lock_tenant_named(&reg, &t("acme")).contains(&key("'acme'")));
    assert!(at("'lock_timeout', _lock_timeout") < at(&key("_tenant")));
    assert!(at(&key("_tenant")) < at(&key("_container")));
    // Volatile: each read after the locks has a snapshot of its own.
    assert!(body.contains("LANGUAGE plpgsql VOLATILE"));
    assert!(at(&key("_container")) < at(r#"FROM "_tenancy".tenants t WHERE t.name = _tenant"#));
    assert!(at(&key("_container")) < at(r#"FROM "_tenancy".row_tenants p WHERE p.name = _tenant"#));
    assert!(at("to_regnamespace(_container)") < at(r#"INSERT INTO "_tenancy".row_tenants"#));
    assert!(body.contains(
        "IF NOT name_taken AND container_registered AND container_schema THEN"
    ));
}

fn migration(version: i64, description: &str, sql: &str) -> Migration {
    use sqlx::SqlSafeStr;
    Migration::new(
        version,
        description.to_owned().into(),
        sqlx::migrate::MigrationType::Simple,
        sqlx::AssertSqlSafe(sql.to_owned()).into_sql_str(),
        false,
    )
}

#[test]
fn a_create_batch_registers_creates_and_migrates_in_order() {
    let m = migration(1, "guards", "CREATE TABLE guards (id int) -- no newline");
    let batch = create_batch(&t("_tenancy"), &t("acme"), &[&m], &BatchOptions::default());
    let at = |needle: &str| {
        batch
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from:\n{batch}"))
    };
    // The name's lock first (after the session's settings are saved), then the insert.
    let lock = "pg_advisory_xact_lock(hashtextextended('tenancy:_tenancy:' || 'acme', 0))";
    assert!(batch.starts_with(&format!(
        "SELECT {}, {lock};\nINSERT INTO \"_tenancy\".tenants (name) VALUES ('acme');",
        save_expr(&t("_tenancy"))
    )));
    assert!(
        at(r#"INSERT INTO "_tenancy".tenants (name) VALUES ('acme');"#)
            < at(r#"CREATE SCHEMA "acme";"#)
    );
    assert!(at(r#"CREATE SCHEMA "acme";"#) < at(r#"set_config('search_path', '"acme"', true),"#));
    // A row-level tenant of the name, read after the lock, refuses the batch.
    assert!(
        at("to_regnamespace('acme') IS NULL")
            < at(r#"WHEN EXISTS (SELECT 1 FROM "_tenancy".row_tenants WHERE name = 'acme') THEN 'TNCY1'"#)
    );
    assert!(at("set_config('search_path', '\"acme\"") < at("to_regnamespace('acme') IS NULL"));
    assert!(at("to_regnamespace('acme') IS NULL") < at("CREATE TABLE guards"));
    // The migration's trailing comment cannot swallow the statement separator.
    assert!(at("-- no newline\n;\n") < at(r#"INSERT INTO "_tenancy".migrations"#));
    assert!(batch.contains("VALUES ('acme', 1, convert_from(decode('677561726473', 'hex')"));
    assert!(batch
        .trim_end()
        .ends_with(&format!("{};", restore_session(&t("_tenancy")))));
    // Creation is committed durably: only migrations of existing tenants commit async.
    assert!(!batch.contains("set_config('synchronous_commit', 'off'"));
    // A lock timeout is set after the settings are saved (once), before the lock.
    let timed = BatchOptions {
        lock_timeout: Some(Duration::from_millis(300)),
        ..BatchOptions::default()
    };
    let batch = create_batch(&t("_tenancy"), &t("acme"), &[&m], &timed);
    assert!(batch.starts_with(&format!(
        "SELECT {}, set_config('lock_timeout', '300ms', true), {lock};\nINSERT INTO",
        save_expr(&t("_tenancy"))
    )));
    assert_eq!(batch.matches("tenancy.saved_session', ").count(), 1);
}

#[test]
fn a_migration_batch_locks_then_checks_what_was_read() {
    let m = migration(3, "it's", "ALTER TABLE guards ADD COLUMN badge text");
    let n = migration(4, "four", "ALTER TABLE guards ADD COLUMN four text");
    let options = BatchOptions {
        lock_timeout: Some(Duration::from_secs(2)),
        ..BatchOptions::default()
    };
    let batch = migrate_batch(&t("_tenancy"), &t("acme"), &[1, 2], &[&m, &n], &options);
    let at = |needle: &str| {
        batch
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from:\n{batch}"))
    };
    // In one statement, evaluated in order: saved, then the lock timeout, then the lock;
    // then the checks.
    assert!(batch.starts_with(&format!(
        "SELECT {}, set_config('lock_timeout', '2000ms', true), \
         pg_advisory_xact_lock(hashtextextended('tenancy:_tenancy:' || 'acme', 0));\n",
        save_expr(&t("_tenancy"))
    )));
    assert!(at("pg_advisory_xact_lock(") < at("check_batch"));
    // Asynchronous commit is set last, in the statement restoring the session's settings
    // (after them).
    assert!(batch.trim_end().ends_with(&format!(
        "{}, set_config('synchronous_commit', 'off', true);",
        restore_session(&t("_tenancy"))
    )));
    // The second migration gets its own clock; the first's is started with the checks.
    assert_eq!(batch.matches("set_config('tenancy.started'").count(), 2);
    assert!(batch.contains("IS DISTINCT FROM ARRAY[1, 2]::bigint[]"));
    let none = migrate_batch(&t("_tenancy"), &t("acme"), &[], &[&m], &options);
    assert!(none.contains("IS DISTINCT FROM ARRAY[]::bigint[]"));
    assert!(batch.contains(&format!("THEN '{CHANGED_SINCE_READ}'")));
    assert!(batch.contains(&format!("THEN '{WRONG_SCHEMA}'")));
    assert!(batch.find("badge text").unwrap() < batch.find("four text").unwrap());
    // The description goes in as hex: no quoting of text from outside.
    assert!(batch.contains(&format!("decode('{}', 'hex')", hex(b"it's"))));
}

#[test]
fn the_session_restore_covers_every_saved_setting_role_first() {
    let reg = t("_tenancy");
    let now = settings_now();
    let functions = session_functions(&reg);
    assert!(now.starts_with("concat_ws(E'\\x1f', current_setting('role'), "));
    for name in RESTORED_SETTINGS {
        assert!(now.contains(&format!("current_setting('{name}')")));
    }
    // The names restored are the names saved, in the same order (role first).
    let names: Vec<String> = RESTORED_SETTINGS.iter().map(|n| format!("'{n}'")).collect();
    assert!(functions.contains(&format!("ARRAY[{}]", names.join(", "))));
    assert!(functions.contains(&format!("RETURN {now};")));
    // search_path is the 2nd value saved, and is put back first.
    assert!(functions.contains("PERFORM set_config('search_path', _values[2], false);"));
    assert_eq!(
        save_session(&reg),
        r#"SELECT set_config('tenancy.saved_session', "_tenancy".session_settings(), true)"#
    );
    assert_eq!(
        restore_session(&reg),
        r#"SELECT "_tenancy".restore_session(current_setting('tenancy.saved_session'))"#
    );
    assert!(ensure_registry(&reg).contains(&functions));
}

#[test]
fn hex_is_lowercase_two_digits_per_byte() {
    assert_eq!(hex(&[0, 15, 16, 255]), "000f10ff");
}

#[test]
fn literals_double_quotes() {
    assert_eq!(literal("it's"), "'it''s'");
}

#[test]
fn locks_taken_before_a_transaction_are_handed_to_it_before_its_first_snapshot() {
    let options = BatchOptions {
        shared_schemas: vec![],
        lock_timeout: Some(Duration::from_millis(500)),
    };
    let opening = "BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT 'opening';\n";
    let batch = lock_then_begin(&t("_tenancy"), &[&t("a"), &t("b")], &options, opening);
    let key = |name: &str| format!("hashtextextended('tenancy:_tenancy:' || '{name}', 0)");
    let timeout = "SELECT set_config('lock_timeout', '500ms', true);\n";
    assert_eq!(
        batch,
        format!(
            "BEGIN;\n{timeout}SELECT pg_advisory_lock({a}), pg_advisory_lock({b});\nCOMMIT;\n\
             {opening}{timeout}SELECT pg_advisory_xact_lock({a}), pg_advisory_xact_lock({b}), \
             pg_advisory_unlock({a}), pg_advisory_unlock({b});\n",
            a = key("a"),
            b = key("b"),
        )
    );
}
