//! All SQL text of the crate, built in one place and unit-tested without a database.
//!
//! Every statement names its table as `"<tenant>"."<table>"`, every identifier is quoted, and
//! every value is a placeholder: values never enter the text. The text depends on a [`Dialect`]:
//! [`Postgres`] (`"quoted"`, `$n`, `RETURNING`) and [`MySql`] (`` `quoted` ``, `?`, rows read
//! back). Not a stable API: it is public for the benchmarks and tests that compare against it.

use std::fmt::Write as _;

use crate::model::{ColumnDef, TableDef};
use crate::tenant::Tenant;

/// The PostgreSQL lifecycle's SQL text (it lives with the PostgreSQL backend).
pub use crate::pg::sql as lifecycle;

/// How one SQL dialect writes identifiers, placeholders and the clauses that differ.
pub trait Dialect {
    /// Whether `INSERT` and `UPDATE` return the stored row with `RETURNING <columns>`; if not,
    /// the caller reads it back.
    const RETURNING: bool;
    /// Whether a placeholder names its value (`$1` may appear twice); if not (`?`), each
    /// placeholder takes the next value.
    const NUMBERED_PARAMS: bool;
    /// Whether `DELETE`/`UPDATE … WHERE pk IN (SELECT pk FROM <same table> … LIMIT …)` must
    /// read the chosen keys through a derived table (MySQL refuses a subquery on the table it
    /// changes, and `LIMIT` inside `IN`).
    const DELETE_THROUGH_DERIVED_TABLE: bool;
    /// What `OFFSET` without `LIMIT` needs before it (MySQL: a `LIMIT` of the largest value).
    const LIMIT_FOR_OFFSET: Option<&'static str>;
    /// The expression of the key a generated-key insert just produced on this connection, for
    /// reading the row back (`LAST_INSERT_ID()`); unused where [`RETURNING`](Self::RETURNING).
    const LAST_INSERT_ID: &'static str;
    /// Whether a table is named with its tenant's container (`"tenant"."guards"`): any
    /// connection then serves any tenant. If not (SQLite: a file per tenant), the table is
    /// `"main"."guards"`, the file the connection has open, and the executor must belong to the
    /// statement's tenant (checked before sending).
    const QUALIFIES: bool = true;
    /// Whether an upsert is `ON DUPLICATE KEY UPDATE "c" = VALUES("c")` (MySQL: any unique
    /// key conflicts, no target) rather than `ON CONFLICT (<target>) DO UPDATE SET "c" =
    /// EXCLUDED."c"`.
    const ON_DUPLICATE_KEY: bool = false;
    /// The type a `CAST` to a 64-bit integer names (`BIGINT`; MySQL: `SIGNED`).
    const INTEGER_TYPE: &'static str = "BIGINT";
    /// The type a `CAST` to a double-precision float names.
    const FLOAT_TYPE: &'static str;
    /// Appends `ident` as a quoted identifier.
    fn quote_ident(out: &mut String, ident: &str);
    /// Appends the placeholder of the `n`-th bound value (1-based).
    fn placeholder(out: &mut String, n: usize);
}

/// PostgreSQL: `"double quoted"` identifiers, `$n` placeholders.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

impl Dialect for Postgres {
    const RETURNING: bool = true;
    const NUMBERED_PARAMS: bool = true;
    const DELETE_THROUGH_DERIVED_TABLE: bool = false;
    const LIMIT_FOR_OFFSET: Option<&'static str> = None;
    const LAST_INSERT_ID: &'static str = "lastval()";
    const FLOAT_TYPE: &'static str = "DOUBLE PRECISION";

    fn quote_ident(out: &mut String, ident: &str) {
        quote_ident_into(out, ident)
    }

    fn placeholder(out: &mut String, n: usize) {
        let _ = write!(out, "${n}");
    }
}

/// MySQL and MariaDB: `` `backquoted` `` identifiers, `?` placeholders, no `RETURNING` (the
/// row is read back by key or `LAST_INSERT_ID()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MySql;

impl Dialect for MySql {
    const RETURNING: bool = false;
    const NUMBERED_PARAMS: bool = false;
    const DELETE_THROUGH_DERIVED_TABLE: bool = true;
    // The documented idiom: the largest unsigned 64-bit value.
    const LIMIT_FOR_OFFSET: Option<&'static str> = Some(" LIMIT 18446744073709551615");
    const LAST_INSERT_ID: &'static str = "LAST_INSERT_ID()";
    const INTEGER_TYPE: &'static str = "SIGNED";
    const ON_DUPLICATE_KEY: bool = true;
    const FLOAT_TYPE: &'static str = "DOUBLE";

    fn quote_ident(out: &mut String, ident: &str) {
        quote_into(out, ident, '`')
    }

    fn placeholder(out: &mut String, _n: usize) {
        out.push('?');
    }
}

/// SQLite: `"double quoted"` identifiers, `?n` placeholders, `RETURNING` (3.35+), and tables
/// named `"main"."table"`: a tenant is the file its connection has open.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sqlite;

impl Dialect for Sqlite {
    const RETURNING: bool = true;
    const NUMBERED_PARAMS: bool = true;
    const DELETE_THROUGH_DERIVED_TABLE: bool = false;
    // SQLite's grammar has OFFSET only after LIMIT; a negative limit means none.
    const LIMIT_FOR_OFFSET: Option<&'static str> = Some(" LIMIT -1");
    const LAST_INSERT_ID: &'static str = "last_insert_rowid()";
    const QUALIFIES: bool = false;
    const INTEGER_TYPE: &'static str = "INTEGER";
    const FLOAT_TYPE: &'static str = "REAL";

    fn quote_ident(out: &mut String, ident: &str) {
        quote_ident_into(out, ident)
    }

    fn placeholder(out: &mut String, n: usize) {
        let _ = write!(out, "?{n}");
    }
}

/// Appends `ident` double-quoted, doubling any `"` inside (PostgreSQL and ANSI SQL quoting).
pub fn quote_ident_into(out: &mut String, ident: &str) {
    quote_into(out, ident, '"')
}

/// Appends `text` between two `quote`s, doubling any `quote` inside.
pub(crate) fn quote_into(out: &mut String, text: &str, quote: char) {
    out.push(quote);
    for c in text.chars() {
        if c == quote {
            out.push(quote);
        }
        out.push(c);
    }
    out.push(quote);
}

/// A comparison in a `WHERE` clause, rendered as `"column" <op> <placeholders>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `= $n`
    Eq,
    /// `<> $n`
    Ne,
    /// `< $n`
    Lt,
    /// `<= $n`
    Le,
    /// `> $n`
    Gt,
    /// `>= $n`
    Ge,
    /// `LIKE $n`
    Like,
    /// `IN ($n, …)` with this many values; `IN` of nothing is rendered `FALSE`.
    In(usize),
    /// `= ANY($n)`: one bound array of values (PostgreSQL).
    AnyOf,
    /// `IS NULL`
    IsNull,
    /// `IS NOT NULL`
    IsNotNull,
}

