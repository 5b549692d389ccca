//! MySQL's statements as text: `` `quoted` `` identifiers, `?` placeholders taking a value
//! each, no `RETURNING`, and the derived table MySQL needs to choose rows of the table it
//! changes.

use sqlx::MySql;

use super::MySqlDialect as D;
use crate::lifecycle::store::rewrites_as;
use crate::statement::test_support::*;
use crate::statement::{self, Aggregate, OnConflictAction, Op, Predicate, Window};
use crate::value::Bind;

type B = MySql;

#[test]
fn writes_without_returning_and_reads_back_by_key_or_target() {
    assert_eq!(
        text(statement::insert::<D, B>(&t1(), &GUARDS, &rows(2)), 4),
        "INSERT INTO `tenant_1`.`guards` (`name`, `position`) VALUES (?, ?), (?, ?)"
    );
    assert_eq!(
        text(statement::update::<D, B>(&t1(), &GUARDS, &Row, &[1]), 2),
        "UPDATE `tenant_1`.`guards` SET `name` = ? WHERE `id` = ?"
    );
    assert_eq!(
        text(super::write::select_last_insert(statement_about(), &GUARDS), 0),
        "SELECT `id`, `name`, `position`, `inserted_at` FROM `tenant_1`.`guards` WHERE `id` = LAST_INSERT_ID()"
    );
    assert_eq!(
        text(statement::select_by::<D, B>(&t1(), &GUARDS, &Row, &[1, 2], false), 2),
        "SELECT `id`, `name`, `position`, `inserted_at` FROM `tenant_1`.`guards` WHERE `name` = ? AND `position` = ?"
    );
    assert_eq!(
        text(statement::select_by::<D, B>(&t1(), &GUARDS, &Row, &[1], true), 1),
        "SELECT `id`, `name`, `position`, `inserted_at` FROM `tenant_1`.`guards` WHERE `name` = ? FOR UPDATE"
    );
}

fn statement_about() -> crate::backend::About<'static> {
    static T1: std::sync::OnceLock<crate::tenant::Tenant> = std::sync::OnceLock::new();
    crate::backend::About::new("select", T1.get_or_init(t1), "guards")
}

#[test]
fn upsert_is_on_duplicate_key() {
    // (action, what follows ON DUPLICATE KEY UPDATE)
    let cases = [
        (
            OnConflictAction::Update(&["name", "position"]),
            "`name` = VALUES(`name`), `position` = VALUES(`position`)",
        ),
        (OnConflictAction::Nothing, "`id` = `id`"),
    ];
    for (action, update) in cases {
        assert_eq!(
            text(
                statement::upsert::<D, B>(&t1(), &GUARDS, &rows(1), &["name"], action),
                2
            ),
            format!(
                "INSERT INTO `tenant_1`.`guards` (`name`, `position`) VALUES (?, ?) ON DUPLICATE KEY UPDATE {update}"
            )
        );
    }
}

#[test]
fn choosing_rows_of_the_changed_table_goes_through_a_derived_table() {
    let c = &conds::<B>()[..1];
    let sets: Vec<(&'static str, Box<dyn Bind<B>>)> =
        vec![("name", Box::new(1_i64)), ("position", Box::new(2_i64))];
    assert_eq!(
        text(
            statement::update_where::<D, B>(&t1(), &GUARDS, &sets, c, &window(&[], true, false)),
            4
        ),
        "UPDATE `tenant_1`.`guards` SET `name` = ?, `position` = ? WHERE `id` IN (SELECT `id` FROM (SELECT `id` FROM `tenant_1`.`guards` WHERE `name` = ? LIMIT ?) AS chosen)"
    );
    assert_eq!(
        text(
            statement::delete_where::<D, B>(&t1(), &GUARDS, c, &window(&BY_ID_DESC, true, true)),
            3
        ),
        "DELETE FROM `tenant_1`.`guards` WHERE `id` IN (SELECT `id` FROM (SELECT `id` FROM `tenant_1`.`guards` WHERE `name` = ? ORDER BY `id` DESC LIMIT ? OFFSET ?) AS chosen)"
    );
    assert_eq!(
        text(
            statement::aggregate::<D, B>(&t1(), &GUARDS, Aggregate::Avg, "id", None, &[], &window(&[], true, false)),
            1
        ),
        "SELECT CAST(AVG(`id`) AS DOUBLE) FROM (SELECT * FROM `tenant_1`.`guards` LIMIT ?) AS chosen"
    );
}

const BY_ID_DESC: [crate::statement::OrderTerm; 1] = [crate::statement::OrderTerm {
    column: "id",
    descending: true,
}];

#[test]
fn offset_alone_needs_a_limit() {
    assert_eq!(
        text(
            statement::select::<D, B>(&t1(), &ONLY_ID, &conds()[..1], &window(&[], false, true)),
            2
        ),
        "SELECT `id` FROM `tenant_1`.`counters` WHERE `name` = ? LIMIT 18446744073709551615 OFFSET ?"
    );
}

#[test]
fn nested_groups_bind_in_the_order_they_read() {
    let either = Predicate::Any(vec![cmp::<B>("id", Op::Lt), cmp("id", Op::Gt)]);
    let nested = Predicate::All(vec![either, cmp("name", Op::Ne)]);
    let conditions = [Predicate::Any(vec![nested, cmp("id", Op::Eq)])];
    assert_eq!(
        text(
            statement::select::<D, B>(&t1(), &ONLY_ID, &conditions, &Window::default()),
            4
        ),
        "SELECT `id` FROM `tenant_1`.`counters` WHERE ((`id` < ? OR `id` > ?) AND `name` <> ?) OR `id` = ?"
    );
}

#[test]
fn across_tenants_each_branch_binds_its_own_values() {
    let c = &conds::<B>()[..1];
    // `?` takes the next value: two branches of a name and a limit bind four.
    assert_eq!(
        text(
            statement::select_across::<D, B>(&[t1(), t2()], &ONLY_ID, c, &window(&[], true, false)),
            4
        ),
        "(SELECT `id`, 0 AS `__tenant` FROM `tenant_1`.`counters` WHERE `name` = ? LIMIT ?) UNION ALL (SELECT `id`, 1 AS `__tenant` FROM `tenant_2`.`counters` WHERE `name` = ? LIMIT ?) ORDER BY `__tenant`"
    );
}

#[test]
fn raw_templates_use_question_marks_and_backquotes() {
    let none: Vec<Box<dyn Bind<B>>> = Vec::new();
    assert_eq!(
        text(
            statement::raw::<D, B>("DELETE FROM {counters}", &t2(), &[&GUARDS, &ONLY_ID], &none)
                .unwrap(),
            0
        ),
        "DELETE FROM `tenant_2`.`counters`"
    );
    let mut out = String::new();
    <D as statement::Dialect>::quote_ident(&mut out, "we`ird");
    assert_eq!(out, "`we``ird`");
}

#[test]
fn a_rewrite_binds_its_names_in_the_order_of_its_placeholders() {
    rewrites_as::<D>("UPDATE t SET c = ? WHERE c = ?", "DELETE FROM t WHERE c = ?");
    // And the one catalog query that asks which tenants have a table.
    asks_which_containers::<D, B>(Some("SELECT CAST(table_schema AS CHAR) FROM information_schema.tables WHERE table_name = ? AND table_schema IN (?, ?)"));
}
