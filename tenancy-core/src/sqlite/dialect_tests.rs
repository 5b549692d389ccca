//! SQLite's statements as text: every table is `"main"."table"` (the file the connection has
//! open), `?n` placeholders, `RETURNING`.

use sqlx::Sqlite;

use super::SqliteDialect as D;
use crate::lifecycle::store::rewrites_as;
use crate::statement::test_support::*;
use crate::statement::{self, Aggregate, Exists, OnConflictAction, Op, Predicate, Window};
use crate::value::Bind;

type B = Sqlite;

#[test]
fn tables_are_the_connections_own_file() {
    assert_eq!(
        text(statement::insert::<D, B>(&t1(), &GUARDS, &rows(2)), 4),
        format!(
            r#"INSERT INTO "main"."guards" ("name", "position") VALUES (?1, ?2), (?3, ?4) RETURNING {ALL}"#
        )
    );
    assert_eq!(
        text(statement::update::<D, B>(&t2(), &GUARDS, &Row, &[1]), 2),
        format!(r#"UPDATE "main"."guards" SET "name" = ?1 WHERE "id" = ?2 RETURNING {ALL}"#)
    );
    assert_eq!(
        text(
            statement::upsert::<D, B>(
                &t1(),
                &GUARDS,
                &rows(1),
                &["name", "position"],
                OnConflictAction::Nothing
            ),
            2
        ),
        format!(
            r#"INSERT INTO "main"."guards" ("name", "position") VALUES (?1, ?2) ON CONFLICT ("name", "position") DO NOTHING RETURNING {ALL}"#
        )
    );
    assert_eq!(
        text(
            statement::aggregate::<D, B>(
                &t1(),
                &GUARDS,
                Aggregate::Max,
                "name",
                None,
                &[],
                &Window::default()
            ),
            0
        ),
        r#"SELECT MAX("name") FROM "main"."guards""#
    );
}

#[test]
fn offset_alone_needs_a_limit() {
    assert_eq!(
        text(
            statement::select::<D, B>(&t1(), &ONLY_ID, &conds()[..1], &window(&[], false, true)),
            2
        ),
        r#"SELECT "id" FROM "main"."counters" WHERE "name" = ?1 LIMIT -1 OFFSET ?2"#
    );
}

#[test]
fn nested_semi_joins_link_to_the_enclosing_alias() {
    let at_site = |predicate| {
        Predicate::Exists(Box::new(Exists {
            table: &SITES,
            column: "id",
            outer_column: "position",
            predicate,
        }))
    };
    let conditions = [Predicate::Exists(Box::new(Exists {
        table: &GUARDS,
        column: "name",
        outer_column: "city",
        predicate: Predicate::Not(Box::new(at_site(Predicate::<B>::All(vec![])))),
    }))];
    assert_eq!(
        text(
            statement::delete_where::<D, B>(&t2(), &SITES, &conditions, &Window::default()),
            0
        ),
        r#"DELETE FROM "main"."sites" WHERE EXISTS (SELECT 1 FROM "main"."guards" AS "__j1" WHERE "__j1"."name" = "main"."sites"."city" AND NOT (EXISTS (SELECT 1 FROM "main"."sites" AS "__j2" WHERE "__j2"."id" = "__j1"."position")))"#
    );
    let conditions = [cmp::<B>("id", Op::In)];
    assert_eq!(
        text(
            statement::select::<D, B>(&t1(), &ONLY_ID, &conditions, &Window::default()),
            3
        ),
        r#"SELECT "id" FROM "main"."counters" WHERE "id" IN (?1, ?2, ?3)"#
    );
}

#[test]
fn raw_templates_name_the_main_file() {
    let one: Vec<Box<dyn Bind<B>>> = vec![Box::new(1_i64)];
    assert_eq!(
        text(
            statement::raw::<D, B>(
                "SELECT * FROM {guards} WHERE id = {}",
                &t1(),
                &[&GUARDS],
                &one
            )
            .unwrap(),
            1
        ),
        r#"SELECT * FROM "main"."guards" WHERE id = ?1"#
    );
}

#[test]
fn a_rewrite_numbers_its_placeholders_in_the_order_it_binds_its_names() {
    rewrites_as::<D>("UPDATE t SET c = ?1 WHERE c = ?2", "DELETE FROM t WHERE c = ?1");
    // A file per tenant: no statement asks which containers have a table.
    asks_which_containers::<D, B>(None);
}