impl Op {
    /// How many bound values the comparison takes.
    pub fn values(self) -> usize {
        match self {
            Op::In(n) => n,
            Op::IsNull | Op::IsNotNull => 0,
            _ => 1,
        }
    }
}

/// One comparison on a column (a leaf of a [`Predicate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    /// The column's name (quoted when rendered).
    pub column: &'static str,
    /// The comparison.
    pub op: Op,
}

/// A `WHERE` predicate: one comparison, or a group of predicates. A statement's top-level
/// predicates are joined with `AND`; values are bound in the order the comparisons are
/// rendered (depth first, left to right).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// One comparison on a column.
    Compare(Condition),
    /// Every predicate holds (`a AND b …`); none given is `TRUE`.
    All(Vec<Predicate>),
    /// At least one predicate holds (`a OR b …`); none given is `FALSE`.
    Any(Vec<Predicate>),
    /// The predicate does not hold (`NOT (…)`; as in SQL, a comparison with `NULL` is neither
    /// true nor false, so its negation does not match that row either).
    Not(Box<Predicate>),
    /// A row of another table of the same tenant is related and matches (a semi-join).
    Exists(Box<Exists>),
}

/// `EXISTS (SELECT 1 FROM "<same tenant>"."<table>" AS "__jN" WHERE "__jN"."<column>" =
/// <outer>."<outer_column>" AND <predicate>)`: the inner table is always named in the outer
/// statement's tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exists {
    /// The related table.
    pub table: &'static TableDef,
    /// Its column that must equal the outer row's `outer_column`.
    pub column: &'static str,
    /// The outer row's column.
    pub outer_column: &'static str,
    /// What the related row must also satisfy (its columns are the related table's).
    pub predicate: Predicate,
}

impl From<Condition> for Predicate {
    fn from(condition: Condition) -> Self {
        Predicate::Compare(condition)
    }
}

/// One `ORDER BY` term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderTerm {
    /// The column's name (quoted when rendered).
    pub column: &'static str,
    /// Descending when true.
    pub descending: bool,
}

/// What a `SELECT` reads beyond its conditions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    /// `ORDER BY` terms, in order.
    pub order: Vec<OrderTerm>,
    /// Whether a `LIMIT` value is bound (after the conditions' values).
    pub limit: bool,
    /// Whether an `OFFSET` value is bound (after the limit's).
    pub offset: bool,
}

impl Window {
    fn is_empty(&self) -> bool {
        self.order.is_empty() && !self.limit && !self.offset
    }
}

/// Builds one statement, numbering placeholders as it goes.
struct Sql<D: Dialect> {
    text: String,
    params: usize,
    /// Where the last table named was written: its container `[.0, .1)`, the whole `[.0, .2)`
    /// (what a semi-join's inner table and link refer to).
    last_table: (usize, usize, usize),
    dialect: std::marker::PhantomData<D>,
}

impl<D: Dialect> Sql<D> {
    fn new(start: &str) -> Self {
        let mut text = String::with_capacity(128);
        text.push_str(start);
        Sql {
            text,
            params: 0,
            last_table: (0, 0, 0),
            dialect: std::marker::PhantomData,
        }
    }

    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    fn ident(&mut self, ident: &str) -> &mut Self {
        D::quote_ident(&mut self.text, ident);
        self
    }

    fn table(&mut self, tenant: &Tenant, table: &TableDef) -> &mut Self {
        let container = match table.schema {
            Some(schema) => schema,
            None if D::QUALIFIES => tenant.as_str(),
            None => "main",
        };
        let start = self.text.len();
        self.ident(container);
        let mid = self.text.len();
        self.push(".").ident(table.name);
        self.last_table = (start, mid, self.text.len());
        self
    }

    /// `EXISTS (…)` of a semi-join whose outer row is `outer` (an alias, or the last table
    /// named), at nesting `depth`; the inner table is in the last table's container (a tenant
    /// table in the same tenant), or its own schema if shared.
    fn exists(&mut self, exists: &Exists, outer: Option<&str>, depth: usize) -> &mut Self {
        let (start, mid, end) = self.last_table;
        let container = self.text[start..mid].to_owned();
        let outer = match outer {
            Some(alias) => {
                let mut quoted = String::new();
                D::quote_ident(&mut quoted, alias);
                quoted
            }
            None => self.text[start..end].to_owned(),
        };
        let alias = format!("__j{depth}");
        self.push("EXISTS (SELECT 1 FROM ");
        match exists.table.schema {
            Some(schema) => self.ident(schema),
            None => self.push(&container),
        };
        self.push(".")
            .ident(exists.table.name)
            .push(" AS ")
            .ident(&alias)
            .push(" WHERE ")
            .column(Some(&alias), exists.column)
            .push(" = ")
            .push(&outer)
            .push(".")
            .ident(exists.outer_column);
        if !matches!(&exists.predicate, Predicate::All(parts) if parts.is_empty()) {
            self.push(" AND ");
            self.predicate_at(&exists.predicate, Some(&alias), true, depth + 1);
        }
        self.last_table = (start, mid, end);
        self.push(")")
    }

    /// Numbers the next placeholders from `$1` again: each branch of a statement across
    /// tenants binds the same values, so the branches share one set of parameters.
    fn restart_params(&mut self) -> &mut Self {
        self.params = 0;
        self
    }

    fn param(&mut self) -> &mut Self {
        self.params += 1;
        D::placeholder(&mut self.text, self.params);
        self
    }

