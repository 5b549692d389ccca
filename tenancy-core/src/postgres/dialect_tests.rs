//! PostgreSQL's statements as text: `"quoted"` identifiers, `$n` placeholders, `RETURNING`;
//! and the shapes every dialect shares (groups, semi-joins, windows), written in this one.

use sqlx::Postgres;

use super::PgDialect as D;
use crate::lifecycle::store::rewrites_as;
use crate::statement::test_support::*;
use crate::statement::{self, Aggregate, Exists, OnConflictAction, Op, Predicate, Window};
use crate::table::{ColumnDef, TableDef};
use crate::value::Bind;

type B = Postgres;

fn no_conditions() -> Vec<Predicate<B>> {
    Vec::new()
}

#[test]
fn insert_one_and_many() {
    // (rows, values bound, the VALUES list)
    let cases = [(1, 2, "($1, $2)"), (3, 6, "($1, $2), ($3, $4), ($5, $6)")];
    for (n, bound, values) in cases {
        assert_eq!(
            text(statement::insert::<D, B>(&t1(), &GUARDS, &rows(n)), bound),
            format!(
                r#"INSERT INTO "tenant_1"."guards" ("name", "position") VALUES {values} RETURNING {ALL}"#
            ),
            "{n} rows"
        );
    }
}

#[test]
fn insert_with_only_generated_columns_uses_default() {
    assert_eq!(
        text(statement::insert::<D, B>(&t1(), &ONLY_ID, &rows(2)), 0),
        r#"INSERT INTO "tenant_1"."counters" ("id") VALUES (DEFAULT), (DEFAULT) RETURNING "id""#
    );
}

#[test]
fn upsert_updates_or_keeps_on_the_target() {
    let update = OnConflictAction::Update(&["name", "position"]);
    assert_eq!(
        text(
            statement::upsert::<D, B>(&t1(), &GUARDS, &rows(2), &["name"], update),
            4
        ),
        format!(
            r#"INSERT INTO "tenant_1"."guards" ("name", "position") VALUES ($1, $2), ($3, $4) ON CONFLICT ("name") DO UPDATE SET "name" = EXCLUDED."name", "position" = EXCLUDED."position" RETURNING {ALL}"#
        )
    );
}

#[test]
fn update_sets_given_columns_and_keys_on_pk() {
    assert_eq!(
        text(statement::update::<D, B>(&t1(), &GUARDS, &Row, &[1, 2]), 3),
        format!(
            r#"UPDATE "tenant_1"."guards" SET "name" = $1, "position" = $2 WHERE "id" = $3 RETURNING {ALL}"#
        )
    );
    assert_eq!(
        text(statement::update::<D, B>(&t1(), &GUARDS, &Row, &[2]), 2),
        format!(
            r#"UPDATE "tenant_1"."guards" SET "position" = $1 WHERE "id" = $2 RETURNING {ALL}"#
        )
    );
}