    fn idents<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> &mut Self {
        for (i, name) in names.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.ident(name);
        }
        self
    }

    /// `RETURNING <all columns>` where the dialect has it.
    fn returning(&mut self, table: &TableDef) -> &mut Self {
        if !D::RETURNING {
            return self;
        }
        self.push(" RETURNING ")
            .idents(table.columns.iter().map(|c| c.name))
    }

    fn where_pk(&mut self, table: &TableDef) -> &mut Self {
        self.push(" WHERE ")
            .ident(table.primary_key().name)
            .push(" = ")
            .param()
    }

    /// ` WHERE a AND b …` of the statement's top-level predicates (nothing if none).
    fn conditions(&mut self, predicates: &[Predicate]) -> &mut Self {
        let several = predicates.len() > 1;
        for (i, predicate) in predicates.iter().enumerate() {
            self.push(if i == 0 { " WHERE " } else { " AND " });
            self.predicate(predicate, None, several);
        }
        self
    }

    /// One predicate, its columns qualified with `alias` when given; `nested` when it is an
    /// operand of `AND`/`OR`/`NOT` (a group is then parenthesised).
    fn predicate(&mut self, predicate: &Predicate, alias: Option<&str>, nested: bool) -> &mut Self {
        self.predicate_at(predicate, alias, nested, 1)
    }

    fn predicate_at(
        &mut self,
        predicate: &Predicate,
        alias: Option<&str>,
        nested: bool,
        depth: usize,
    ) -> &mut Self {
        match predicate {
            Predicate::Exists(exists) => self.exists(exists, alias, depth),
            Predicate::Compare(cond) => self.comparison(cond, alias),
            Predicate::All(parts) | Predicate::Any(parts) => {
                let (joiner, empty) = match predicate {
                    Predicate::All(_) => (" AND ", "TRUE"),
                    _ => (" OR ", "FALSE"),
                };
                match parts.as_slice() {
                    [] => self.push(empty),
                    [only] => self.predicate_at(only, alias, nested, depth),
                    parts => {
                        if nested {
                            self.push("(");
                        }
                        for (i, part) in parts.iter().enumerate() {
                            if i > 0 {
                                self.push(joiner);
                            }
                            self.predicate_at(part, alias, true, depth);
                        }
                        if nested {
                            self.push(")");
                        }
                        self
                    }
                }
            }
            Predicate::Not(inner) => {
                self.push("NOT (");
                self.predicate_at(inner, alias, false, depth);
                self.push(")")
            }
        }
    }

    /// `"column"` or `"alias"."column"`.
    fn column(&mut self, alias: Option<&str>, column: &str) -> &mut Self {
        if let Some(alias) = alias {
            self.ident(alias).push(".");
        }
        self.ident(column)
    }

    fn comparison(&mut self, cond: &Condition, alias: Option<&str>) -> &mut Self {
        match cond.op {
            Op::In(0) => return self.push("FALSE"),
            Op::IsNull => return self.column(alias, cond.column).push(" IS NULL"),
            Op::IsNotNull => return self.column(alias, cond.column).push(" IS NOT NULL"),
            _ => {}
        }
        self.column(alias, cond.column);
        let op = match cond.op {
            Op::Eq => " = ",
            Op::Ne => " <> ",
            Op::Lt => " < ",
            Op::Le => " <= ",
            Op::Gt => " > ",
            Op::Ge => " >= ",
            Op::Like => " LIKE ",
            Op::In(_) => " IN (",
            Op::AnyOf => " = ANY(",
            Op::IsNull | Op::IsNotNull => unreachable!("rendered above"),
        };
        self.push(op);
        if let Op::AnyOf = cond.op {
            return self.param().push(")");
        }
        if let Op::In(n) = cond.op {
            for j in 0..n {
                if j > 0 {
                    self.push(", ");
                }
                self.param();
            }
            self.push(")")
        } else {
            self.param()
        }
    }

    fn window(&mut self, window: &Window) -> &mut Self {
        for (i, term) in window.order.iter().enumerate() {
            self.push(if i == 0 { " ORDER BY " } else { ", " });
            self.ident(term.column)
                .push(if term.descending { " DESC" } else { " ASC" });
        }
        if window.limit {
            self.push(" LIMIT ").param();
        }
        if window.offset {
            if let (false, Some(limit)) = (window.limit, D::LIMIT_FOR_OFFSET) {
                self.push(limit);
            }
            self.push(" OFFSET ").param();
        }
        self
    }

    fn finish(self) -> String {
        self.text
    }
}

/// `INSERT INTO "t"."table" (<insertable>) VALUES (…), … RETURNING <all columns>`, for `rows`
/// rows. Generated columns are left to their database default. A table whose every column is
/// generated gets `VALUES (DEFAULT)` per row on its primary key.
pub fn insert<D: Dialect>(tenant: &Tenant, table: &TableDef, rows: usize) -> String {
    let mut sql = Sql::<D>::new("INSERT INTO ");
    sql.insert_values(tenant, table, rows).returning(table);
    sql.finish()
}

/// What an upsert does with a row whose key is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflictAction<'a> {
    /// Keeps the stored row (and returns nothing for it).
    Nothing,
    /// Sets these columns to the values the insert proposed.
    Update(&'a [&'a str]),
}

/// [`insert`] of `rows` rows that, where a row conflicts on the unique columns `target`, does
/// `action` instead: `… ON CONFLICT ("k") DO UPDATE SET "c" = EXCLUDED."c" RETURNING …` or
/// `DO NOTHING`. MySQL (no target: any unique key conflicts, no `RETURNING`): `… ON DUPLICATE
/// KEY UPDATE "c" = VALUES("c")`, and for nothing, the primary key set to itself.
pub fn upsert<D: Dialect>(
    tenant: &Tenant,
    table: &TableDef,
    rows: usize,
    target: &[&str],
    action: OnConflictAction<'_>,
) -> String {
    let mut sql = Sql::<D>::new("INSERT INTO ");
    sql.insert_values(tenant, table, rows);
    if D::ON_DUPLICATE_KEY {
        sql.push(" ON DUPLICATE KEY UPDATE ");
        match action {
            OnConflictAction::Nothing => {
                let pk = table.primary_key().name;
                sql.ident(pk).push(" = ").ident(pk);
            }
            OnConflictAction::Update(columns) => {
                for (i, column) in columns.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.ident(column).push(" = VALUES(").ident(column).push(")");
                }
            }
        }
    } else {
        sql.push(" ON CONFLICT (")
            .idents(target.iter().copied())
            .push(")");
        match action {
            OnConflictAction::Nothing => {
                sql.push(" DO NOTHING");
            }
            OnConflictAction::Update(columns) => {
                sql.push(" DO UPDATE SET ");
                for (i, column) in columns.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.ident(column).push(" = EXCLUDED.").ident(column);
                }
            }
        }
    }
    sql.returning(table);
    sql.finish()
}

/// `SELECT <all columns> FROM "t"."table" WHERE "k1" = $1 AND … [FOR UPDATE]`: a row by the
/// values of unique columns (an upserted row read back where there is no `RETURNING`; with
/// `lock`, also locking the key's gap so no other transaction inserts it meanwhile).
pub fn select_by<D: Dialect>(
    tenant: &Tenant,
    table: &TableDef,
    columns: &[&str],
    lock: bool,
) -> String {
    let mut sql = Sql::<D>::new("SELECT ");
    sql.idents(table.columns.iter().map(|c| c.name))
        .push(" FROM ")
        .table(tenant, table);
    for (i, column) in columns.iter().enumerate() {
        sql.push(if i == 0 { " WHERE " } else { " AND " })
            .ident(column)
            .push(" = ")
            .param();
    }
    if lock {
        sql.push(" FOR UPDATE");
    }
    sql.finish()
}

impl<D: Dialect> Sql<D> {
    /// `"t"."table" (<insertable>) VALUES (…), …` of an insert of `rows` rows.
    fn insert_values(&mut self, tenant: &Tenant, table: &TableDef, rows: usize) -> &mut Self {
        let insertable: Vec<&ColumnDef> = table.insertable().collect();
        self.table(tenant, table).push(" (");
        if insertable.is_empty() {
            self.ident(table.primary_key().name);
        } else {
            self.idents(insertable.iter().map(|c| c.name));
        }
        self.push(") VALUES ");
        for row in 0..rows {
            if row > 0 {
                self.push(", ");
            }
            self.push("(");
            if insertable.is_empty() {
                self.push("DEFAULT");
            }
            for i in 0..insertable.len() {
                if i > 0 {
                    self.push(", ");
                }
                self.param();
            }
            self.push(")");
        }
        self
    }
}

/// `UPDATE "t"."table" SET "c" = $1, … WHERE "pk" = $n RETURNING <all columns>` for the given
/// column indexes (none of them the primary key or generated; the caller checks).
pub fn update<D: Dialect>(tenant: &Tenant, table: &TableDef, columns: &[usize]) -> String {
    let mut sql = Sql::<D>::new("UPDATE ");
    sql.table(tenant, table).push(" SET ");
    for (i, &c) in columns.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.ident(table.columns[c].name).push(" = ").param();
    }
    sql.where_pk(table).returning(table);
    sql.finish()
}

/// `DELETE FROM "t"."table" WHERE "pk" = $1`.
pub fn delete_by_pk<D: Dialect>(tenant: &Tenant, table: &TableDef) -> String {
    let mut sql = Sql::<D>::new("DELETE FROM ");
    sql.table(tenant, table).where_pk(table);
    sql.finish()
}

/// `SELECT <all columns> FROM "t"."table" WHERE "pk" = $1`.
pub fn select_by_pk<D: Dialect>(tenant: &Tenant, table: &TableDef) -> String {
    let mut sql = Sql::<D>::new("SELECT ");
    sql.idents(table.columns.iter().map(|c| c.name))
        .push(" FROM ")
        .table(tenant, table)
        .where_pk(table);
    sql.finish()
}

/// `SELECT <all columns> FROM "t"."table" WHERE "pk" = LAST_INSERT_ID()`: the row a
/// generated-key insert just stored on this connection, where the dialect has no `RETURNING`.
pub fn select_by_last_insert_id<D: Dialect>(tenant: &Tenant, table: &TableDef) -> String {
    let mut sql = Sql::<D>::new("SELECT ");
    sql.idents(table.columns.iter().map(|c| c.name))
        .push(" FROM ")
        .table(tenant, table)
        .push(" WHERE ")
        .ident(table.primary_key().name)
        .push(" = ")
        .push(D::LAST_INSERT_ID);
    sql.finish()
}

/// `SELECT <all columns> FROM "t"."table" [WHERE …] [ORDER BY …] [LIMIT $n] [OFFSET $m]`.
pub fn select<D: Dialect>(
    tenant: &Tenant,
    table: &TableDef,
    conditions: &[Predicate],
    window: &Window,
) -> String {
    let mut sql = Sql::<D>::new("SELECT ");
    sql.idents(table.columns.iter().map(|c| c.name))
        .push(" FROM ")
        .table(tenant, table)
        .conditions(conditions)
        .window(window);
    sql.finish()
}

/// `SELECT COUNT(*) FROM "t"."table" [WHERE …]`; with a limit or offset the count is taken over
/// the selected window, so it agrees with what a fetch of the same query returns.
pub fn count<D: Dialect>(
    tenant: &Tenant,
    table: &TableDef,
    conditions: &[Predicate],
    window: &Window,
) -> String {
    let mut sql = Sql::<D>::new("SELECT ");
    sql.count_from(tenant, table, conditions, window);
    sql.finish()
}

impl<D: Dialect> Sql<D> {
    /// `COUNT(*) FROM …` of [`count`].
    fn count_from(
        &mut self,
        tenant: &Tenant,
        table: &TableDef,
        conditions: &[Predicate],
        window: &Window,
    ) -> &mut Self {
        self.push("COUNT(*) FROM ");
        if window.limit || window.offset {
            self.push("(SELECT 1 FROM ")
                .table(tenant, table)
                .conditions(conditions)
                .window(window)
                .push(") AS counted")
        } else {
            self.table(tenant, table).conditions(conditions)
        }
    }

    /// `<i> AS "__tenant"`: which tenant of the statement a row is from.
    fn branch_index(&mut self, index: usize) -> &mut Self {
        let _ = write!(self.text, "{index} AS ");
        self.ident(ACROSS_TENANT_COLUMN)
    }
}

/// The column a statement across tenants adds to every row: the position, in the statement's
/// list of tenants, of the tenant the row is from. An integer the library writes, so no tenant
/// name is rendered as a value.
pub const ACROSS_TENANT_COLUMN: &str = "__tenant";

/// One `SELECT` over the same table in several tenants:
/// `(SELECT <all columns>, 0 AS "__tenant" FROM "t1"."table" [WHERE …] [ORDER BY …] [LIMIT $n]
/// [OFFSET $m]) UNION ALL (… 1 AS "__tenant" FROM "t2"."table" …) … ORDER BY "__tenant"[, …]`.
///
/// Conditions, order, limit and offset apply within each tenant; rows come grouped by tenant,
/// in the order of `tenants`. Every branch uses the same placeholders (`$1` is the first
/// filter value in each), so the statement binds as many values as a query on one tenant,
/// however many tenants it covers. Empty `tenants` gives an empty string.
pub fn select_across<D: Dialect>(
    tenants: &[Tenant],
    table: &TableDef,
    conditions: &[Predicate],
    window: &Window,
) -> String {
    if tenants.is_empty() {
        return String::new();
    }
    let mut sql = Sql::<D>::new("");
    for (index, tenant) in tenants.iter().enumerate() {
        sql.push(if index == 0 {
            "(SELECT "
        } else {
            " UNION ALL (SELECT "
        })
        .restart_params()
        .idents(table.columns.iter().map(|c| c.name))
        .push(", ")
        .branch_index(index)
        .push(" FROM ")
        .table(tenant, table)
        .conditions(conditions)
        .window(window)
        .push(")");
    }
    sql.push(" ORDER BY ").ident(ACROSS_TENANT_COLUMN);
    for term in &window.order {
        sql.push(", ")
            .ident(term.column)
            .push(if term.descending { " DESC" } else { " ASC" });
    }
    sql.finish()
}

/// Per-tenant counts over the same table in several tenants, one row per tenant:
/// `SELECT 0 AS "__tenant", COUNT(*) FROM "t1"."table" [WHERE …] UNION ALL SELECT 1 AS
/// "__tenant", COUNT(*) FROM "t2"."table" …`, each branch as [`count`], sharing one set of
/// placeholders like [`select_across`]. Empty `tenants` gives an empty string.
pub fn count_across<D: Dialect>(
    tenants: &[Tenant],
    table: &TableDef,
    conditions: &[Predicate],
    window: &Window,
) -> String {
    let mut sql = Sql::<D>::new("");
    for (index, tenant) in tenants.iter().enumerate() {
        sql.push(if index == 0 {
            "SELECT "
        } else {
            " UNION ALL SELECT "
        })
        .restart_params()
        .branch_index(index)
        .push(", ")
        .count_from(tenant, table, conditions, window);
    }
    sql.finish()
}

/// The first of the schemas `$1` (`text[]`), in order, that has no table named `$2`: which
/// tenant made a statement across tenants fail with "relation does not exist".
pub fn first_without_table() -> &'static str {
    "SELECT schema FROM unnest($1::text[]) WITH ORDINALITY AS given(schema, position) \
     WHERE to_regclass(quote_ident(schema) || '.' || quote_ident($2)) IS NULL \
     ORDER BY position LIMIT 1"
}