#[test]
fn by_primary_key() {
    let id = 7_i64;
    assert_eq!(
        text(
            statement::select_by_pk::<D, B>(&t1(), &GUARDS, statement::Value::Bound(&id)),
            1
        ),
        format!(r#"SELECT {ALL} FROM "tenant_1"."guards" WHERE "id" = $1"#)
    );
    assert_eq!(
        text(
            statement::delete_by_pk::<D, B>(&t1(), &GUARDS, statement::Value::Bound(&id)),
            1
        ),
        r#"DELETE FROM "tenant_1"."guards" WHERE "id" = $1"#
    );
}

#[test]
fn select_with_every_clause() {
    let conditions = conds::<B>();
    let window = window(BY_NAME_THEN_ID_DESC, true, true);
    assert_eq!(
        text(
            statement::select::<D, B>(&t1(), &GUARDS, &conditions, &window),
            8
        ),
        format!(
            r#"SELECT {ALL} FROM "tenant_1"."guards" WHERE "name" = $1 AND "id" IN ($2, $3, $4) AND "position" IS NULL AND "position" LIKE $5 AND "id" >= $6 ORDER BY "name" ASC, "id" DESC LIMIT $7 OFFSET $8"#
        )
    );
}

#[test]
fn every_operator() {
    for (op, sql, values) in [
        (Op::Eq, "= $1", 1),
        (Op::Ne, "<> $1", 1),
        (Op::Lt, "< $1", 1),
        (Op::Le, "<= $1", 1),
        (Op::Gt, "> $1", 1),
        (Op::Ge, ">= $1", 1),
        (Op::Like, "LIKE $1", 1),
        (Op::In, "IN ($1, $2, $3)", 3),
        (Op::AnyOf, "= ANY($1)", 1),
        (Op::IsNotNull, "IS NOT NULL", 0),
    ] {
        let conditions = [cmp::<B>("id", op)];
        assert_eq!(
            text(
                statement::select::<D, B>(&t1(), &ONLY_ID, &conditions, &Window::default()),
                values
            ),
            format!(r#"SELECT "id" FROM "tenant_1"."counters" WHERE "id" {sql}"#)
        );
    }
}

#[test]
fn empty_in_matches_nothing() {
    let conditions = [Predicate::<B>::compare("id", Op::In, Vec::new())];
    assert_eq!(
        text(
            statement::select::<D, B>(&t1(), &ONLY_ID, &conditions, &Window::default()),
            0
        ),
        r#"SELECT "id" FROM "tenant_1"."counters" WHERE FALSE"#
    );
}

#[test]
fn groups_are_parenthesised_and_numbered_depth_first() {
    let either = || Predicate::Any(vec![cmp::<B>("id", Op::Lt), cmp("id", Op::Gt)]);
    let conditions = [
        cmp("name", Op::Eq),
        either(),
        Predicate::Not(Box::new(Predicate::All(vec![
            cmp("position", Op::IsNull),
            cmp("name", Op::Like),
        ]))),
    ];
    assert_eq!(
        text(
            statement::select::<D, B>(&t1(), &ONLY_ID, &conditions, &Window::default()),
            4
        ),
        r#"SELECT "id" FROM "tenant_1"."counters" WHERE "name" = $1 AND ("id" < $2 OR "id" > $3) AND NOT ("position" IS NULL AND "name" LIKE $4)"#
    );
    // Empty groups: all of nothing holds, any of nothing does not.
    for (group, sql) in [
        (Predicate::<B>::All(vec![]), "TRUE"),
        (Predicate::Any(vec![]), "FALSE"),
    ] {
        let conditions = [group];
        assert_eq!(
            text(
                statement::select::<D, B>(&t1(), &ONLY_ID, &conditions, &Window::default()),
                0
            ),
            format!(r#"SELECT "id" FROM "tenant_1"."counters" WHERE {sql}"#)
        );
    }
}

#[test]
fn semi_joins_name_the_outer_tenant() {
    let conditions = [
        cmp::<B>("id", Op::Gt),
        Predicate::Exists(Box::new(Exists {
            table: &SITES,
            column: "id",
            outer_column: "position",
            predicate: cmp("city", Op::Eq),
        })),
    ];
    assert_eq!(
        text(
            statement::select::<D, B>(&t1(), &ONLY_ID, &conditions, &Window::default()),
            2
        ),
        r#"SELECT "id" FROM "tenant_1"."counters" WHERE "id" > $1 AND EXISTS (SELECT 1 FROM "tenant_1"."sites" AS "__j1" WHERE "__j1"."id" = "tenant_1"."counters"."position" AND "__j1"."city" = $2)"#
    );
}

#[test]
fn count_plain_and_windowed() {
    let c = &conds::<B>()[..1];
    // (window, values bound, statement)
    let cases = [
        (
            Window::default(),
            1,
            r#"SELECT COUNT(*) FROM "tenant_1"."guards" WHERE "name" = $1"#,
        ),
        (
            window(&[], true, false),
            2,
            r#"SELECT COUNT(*) FROM (SELECT 1 FROM "tenant_1"."guards" WHERE "name" = $1 LIMIT $2) AS counted"#,
        ),
    ];
    for (window, bound, expected) in cases {
        assert_eq!(
            text(statement::count::<D, B>(&t1(), &GUARDS, c, &window), bound),
            expected
        );
    }
}

#[test]
fn update_delete_and_aggregate_choose_rows_as_select_does() {
    let c = &conds::<B>()[..1];
    let sets: Vec<(&'static str, Box<dyn Bind<B>>)> = vec![("position", Box::new(1_i64))];
    assert_eq!(
        text(
            statement::update_where::<D, B>(&t1(), &GUARDS, &sets, c, &Window::default()),
            2
        ),
        r#"UPDATE "tenant_1"."guards" SET "position" = $1 WHERE "name" = $2"#
    );
    assert_eq!(
        text(
            statement::delete_where::<D, B>(&t1(), &GUARDS, c, &Window::default()),
            1
        ),
        r#"DELETE FROM "tenant_1"."guards" WHERE "name" = $1"#
    );
    assert_eq!(
        text(
            statement::delete_where::<D, B>(&t1(), &GUARDS, &no_conditions(), &Window::default()),
            0
        ),
        r#"DELETE FROM "tenant_1"."guards""#
    );
    assert_eq!(
        text(
            statement::delete_where::<D, B>(&t1(), &GUARDS, c, &window(BY_ID, true, false)),
            2
        ),
        r#"DELETE FROM "tenant_1"."guards" WHERE "id" IN (SELECT "id" FROM "tenant_1"."guards" WHERE "name" = $1 ORDER BY "id" ASC LIMIT $2)"#
    );
    assert_eq!(
        text(
            statement::aggregate::<D, B>(
                &t1(),
                &GUARDS,
                Aggregate::SumInteger,
                "id",
                Some("position"),
                c,
                &Window::default()
            ),
            1
        ),
        r#"SELECT "position", CAST(SUM("id") AS BIGINT) FROM "tenant_1"."guards" WHERE "name" = $1 GROUP BY "position" ORDER BY "position""#
    );
    assert_eq!(
        text(
            statement::select::<D, B>(&t1(), &ONLY_ID, &no_conditions(), &window(&[], false, true)),
            1
        ),
        r#"SELECT "id" FROM "tenant_1"."counters" OFFSET $1"#
    );
}

#[test]
fn across_tenants_every_branch_shares_the_first_branchs_values() {
    let c = &conds::<B>()[..2];
    let window = window(BY_NAME_DESC, true, false);
    // Five values (name, three ids, the limit) for two branches that both say $1..$5.
    assert_eq!(
        text(
            statement::select_across::<D, B>(&[t1(), t2()], &GUARDS, c, &window),
            5
        ),
        format!(
            r#"(SELECT {ALL}, 0 AS "__tenant" FROM "tenant_1"."guards" WHERE "name" = $1 AND "id" IN ($2, $3, $4) ORDER BY "name" DESC LIMIT $5) UNION ALL (SELECT {ALL}, 1 AS "__tenant" FROM "tenant_2"."guards" WHERE "name" = $1 AND "id" IN ($2, $3, $4) ORDER BY "name" DESC LIMIT $5) ORDER BY "__tenant", "name" DESC"#
        )
    );
    assert_eq!(
        text(
            statement::select_across::<D, B>(
                &[t1()],
                &ONLY_ID,
                &no_conditions(),
                &Window::default()
            ),
            0
        ),
        r#"(SELECT "id", 0 AS "__tenant" FROM "tenant_1"."counters") ORDER BY "__tenant""#
    );
    assert_eq!(
        text(
            statement::select_across::<D, B>(&[], &ONLY_ID, &no_conditions(), &Window::default()),
            0
        ),
        ""
    );
    assert_eq!(
        text(
            statement::count_across::<D, B>(
                &[t1(), t2()],
                &GUARDS,
                &conds()[..1],
                &Window::default()
            ),
            1
        ),
        r#"SELECT 0 AS "__tenant", COUNT(*) FROM "tenant_1"."guards" WHERE "name" = $1 UNION ALL SELECT 1 AS "__tenant", COUNT(*) FROM "tenant_2"."guards" WHERE "name" = $1"#
    );
    assert_eq!(
        text(
            statement::count_across::<D, B>(
                &[t1(), t2()],
                &GUARDS,
                &no_conditions(),
                &window_limit()
            ),
            1
        ),
        r#"SELECT 0 AS "__tenant", COUNT(*) FROM (SELECT 1 FROM "tenant_1"."guards" LIMIT $1) AS counted UNION ALL SELECT 1 AS "__tenant", COUNT(*) FROM (SELECT 1 FROM "tenant_2"."guards" LIMIT $1) AS counted"#
    );
}

fn window_limit() -> Window<'static> {
    window(&[], true, false)
}

#[test]
fn raw_templates_qualify_tables_and_number_values() {
    use crate::statement::RawTemplateError;
    let tables = [&GUARDS, &ONLY_ID];
    let two: Vec<Box<dyn Bind<B>>> = vec![Box::new(1_i64), Box::new(2_i64)];
    let none: Vec<Box<dyn Bind<B>>> = Vec::new();
    let template = "SELECT {guards}.* FROM {guards} JOIN {counters} c ON c.id = {guards}.id WHERE name = {} AND data = '{{}}' LIMIT {}";
    assert_eq!(
        text(
            statement::raw::<D, B>(template, &t1(), &tables, &two).unwrap(),
            2
        ),
        r#"SELECT "tenant_1"."guards".* FROM "tenant_1"."guards" JOIN "tenant_1"."counters" c ON c.id = "tenant_1"."guards".id WHERE name = $1 AND data = '{}' LIMIT $2"#
    );
    let error = |template: &str, values: &[Box<dyn Bind<B>>]| {
        statement::raw::<D, B>(template, &t1(), &tables, values).expect_err("refused")
    };
    assert_eq!(
        error("SELECT * FROM {sites}", &none),
        RawTemplateError::UnknownTable("sites".to_owned())
    );
    assert_eq!(
        error("SELECT * FROM {guards", &none),
        RawTemplateError::Unbalanced(14)
    );
    assert_eq!(
        error("SELECT '}' FROM {guards}", &none),
        RawTemplateError::Unbalanced(8)
    );
    // One `{}` per value: too few and too many are refused.
    assert_eq!(
        error("SELECT {} FROM {guards}", &two),
        RawTemplateError::Values {
            placeholders: 1,
            bound: 2
        }
    );
    assert_eq!(
        error("SELECT {}, {}, {} FROM {guards}", &two),
        RawTemplateError::Values {
            placeholders: 3,
            bound: 2
        }
    );
    // A tenant name cannot be smuggled in as a table: a name with quotes is not a table.
    assert_eq!(
        error(r#"SELECT * FROM {tenant_2"."guards}"#, &none),
        RawTemplateError::UnknownTable(r#"tenant_2"."guards"#.to_owned())
    );
}

#[test]
fn identifiers_are_quoted_with_embedded_quotes_doubled() {
    const ODD: TableDef = TableDef {
        name: "Odd \"Table\"",
        columns: &[ColumnDef::new("Id").primary_key()],
        schema: None,
        tenant_column: None,
    };
    let id = 1_i64;
    assert_eq!(
        text(
            statement::delete_by_pk::<D, B>(&t1(), &ODD, statement::Value::Bound(&id)),
            1
        ),
        r#"DELETE FROM "tenant_1"."Odd ""Table""" WHERE "Id" = $1"#
    );
}

/// A text written once per thread is reused only for the same dialect, table, columns, shape
/// and tenant: each statement built again reads as it did the first time, with its values.
#[test]
fn reused_texts_stay_with_their_tenant_table_and_shape() {
    // Same name as GUARDS, other columns: a model reading part of the table.
    const NARROW: TableDef = TableDef {
        name: "guards",
        columns: &[ColumnDef::new("id").primary_key(), ColumnDef::new("name")],
        schema: None,
        tenant_column: None,
    };
    const SHARED: TableDef = TableDef {
        schema: Some("public"),
        tenant_column: None,
        ..GUARDS
    };
    let key = 7_i64;
    let (t1, t2) = (t1(), t2());
    let find = |tenant: &crate::tenant::Tenant, table: &TableDef| statement::select_by_pk::<D, B>(tenant, table, statement::Value::Bound(&key));
    let delete = |tenant: &crate::tenant::Tenant, table: &TableDef| statement::delete_by_pk::<D, B>(tenant, table, statement::Value::Bound(&key));
    let expected = [
        (find(&t1, &GUARDS), format!(r#"SELECT {ALL} FROM "tenant_1"."guards" WHERE "id" = $1"#)),
        (find(&t2, &GUARDS), format!(r#"SELECT {ALL} FROM "tenant_2"."guards" WHERE "id" = $1"#)),
        (find(&t1, &NARROW), r#"SELECT "id", "name" FROM "tenant_1"."guards" WHERE "id" = $1"#.to_owned()),
        (find(&t1, &SHARED), format!(r#"SELECT {ALL} FROM "public"."guards" WHERE "id" = $1"#)),
        (delete(&t1, &GUARDS), r#"DELETE FROM "tenant_1"."guards" WHERE "id" = $1"#.to_owned()),
        (delete(&t2, &SITES), r#"DELETE FROM "tenant_2"."sites" WHERE "id" = $1"#.to_owned()),
    ];
    for round in 0..3 {
        for (i, (first, text)) in expected.iter().enumerate() {
            assert_eq!(first.sql(), text, "statement {i}, first build");
            let again = match i {
                0 => find(&t1, &GUARDS),
                1 => find(&t2, &GUARDS),
                2 => find(&t1, &NARROW),
                3 => find(&t1, &SHARED),
                4 => delete(&t1, &GUARDS),
                _ => delete(&t2, &SITES),
            };
            assert_eq!(again.sql(), text, "statement {i}, round {round}");
            assert_eq!(again.len(), 1, "statement {i}, round {round}: its value");
        }
    }
    for tenant in [&t1, &t2, &t1] {
        let one = statement::insert::<D, B>(tenant, &GUARDS, &rows(1));
        assert_eq!(
            one.sql(),
            format!(r#"INSERT INTO "{tenant}"."guards" ("name", "position") VALUES ($1, $2) RETURNING {ALL}"#)
        );
        assert_eq!(one.len(), 2);
        let two = statement::insert::<D, B>(tenant, &GUARDS, &rows(2));
        assert_eq!(two.len(), 4, "two rows are not one row's text");
        assert!(two.sql().ends_with(&format!("VALUES ($1, $2), ($3, $4) RETURNING {ALL}")));
    }
}

/// An update's reused text is the one of its columns: another set, or the same columns in
/// another order, is written afresh.
#[test]
fn reused_update_texts_follow_their_columns() {
    let t1 = t1();
    let cases: [(&[usize], &str); 5] = [
        (&[1, 2], r#""name" = $1, "position" = $2 WHERE "id" = $3"#),
        (&[1], r#""name" = $1 WHERE "id" = $2"#),
        (&[2], r#""position" = $1 WHERE "id" = $2"#),
        (&[2, 1], r#""position" = $1, "name" = $2 WHERE "id" = $3"#),
        (&[1, 2], r#""name" = $1, "position" = $2 WHERE "id" = $3"#),
    ];
    for round in 0..2 {
        for (columns, set) in cases {
            let update = statement::update::<D, B>(&t1, &GUARDS, &Row, columns);
            assert_eq!(
                update.sql(),
                format!(r#"UPDATE "tenant_1"."guards" SET {set} RETURNING {ALL}"#),
                "{columns:?}, round {round}"
            );
            assert_eq!(update.len(), columns.len() + 1, "{columns:?}: its values");
        }
    }
}

/// A table with a tenant column: every statement filters by it (first, before the caller's
/// conditions) and every insert writes it; a row-level tenant's statements name the
/// container's table; a related table without the column, or a raw text, is refused.
#[test]
fn a_tenant_column_is_filtered_and_written_by_every_statement() {
    const ROWS: TableDef = TableDef {
        tenant_column: Some("tenant_id"),
        ..GUARDS
    };
    const ROW_SITES: TableDef = TableDef {
        tenant_column: Some("tenant_id"),
        ..SITES
    };
    let acme = crate::tenant::Tenant::new("acme").unwrap().rows_in(&t1());
    let key = 7_i64;
    let c = &conds::<B>()[..1];
    assert_eq!(
        text(statement::insert::<D, B>(&acme, &ROWS, &rows(2)), 6),
        format!(
            r#"INSERT INTO "tenant_1"."guards" ("name", "position", "tenant_id") VALUES ($1, $2, $3), ($4, $5, $6) RETURNING {ALL}"#
        )
    );
    assert_eq!(
        text(statement::select_by_pk::<D, B>(&acme, &ROWS, statement::Value::Bound(&key)), 2),
        format!(r#"SELECT {ALL} FROM "tenant_1"."guards" WHERE "tenant_id" = $1 AND "id" = $2"#)
    );
    assert_eq!(
        text(statement::count::<D, B>(&acme, &ROWS, &no_conditions(), &Window::default()), 1),
        r#"SELECT COUNT(*) FROM "tenant_1"."guards" WHERE "tenant_id" = $1"#
    );
    assert_eq!(
        text(statement::delete_where::<D, B>(&acme, &ROWS, c, &window(&[], true, false)), 4),
        r#"DELETE FROM "tenant_1"."guards" WHERE "tenant_id" = $1 AND "id" IN (SELECT "id" FROM "tenant_1"."guards" WHERE "tenant_id" = $2 AND "name" = $3 LIMIT $4)"#
    );
    assert_eq!(
        text(
            statement::upsert::<D, B>(&acme, &ROWS, &rows(1), &["name"], OnConflictAction::Update(&["position"])),
            3
        ),
        format!(
            r#"INSERT INTO "tenant_1"."guards" ("name", "position", "tenant_id") VALUES ($1, $2, $3) ON CONFLICT ("name") DO UPDATE SET "position" = EXCLUDED."position" WHERE "guards"."tenant_id" = EXCLUDED."tenant_id" RETURNING {ALL}"#
        )
    );
    // A tenant in its own container filters too (its own name), in its own schema.
    assert_eq!(
        text(statement::count::<D, B>(&t2(), &ROWS, &no_conditions(), &Window::default()), 1),
        r#"SELECT COUNT(*) FROM "tenant_2"."guards" WHERE "tenant_id" = $1"#
    );

    // A semi-join's related rows are the same tenant's.
    let related = |table: &'static TableDef| {
        vec![Predicate::Exists(Box::new(Exists {
            table,
            column: "id",
            outer_column: "position",
            predicate: Predicate::All(Vec::new()),
        }))]
    };
    let with_sites = related(&ROW_SITES);
    assert_eq!(
        text(statement::select::<D, B>(&acme, &ROWS, &with_sites, &Window::default()), 2),
        format!(r#"SELECT {ALL} FROM "tenant_1"."guards" WHERE "tenant_id" = $1 AND EXISTS (SELECT 1 FROM "tenant_1"."sites" AS "__j1" WHERE "__j1"."id" = "tenant_1"."guards"."position" AND "__j1"."tenant_id" = $2)"#)
    );
    // Refused: a related table, or the table itself, without the column; a raw text.
    let refused = |statement: crate::statement::Statement<'_, B>| {
        let err = statement.arguments().unwrap_err();
        crate::statement::Refusal::of(&err).expect("a refusal").table
    };
    let without = related(&SITES);
    assert_eq!(refused(statement::select::<D, B>(&acme, &ROWS, &without, &Window::default())), "sites");
    assert_eq!(refused(statement::select_by_pk::<D, B>(&acme, &GUARDS, statement::Value::Bound(&key))), "guards");
    let none: Vec<Box<dyn Bind<B>>> = Vec::new();
    let raw = statement::raw::<D, B>("DELETE FROM {guards}", &acme, &[&ROWS], &none).unwrap();
    assert_eq!(refused(raw), "guards");
    // The same raw text on a tenant in its own container is its own rows: sent as written.
    let own = statement::raw::<D, B>("DELETE FROM {guards}", &t1(), &[&ROWS], &none).unwrap();
    assert_eq!(text(own, 0), r#"DELETE FROM "tenant_1"."guards""#);

    // Across tenants, each branch binds its own tenant (no value shared between branches).
    let across = statement::count_across::<D, B>(&[t1(), acme.clone()], &ROWS, c, &Window::default());
    assert_eq!(
        text(across, 4),
        r#"SELECT 0 AS "__tenant", COUNT(*) FROM "tenant_1"."guards" WHERE "tenant_id" = $1 AND "name" = $2 UNION ALL SELECT 1 AS "__tenant", COUNT(*) FROM "tenant_1"."guards" WHERE "tenant_id" = $3 AND "name" = $4"#
    );
}

#[test]
fn a_rewrite_numbers_its_placeholders_in_the_order_it_binds_its_names() {
    rewrites_as::<D>("UPDATE t SET c = $1 WHERE c = $2", "DELETE FROM t WHERE c = $1");
    // And the one catalog query that asks which tenants have a table.
    asks_which_containers::<D, B>(Some("SELECT n.nspname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = $1 AND n.nspname IN ($2, $3)"));
}

/// A query's text written once per thread is reused only for the same statement, tenant, table
/// and shape: each statement, built again and again in one thread among all the others, reads
/// as it does when built first in a thread of its own (an empty cache), with as many values.
#[test]
fn reused_query_texts_stay_with_their_tenant_table_and_shape() {
    // GUARDS's columns with a tenant column: the same list of columns, another text.
    const ROWS: TableDef = TableDef {
        tenant_column: Some("tenant_id"),
        ..GUARDS
    };
    const NARROW: TableDef = TableDef {
        name: "guards",
        columns: &[ColumnDef::new("id").primary_key(), ColumnDef::new("name")],
        schema: None,
        tenant_column: None,
    };
    fn acme() -> crate::tenant::Tenant {
        crate::tenant::Tenant::new("acme").unwrap().rows_in(&t1())
    }
    fn two_of(column: &'static str) -> Vec<Predicate<B>> {
        let values: Vec<Box<dyn Bind<B>>> = vec![Box::new(1_i64), Box::new(2_i64)];
        vec![Predicate::compare(column, Op::In, values)]
    }
    fn grouped(all: bool) -> Vec<Predicate<B>> {
        let parts = vec![cmp("name", Op::Eq), cmp("position", Op::Lt)];
        vec![
            if all { Predicate::All(parts) } else { Predicate::Any(parts) },
            cmp("id", Op::Ge),
        ]
    }
    fn related() -> Vec<Predicate<B>> {
        vec![Predicate::Exists(Box::new(Exists {
            table: &SITES,
            column: "id",
            outer_column: "position",
            predicate: cmp("city", Op::Eq),
        }))]
    }
    type Case = fn() -> (String, usize);
    let cases: [(&str, Case); 20] = [
        ("t1 name", || sel_(&t1(), &GUARDS, &[cmp("name", Op::Eq)], window(BY_ID, true, false))),
        ("t2 name", || sel_(&t2(), &GUARDS, &[cmp("name", Op::Eq)], window(BY_ID, true, false))),
        ("acme rows", || sel_(&acme(), &ROWS, &[cmp("name", Op::Eq)], window(BY_ID, true, false))),
        ("t1 rows", || sel_(&t1(), &ROWS, &[cmp("name", Op::Eq)], window(BY_ID, true, false))),
        ("t1 narrow", || sel_(&t1(), &NARROW, &[cmp("name", Op::Eq)], window(BY_ID, true, false))),
        ("position", || sel_(&t1(), &GUARDS, &[cmp("position", Op::Eq)], window(BY_ID, true, false))),
        ("ne", || sel_(&t1(), &GUARDS, &[cmp("name", Op::Ne)], window(BY_ID, true, false))),
        ("in 3", || sel_(&t1(), &GUARDS, &[cmp("id", Op::In)], Window::default())),
        ("in 2", || sel_(&t1(), &GUARDS, &two_of("id"), Window::default())),
        ("is null", || sel_(&t1(), &GUARDS, &[cmp("name", Op::IsNull)], Window::default())),
        ("all", || sel_(&t1(), &GUARDS, &grouped(true), Window::default())),
        ("any", || sel_(&t1(), &GUARDS, &grouped(false), Window::default())),
        ("not", || sel_(&t1(), &GUARDS, &[Predicate::Not(Box::new(cmp("name", Op::Eq)))], Window::default())),
        ("desc", || sel_(&t1(), &GUARDS, &[cmp("name", Op::Eq)], window(BY_NAME_DESC, true, false))),
        ("offset", || sel_(&t1(), &GUARDS, &[cmp("name", Op::Eq)], window(BY_ID, false, true))),
        ("both", || sel_(&t1(), &GUARDS, &[cmp("name", Op::Eq)], window(BY_NAME_THEN_ID_DESC, true, true))),
        ("exists", || sel_(&acme(), &ROWS, &related(), Window::default())),
        ("count", || shown(statement::count::<D, B>(&t1(), &GUARDS, &[cmp("name", Op::Eq)], &window(BY_ID, true, false)))),
        ("delete", || shown(statement::delete_where::<D, B>(&t1(), &GUARDS, &[cmp("name", Op::Eq)], &window(BY_ID, true, false)))),
        ("acme delete", || shown(statement::delete_where::<D, B>(&acme(), &ROWS, &[cmp("name", Op::Eq)], &Window::default()))),
    ];
    let fresh: Vec<(String, usize)> = cases
        .iter()
        .map(|&(_, case)| std::thread::spawn(case).join().unwrap())
        .collect();
    // Every text differs from every other (each case is a shape of its own), but for a
    // row-level tenant's and its container's own on the table with a tenant column: both bind
    // the tenant's name.
    for (i, a) in fresh.iter().enumerate() {
        for (j, b) in fresh.iter().enumerate().skip(i + 1) {
            if (i, j) != (2, 3) {
                assert_ne!(a.0, b.0, "cases {} and {}", cases[i].0, cases[j].0);
            }
        }
    }
    assert_eq!(
        fresh[2],
        (
            format!(r#"SELECT {ALL} FROM "tenant_1"."guards" WHERE "tenant_id" = $1 AND "name" = $2 ORDER BY "id" ASC LIMIT $3"#),
            3
        )
    );
    for round in 0..3 {
        for (i, &(name, case)) in cases.iter().enumerate() {
            assert_eq!(case(), fresh[i], "{name}, round {round}");
        }
    }
    // Another row-level tenant of the same container shares the text, binding its own name.
    let other = crate::tenant::Tenant::new("other").unwrap().rows_in(&t1());
    let c = [cmp::<B>("name", Op::Eq)];
    assert_eq!(sel_(&other, &ROWS, &c, window(BY_ID, true, false)), fresh[2]);
}

/// [`reused_query_texts_stay_with_their_tenant_table_and_shape`]'s select: text and values.
fn sel_(
    tenant: &crate::tenant::Tenant,
    table: &TableDef,
    conditions: &[Predicate<B>],
    window: Window<'_>,
) -> (String, usize) {
    shown(statement::select::<D, B>(tenant, table, conditions, &window))
}

/// A statement's text and how many values it binds.
fn shown(statement: statement::Statement<'_, B>) -> (String, usize) {
    (statement.sql().to_owned(), statement.len())
}