/// `DELETE FROM "t"."table" [WHERE …]`; with an order, limit or offset, the rows deleted are
/// those the same `SELECT` would return, chosen by primary key.
pub fn delete_where<D: Dialect>(
    tenant: &Tenant,
    table: &TableDef,
    conditions: &[Predicate],
    window: &Window,
) -> String {
    let mut sql = Sql::<D>::new("DELETE FROM ");
    sql.table(tenant, table)
        .selected(tenant, table, conditions, window);
    sql.finish()
}

/// `UPDATE "t"."table" SET "a" = $1, … [WHERE …]` setting `columns` (their values bound first,
/// then the conditions'); with an order, limit or offset, the rows updated are those the same
/// `SELECT` would return, chosen by primary key.
pub fn update_where<D: Dialect>(
    tenant: &Tenant,
    table: &TableDef,
    columns: &[&str],
    conditions: &[Predicate],
    window: &Window,
) -> String {
    let mut sql = Sql::<D>::new("UPDATE ");
    sql.table(tenant, table).push(" SET ");
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.ident(column).push(" = ").param();
    }
    sql.selected(tenant, table, conditions, window);
    sql.finish()
}

/// An aggregate function of [`aggregate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// `COUNT(*)`: the rows (of each group).
    Count,
    /// `CAST(SUM("c") AS <64-bit integer>)`: the sum of an integer column.
    SumInteger,
    /// `CAST(SUM("c") AS <double>)`: the sum of a floating-point column.
    SumFloat,
    /// `CAST(AVG("c") AS <double>)`.
    Avg,
    /// `MIN("c")`.
    Min,
    /// `MAX("c")`.
    Max,
}

/// `SELECT [<key>,] <aggregate> FROM "t"."table" [WHERE …] [GROUP BY <key> ORDER BY <key>]`:
/// one value, or one row per value of `group_by`, in the key's order. With an order, limit or
/// offset the rows aggregated are those the same `SELECT` would return (as [`count`]). `column`
/// is ignored for [`Aggregate::Count`]. The result is cast to one type on every backend, so a
/// sum decodes as `i64` or `f64` whatever the server's own result type.
pub fn aggregate<D: Dialect>(
    tenant: &Tenant,
    table: &TableDef,
    function: Aggregate,
    column: &str,
    group_by: Option<&str>,
    conditions: &[Predicate],
    window: &Window,
) -> String {
    let mut sql = Sql::<D>::new("SELECT ");
    if let Some(key) = group_by {
        sql.ident(key).push(", ");
    }
    let cast = match function {
        Aggregate::Count => {
            sql.push("COUNT(*)");
            None
        }
        Aggregate::SumInteger => Some(("SUM(", D::INTEGER_TYPE)),
        Aggregate::SumFloat => Some(("SUM(", D::FLOAT_TYPE)),
        Aggregate::Avg => Some(("AVG(", D::FLOAT_TYPE)),
        Aggregate::Min => {
            sql.push("MIN(").ident(column).push(")");
            None
        }
        Aggregate::Max => {
            sql.push("MAX(").ident(column).push(")");
            None
        }
    };
    if let Some((function, ty)) = cast {
        sql.push("CAST(")
            .push(function)
            .ident(column)
            .push(") AS ")
            .push(ty)
            .push(")");
    }
    sql.push(" FROM ");
    if window.limit || window.offset {
        sql.push("(SELECT * FROM ")
            .table(tenant, table)
            .conditions(conditions)
            .window(window)
            .push(") AS chosen");
    } else {
        sql.table(tenant, table).conditions(conditions);
    }
    if let Some(key) = group_by {
        sql.push(" GROUP BY ")
            .ident(key)
            .push(" ORDER BY ")
            .ident(key);
    }
    sql.finish()
}

impl<D: Dialect> Sql<D> {
    /// ` [WHERE …]` choosing the rows a `SELECT` with these conditions and window returns: the
    /// conditions themselves, or with a window, the primary keys the window selects.
    fn selected(
        &mut self,
        tenant: &Tenant,
        table: &TableDef,
        conditions: &[Predicate],
        window: &Window,
    ) -> &mut Self {
        if window.is_empty() {
            return self.conditions(conditions);
        }
        let pk = table.primary_key().name;
        self.push(" WHERE ")
            .ident(pk)
            .push(" IN (SELECT ")
            .ident(pk);
        if D::DELETE_THROUGH_DERIVED_TABLE {
            self.push(" FROM (SELECT ").ident(pk);
        }
        self.push(" FROM ")
            .table(tenant, table)
            .conditions(conditions)
            .window(window);
        if D::DELETE_THROUGH_DERIVED_TABLE {
            self.push(") AS chosen");
        }
        self.push(")")
    }
}

/// What is wrong with a raw statement's template ([`raw`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawTemplateError {
    /// `{name}` names no table the statement was given.
    UnknownTable(String),
    /// A `{` without its `}`, or a `}` that is neither `}}` nor closes a `{`.
    Unbalanced(usize),
}

impl std::fmt::Display for RawTemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawTemplateError::UnknownTable(name) => write!(
                f,
                "the statement names {{{name}}}, which is not a table it was given (add its model with `.table::<Model>()`)"
            ),
            RawTemplateError::Unbalanced(at) => write!(
                f,
                "unbalanced brace at byte {at} of the statement (write a literal brace as {{{{ or }}}})"
            ),
        }
    }
}

/// Renders a raw statement's template for `tenant`: `{table}` (a table of `tables`, by name)
/// becomes the tenant's qualified table, `{}` the next placeholder, `{{` and `}}` literal
/// braces; everything else is copied. Returns the SQL and how many placeholders it has.
pub fn raw<D: Dialect>(
    template: &str,
    tenant: &Tenant,
    tables: &[&TableDef],
) -> Result<(String, usize), RawTemplateError> {
    let mut sql = Sql::<D>::new("");
    let mut rest = template;
    let mut at = 0;
    while let Some(i) = rest.find(['{', '}']) {
        sql.push(&rest[..i]);
        let brace = rest.as_bytes()[i];
        let after = &rest[i + 1..];
        if after.as_bytes().first() == Some(&brace) {
            sql.push(if brace == b'{' { "{" } else { "}" });
            rest = &after[1..];
            at += i + 2;
            continue;
        }
        if brace == b'}' {
            return Err(RawTemplateError::Unbalanced(at + i));
        }
        let close = after
            .find('}')
            .ok_or(RawTemplateError::Unbalanced(at + i))?;
        let name = &after[..close];
        if name.is_empty() {
            sql.param();
        } else {
            let table = tables
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| RawTemplateError::UnknownTable(name.to_owned()))?;
            sql.table(tenant, table);
        }
        rest = &after[close + 1..];
        at += i + close + 2;
    }
    sql.push(rest);
    let params = sql.params;
    Ok((sql.finish(), params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ColumnDef;

    const GUARDS: TableDef = TableDef {
        name: "guards",
        columns: &[
            ColumnDef::new("id").primary_key().generated(),
            ColumnDef::new("name"),
            ColumnDef::new("position"),
            ColumnDef::new("inserted_at").generated(),
        ],
        schema: None,
    };

    const ONLY_ID: TableDef = TableDef {
        name: "counters",
        columns: &[ColumnDef::new("id").primary_key().generated()],
        schema: None,
    };

    fn t1() -> Tenant {
        Tenant::new("tenant_1").unwrap()
    }

    const ALL: &str = r#""id", "name", "position", "inserted_at""#;

    #[test]
    fn insert_one_and_many() {
        assert_eq!(
            insert::<Postgres>(&t1(), &GUARDS, 1),
            format!(
                r#"INSERT INTO "tenant_1"."guards" ("name", "position") VALUES ($1, $2) RETURNING {ALL}"#
            )
        );
        assert_eq!(
            insert::<Postgres>(&t1(), &GUARDS, 3),
            format!(
                r#"INSERT INTO "tenant_1"."guards" ("name", "position") VALUES ($1, $2), ($3, $4), ($5, $6) RETURNING {ALL}"#
            )
        );
    }

    #[test]
    fn upsert_per_dialect() {
        let update = OnConflictAction::Update(&["name", "position"]);
        assert_eq!(
            upsert::<Postgres>(&t1(), &GUARDS, 2, &["name"], update),
            format!(
                r#"INSERT INTO "tenant_1"."guards" ("name", "position") VALUES ($1, $2), ($3, $4) ON CONFLICT ("name") DO UPDATE SET "name" = EXCLUDED."name", "position" = EXCLUDED."position" RETURNING {ALL}"#
            )
        );
        assert_eq!(
            upsert::<Sqlite>(
                &t1(),
                &GUARDS,
                1,
                &["name", "position"],
                OnConflictAction::Nothing
            ),
            format!(
                r#"INSERT INTO "main"."guards" ("name", "position") VALUES (?1, ?2) ON CONFLICT ("name", "position") DO NOTHING RETURNING {ALL}"#
            )
        );
        assert_eq!(
            upsert::<MySql>(&t1(), &GUARDS, 1, &["name"], update),
            "INSERT INTO `tenant_1`.`guards` (`name`, `position`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `name` = VALUES(`name`), `position` = VALUES(`position`)"
        );
        assert_eq!(
            upsert::<MySql>(&t1(), &GUARDS, 1, &["name"], OnConflictAction::Nothing),
            "INSERT INTO `tenant_1`.`guards` (`name`, `position`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `id` = `id`"
        );
        assert_eq!(
            select_by::<MySql>(&t1(), &GUARDS, &["name", "position"], false),
            "SELECT `id`, `name`, `position`, `inserted_at` FROM `tenant_1`.`guards` WHERE `name` = ? AND `position` = ?"
        );
    }

    #[test]
    fn update_and_aggregate_choose_rows_as_select_does() {
        let c = &conds()[..1];
        assert_eq!(
            update_where::<Postgres>(&t1(), &GUARDS, &["position"], c, &Window::default()),
            r#"UPDATE "tenant_1"."guards" SET "position" = $1 WHERE "name" = $2"#
        );
        let window = Window {
            order: vec![],
            limit: true,
            offset: false,
        };
        assert_eq!(
            update_where::<MySql>(&t1(), &GUARDS, &["name", "position"], c, &window),
            "UPDATE `tenant_1`.`guards` SET `name` = ?, `position` = ? WHERE `id` IN (SELECT `id` FROM (SELECT `id` FROM `tenant_1`.`guards` WHERE `name` = ? LIMIT ?) AS chosen)"
        );
        assert_eq!(
            aggregate::<Postgres>(
                &t1(),
                &GUARDS,
                Aggregate::SumInteger,
                "id",
                Some("position"),
                c,
                &Window::default()
            ),
            r#"SELECT "position", CAST(SUM("id") AS BIGINT) FROM "tenant_1"."guards" WHERE "name" = $1 GROUP BY "position" ORDER BY "position""#
        );
        assert_eq!(
            aggregate::<MySql>(&t1(), &GUARDS, Aggregate::Avg, "id", None, &[], &window),
            "SELECT CAST(AVG(`id`) AS DOUBLE) FROM (SELECT * FROM `tenant_1`.`guards` LIMIT ?) AS chosen"
        );
        assert_eq!(
            aggregate::<Sqlite>(
                &t1(),
                &GUARDS,
                Aggregate::Max,
                "name",
                None,
                &[],
                &Window::default()
            ),
            r#"SELECT MAX("name") FROM "main"."guards""#
        );
    }

    #[test]
    fn raw_templates_qualify_tables_and_number_values() {
        let tables = [&GUARDS, &ONLY_ID];
        let template = "SELECT {guards}.* FROM {guards} JOIN {counters} c ON c.id = {guards}.id WHERE name = {} AND data = '{{}}' LIMIT {}";
        assert_eq!(
            raw::<Postgres>(template, &t1(), &tables),
            Ok((
                r#"SELECT "tenant_1"."guards".* FROM "tenant_1"."guards" JOIN "tenant_1"."counters" c ON c.id = "tenant_1"."guards".id WHERE name = $1 AND data = '{}' LIMIT $2"#.to_owned(),
                2
            ))
        );
        assert_eq!(
            raw::<Sqlite>("SELECT * FROM {guards} WHERE id = {}", &t1(), &tables),
            Ok((
                r#"SELECT * FROM "main"."guards" WHERE id = ?1"#.to_owned(),
                1
            ))
        );
        assert_eq!(
            raw::<MySql>("DELETE FROM {counters}", &t2(), &tables),
            Ok(("DELETE FROM `tenant_2`.`counters`".to_owned(), 0))
        );
        assert_eq!(
            raw::<Postgres>("SELECT * FROM {sites}", &t1(), &tables),
            Err(RawTemplateError::UnknownTable("sites".to_owned()))
        );
        assert_eq!(
            raw::<Postgres>("SELECT * FROM {guards", &t1(), &tables),
            Err(RawTemplateError::Unbalanced(14))
        );
        assert_eq!(
            raw::<Postgres>("SELECT '}' FROM {guards}", &t1(), &tables),
            Err(RawTemplateError::Unbalanced(8))
        );
        // A tenant name cannot be smuggled in as a table: a name with quotes is not a table.
        assert_eq!(
            raw::<Postgres>(r#"SELECT * FROM {tenant_2"."guards}"#, &t1(), &tables),
            Err(RawTemplateError::UnknownTable(
                r#"tenant_2"."guards"#.to_owned()
            ))
        );
    }

    #[test]
    fn insert_with_only_generated_columns_uses_default() {
        assert_eq!(
            insert::<Postgres>(&t1(), &ONLY_ID, 2),
            r#"INSERT INTO "tenant_1"."counters" ("id") VALUES (DEFAULT), (DEFAULT) RETURNING "id""#
        );
    }

    #[test]
    fn update_sets_given_columns_and_keys_on_pk() {
        assert_eq!(
            update::<Postgres>(&t1(), &GUARDS, &[1, 2]),
            format!(
                r#"UPDATE "tenant_1"."guards" SET "name" = $1, "position" = $2 WHERE "id" = $3 RETURNING {ALL}"#
            )
        );
        assert_eq!(
            update::<Postgres>(&t1(), &GUARDS, &[2]),
            format!(
                r#"UPDATE "tenant_1"."guards" SET "position" = $1 WHERE "id" = $2 RETURNING {ALL}"#
            )
        );
    }

    #[test]
    fn by_primary_key() {
        assert_eq!(
            select_by_pk::<Postgres>(&t1(), &GUARDS),
            format!(r#"SELECT {ALL} FROM "tenant_1"."guards" WHERE "id" = $1"#)
        );
        assert_eq!(
            delete_by_pk::<Postgres>(&t1(), &GUARDS),
            r#"DELETE FROM "tenant_1"."guards" WHERE "id" = $1"#
        );
    }

    fn conds() -> Vec<Predicate> {
        [
            Condition {
                column: "name",
                op: Op::Eq,
            },
            Condition {
                column: "id",
                op: Op::In(3),
            },
            Condition {
                column: "position",
                op: Op::IsNull,
            },
            Condition {
                column: "position",
                op: Op::Like,
            },
            Condition {
                column: "id",
                op: Op::Ge,
            },
        ]
        .into_iter()
        .map(Predicate::from)
        .collect()
    }

    #[test]
    fn select_with_every_clause() {
        let window = Window {
            order: vec![
                OrderTerm {
                    column: "name",
                    descending: false,
                },
                OrderTerm {
                    column: "id",
                    descending: true,
                },
            ],
            limit: true,
            offset: true,
        };
        assert_eq!(
            select::<Postgres>(&t1(), &GUARDS, &conds(), &window),
            format!(
                r#"SELECT {ALL} FROM "tenant_1"."guards" WHERE "name" = $1 AND "id" IN ($2, $3, $4) AND "position" IS NULL AND "position" LIKE $5 AND "id" >= $6 ORDER BY "name" ASC, "id" DESC LIMIT $7 OFFSET $8"#
            )
        );
    }

    #[test]
    fn every_operator() {
        for (op, text) in [
            (Op::Eq, "= $1"),
            (Op::Ne, "<> $1"),
            (Op::Lt, "< $1"),
            (Op::Le, "<= $1"),
            (Op::Gt, "> $1"),
            (Op::Ge, ">= $1"),
            (Op::Like, "LIKE $1"),
            (Op::In(1), "IN ($1)"),
            (Op::AnyOf, "= ANY($1)"),
            (Op::IsNotNull, "IS NOT NULL"),
        ] {
            let sql = select::<Postgres>(
                &t1(),
                &ONLY_ID,
                &[Condition { column: "id", op }.into()],
                &Window::default(),
            );
            assert_eq!(
                sql,
                format!(r#"SELECT "id" FROM "tenant_1"."counters" WHERE "id" {text}"#)
            );
        }
    }

    fn cmp(column: &'static str, op: Op) -> Predicate {
        Condition { column, op }.into()
    }

    #[test]
    fn groups_are_parenthesised_and_numbered_depth_first() {
        let either = Predicate::Any(vec![cmp("id", Op::Lt), cmp("id", Op::Gt)]);
        let sql = select::<Postgres>(
            &t1(),
            &ONLY_ID,
            &[
                cmp("name", Op::Eq),
                either.clone(),
                Predicate::Not(Box::new(Predicate::All(vec![
                    cmp("position", Op::IsNull),
                    cmp("name", Op::Like),
                ]))),
            ],
            &Window::default(),
        );
        assert_eq!(
            sql,
            r#"SELECT "id" FROM "tenant_1"."counters" WHERE "name" = $1 AND ("id" < $2 OR "id" > $3) AND NOT ("position" IS NULL AND "name" LIKE $4)"#
        );
        // Alone at the top, a group needs no parentheses; nested groups do.
        let nested = Predicate::All(vec![either, cmp("name", Op::Ne)]);
        assert_eq!(
            select::<MySql>(&t1(), &ONLY_ID, &[Predicate::Any(vec![nested, cmp("id", Op::Eq)])], &Window::default()),
            "SELECT `id` FROM `tenant_1`.`counters` WHERE ((`id` < ? OR `id` > ?) AND `name` <> ?) OR `id` = ?"
        );
        // Empty groups: all of nothing holds, any of nothing does not.
        for (group, text) in [
            (Predicate::All(vec![]), "TRUE"),
            (Predicate::Any(vec![]), "FALSE"),
        ] {
            assert_eq!(
                select::<Postgres>(&t1(), &ONLY_ID, &[group], &Window::default()),
                format!(r#"SELECT "id" FROM "tenant_1"."counters" WHERE {text}"#)
            );
        }
    }

    const SITES: TableDef = TableDef {
        name: "sites",
        columns: &[ColumnDef::new("id").primary_key(), ColumnDef::new("city")],
        schema: None,
    };

    #[test]
    fn semi_joins_name_the_outer_tenant_and_nest() {
        let at_site = |predicate| {
            Predicate::Exists(Box::new(Exists {
                table: &SITES,
                column: "id",
                outer_column: "position",
                predicate,
            }))
        };
        let sql = select::<Postgres>(
            &t1(),
            &ONLY_ID,
            &[cmp("id", Op::Gt), at_site(cmp("city", Op::Eq))],
            &Window::default(),
        );
        assert_eq!(
            sql,
            r#"SELECT "id" FROM "tenant_1"."counters" WHERE "id" > $1 AND EXISTS (SELECT 1 FROM "tenant_1"."sites" AS "__j1" WHERE "__j1"."id" = "tenant_1"."counters"."position" AND "__j1"."city" = $2)"#
        );
        // Nested: the inner semi-join links to the alias of its enclosing one.
        let nested = Predicate::Exists(Box::new(Exists {
            table: &GUARDS,
            column: "name",
            outer_column: "city",
            predicate: Predicate::Not(Box::new(at_site(Predicate::All(vec![])))),
        }));
        assert_eq!(
            delete_where::<Sqlite>(&t2(), &SITES, &[nested], &Window::default()),
            r#"DELETE FROM "main"."sites" WHERE EXISTS (SELECT 1 FROM "main"."guards" AS "__j1" WHERE "__j1"."name" = "main"."sites"."city" AND NOT (EXISTS (SELECT 1 FROM "main"."sites" AS "__j2" WHERE "__j2"."id" = "__j1"."position")))"#
        );
    }

    #[test]
    fn empty_in_matches_nothing() {
        let sql = select::<Postgres>(
            &t1(),
            &ONLY_ID,
            &[Condition {
                column: "id",
                op: Op::In(0),
            }
            .into()],
            &Window::default(),
        );
        assert_eq!(sql, r#"SELECT "id" FROM "tenant_1"."counters" WHERE FALSE"#);
    }

    #[test]
    fn count_plain_and_windowed() {
        let c = &conds()[..1];
        assert_eq!(
            count::<Postgres>(&t1(), &GUARDS, c, &Window::default()),
            r#"SELECT COUNT(*) FROM "tenant_1"."guards" WHERE "name" = $1"#
        );
        let window = Window {
            limit: true,
            ..Window::default()
        };
        assert_eq!(
            count::<Postgres>(&t1(), &GUARDS, c, &window),
            r#"SELECT COUNT(*) FROM (SELECT 1 FROM "tenant_1"."guards" WHERE "name" = $1 LIMIT $2) AS counted"#
        );
    }

    fn t2() -> Tenant {
        Tenant::new("tenant_2").unwrap()
    }

    #[test]
    fn select_across_tenants_shares_placeholders_and_keeps_tenant_order() {
        let window = Window {
            order: vec![OrderTerm {
                column: "name",
                descending: true,
            }],
            limit: true,
            offset: false,
        };
        assert_eq!(
            select_across::<Postgres>(&[t1(), t2()], &GUARDS, &conds()[..2], &window),
            format!(
                r#"(SELECT {ALL}, 0 AS "__tenant" FROM "tenant_1"."guards" WHERE "name" = $1 AND "id" IN ($2, $3, $4) ORDER BY "name" DESC LIMIT $5) UNION ALL (SELECT {ALL}, 1 AS "__tenant" FROM "tenant_2"."guards" WHERE "name" = $1 AND "id" IN ($2, $3, $4) ORDER BY "name" DESC LIMIT $5) ORDER BY "__tenant", "name" DESC"#
            )
        );
        assert_eq!(
            select_across::<Postgres>(&[t1()], &ONLY_ID, &[], &Window::default()),
            r#"(SELECT "id", 0 AS "__tenant" FROM "tenant_1"."counters") ORDER BY "__tenant""#
        );
        assert_eq!(
            select_across::<Postgres>(&[], &ONLY_ID, &[], &Window::default()),
            ""
        );
    }

    #[test]
    fn count_across_tenants_one_row_per_tenant() {
        let c = &conds()[..1];
        assert_eq!(
            count_across::<Postgres>(&[t1(), t2()], &GUARDS, c, &Window::default()),
            r#"SELECT 0 AS "__tenant", COUNT(*) FROM "tenant_1"."guards" WHERE "name" = $1 UNION ALL SELECT 1 AS "__tenant", COUNT(*) FROM "tenant_2"."guards" WHERE "name" = $1"#
        );
        let window = Window {
            limit: true,
            ..Window::default()
        };
        assert_eq!(
            count_across::<Postgres>(&[t1(), t2()], &GUARDS, &[], &window),
            r#"SELECT 0 AS "__tenant", COUNT(*) FROM (SELECT 1 FROM "tenant_1"."guards" LIMIT $1) AS counted UNION ALL SELECT 1 AS "__tenant", COUNT(*) FROM (SELECT 1 FROM "tenant_2"."guards" LIMIT $1) AS counted"#
        );
    }

    #[test]
    fn delete_plain_and_windowed() {
        let c = &conds()[..1];
        assert_eq!(
            delete_where::<Postgres>(&t1(), &GUARDS, c, &Window::default()),
            r#"DELETE FROM "tenant_1"."guards" WHERE "name" = $1"#
        );
        assert_eq!(
            delete_where::<Postgres>(&t1(), &GUARDS, &[], &Window::default()),
            r#"DELETE FROM "tenant_1"."guards""#
        );
        let window = Window {
            order: vec![OrderTerm {
                column: "id",
                descending: false,
            }],
            limit: true,
            offset: false,
        };
        assert_eq!(
            delete_where::<Postgres>(&t1(), &GUARDS, c, &window),
            r#"DELETE FROM "tenant_1"."guards" WHERE "id" IN (SELECT "id" FROM "tenant_1"."guards" WHERE "name" = $1 ORDER BY "id" ASC LIMIT $2)"#
        );
    }

    #[test]
    fn mysql_backquotes_binds_with_question_marks_and_reads_rows_back() {
        assert_eq!(
            insert::<MySql>(&t1(), &GUARDS, 2),
            "INSERT INTO `tenant_1`.`guards` (`name`, `position`) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(
            update::<MySql>(&t1(), &GUARDS, &[1]),
            "UPDATE `tenant_1`.`guards` SET `name` = ? WHERE `id` = ?"
        );
        assert_eq!(
            select_by_last_insert_id::<MySql>(&t1(), &GUARDS),
            "SELECT `id`, `name`, `position`, `inserted_at` FROM `tenant_1`.`guards` WHERE `id` = LAST_INSERT_ID()"
        );
        let offset_only = Window {
            order: vec![],
            limit: false,
            offset: true,
        };
        assert_eq!(
            select::<MySql>(&t1(), &ONLY_ID, &conds()[..1], &offset_only),
            "SELECT `id` FROM `tenant_1`.`counters` WHERE `name` = ? LIMIT 18446744073709551615 OFFSET ?"
        );
        assert_eq!(
            select::<Postgres>(&t1(), &ONLY_ID, &[], &offset_only),
            r#"SELECT "id" FROM "tenant_1"."counters" OFFSET $1"#
        );
        let window = Window {
            order: vec![OrderTerm {
                column: "id",
                descending: true,
            }],
            limit: true,
            offset: true,
        };
        assert_eq!(
            delete_where::<MySql>(&t1(), &GUARDS, &conds()[..1], &window),
            "DELETE FROM `tenant_1`.`guards` WHERE `id` IN (SELECT `id` FROM (SELECT `id` FROM `tenant_1`.`guards` WHERE `name` = ? ORDER BY `id` DESC LIMIT ? OFFSET ?) AS chosen)"
        );
        let mut out = String::new();
        MySql::quote_ident(&mut out, "we`ird");
        assert_eq!(out, "`we``ird`");
    }

    #[test]
    fn sqlite_names_the_connections_own_file_and_numbers_question_marks() {
        assert_eq!(
            insert::<Sqlite>(&t1(), &GUARDS, 2),
            r#"INSERT INTO "main"."guards" ("name", "position") VALUES (?1, ?2), (?3, ?4) RETURNING "id", "name", "position", "inserted_at""#
        );
        assert_eq!(
            update::<Sqlite>(&t2(), &GUARDS, &[1]),
            r#"UPDATE "main"."guards" SET "name" = ?1 WHERE "id" = ?2 RETURNING "id", "name", "position", "inserted_at""#
        );
        let offset_only = Window {
            order: vec![],
            limit: false,
            offset: true,
        };
        assert_eq!(
            select::<Sqlite>(&t1(), &ONLY_ID, &conds()[..1], &offset_only),
            r#"SELECT "id" FROM "main"."counters" WHERE "name" = ?1 LIMIT -1 OFFSET ?2"#
        );
    }

    #[test]
    fn identifiers_are_quoted_with_embedded_quotes_doubled() {
        let mut out = String::new();
        quote_ident_into(&mut out, r#"we"ird"#);
        assert_eq!(out, r#""we""ird""#);
        const ODD: TableDef = TableDef {
            name: "Odd \"Table\"",
            columns: &[ColumnDef::new("Id").primary_key()],
            schema: None,
        };
        assert_eq!(
            delete_by_pk::<Postgres>(&t1(), &ODD),
            r#"DELETE FROM "tenant_1"."Odd ""Table""" WHERE "Id" = $1"#
        );
    }
}
