//! The builder: [`Sql`] writes text and records values in one call; [`Statement`] is its
//! result; [`Dialect`] is what each backend's folder implements.

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use smallvec::SmallVec;
use sqlx::{AssertSqlSafe, Database, SqlSafeStr, SqlStr};

use crate::table::TableDef;
use crate::tenant::Tenant;
use crate::value::{Bind, BindColumn, Scalars};

/// How one SQL dialect writes identifiers, placeholders and the clauses that differ. Each
/// backend's folder implements it for a type of its own.
pub trait Dialect: Send + Sync + 'static {
    /// Whether `INSERT` and `UPDATE` return the stored row with `RETURNING <columns>`.
    const RETURNING: bool;
    /// Whether a placeholder names its value (`$1` may appear twice); if not (`?`), each
    /// placeholder takes the next value.
    const NUMBERED_PARAMS: bool;
    /// Whether `DELETE`/`UPDATE … WHERE pk IN (SELECT pk FROM <same table> … LIMIT …)` must
    /// read the chosen keys through a derived table (MySQL refuses a subquery on the table it
    /// changes, and `LIMIT` inside `IN`).
    const DELETE_THROUGH_DERIVED_TABLE: bool = false;
    /// What `OFFSET` without `LIMIT` needs before it (MySQL: a `LIMIT` of the largest value).
    const LIMIT_FOR_OFFSET: Option<&'static str> = None;
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
    /// The statement that lists which of some containers have a table of a given name (one
    /// text column, each such container's name), in two parts: the text before the table's
    /// name, bound, and the text between it and the containers' names, bound each, in `(…)`.
    /// `None` where a table is not named with its container ([`QUALIFIES`](Self::QUALIFIES)).
    const CONTAINERS_WITH_TABLE: Option<[&'static str; 2]> = None;
    /// The quote around identifiers (`"`; MySQL: `` ` ``); one inside a name is doubled.
    const QUOTE: char;
    /// What a placeholder starts with (`$`, `?`); followed by the value's number (1-based)
    /// where [`NUMBERED_PARAMS`](Self::NUMBERED_PARAMS).
    const PLACEHOLDER: char;

    /// Appends `ident` as a quoted identifier.
    fn quote_ident(out: &mut String, ident: &str) {
        crate::ident::quote_into(out, ident, Self::QUOTE)
    }

    /// Appends the placeholder of the `n`-th bound value (1-based).
    fn placeholder(out: &mut String, n: usize) {
        out.push(Self::PLACEHOLDER);
        if Self::NUMBERED_PARAMS {
            push_decimal(out, n);
        }
    }
}

/// Appends `n` in decimal (a placeholder's number), without the formatting machinery.
fn push_decimal(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        out.push(char::from(digit));
    }
}

/// One value of a statement, as the builder recorded it.
pub(crate) enum Value<'a, B: Database> {
    /// A value held elsewhere (a filter's, a key).
    Bound(&'a dyn Bind<B>),
    /// Column `.1` of a model's row.
    Column(&'a dyn BindColumn<B>, usize),
    /// A limit or offset.
    I64(i64),
    /// A tenant's name in its table's tenant column.
    Key(Arc<str>),
}

impl<B: Database> Clone for Value<'_, B> {
    fn clone(&self) -> Self {
        match self {
            Value::Bound(v) => Value::Bound(*v),
            Value::Column(row, i) => Value::Column(*row, *i),
            Value::I64(n) => Value::I64(*n),
            Value::Key(key) => Value::Key(Arc::clone(key)),
        }
    }
}

/// The room [`Statement::arguments`] makes per value before encoding them: a length and a
/// number, or a short text.
const ARGUMENT_BYTES: usize = 24;

/// A statement's values: a by-key statement, a one-row insert or an update keeps them inline.
type Values<'a, B> = SmallVec<[Value<'a, B>; INLINE_VALUES]>;

/// How many values a statement holds without allocating.
const INLINE_VALUES: usize = 6;

/// A statement ready to send: its SQL text and the values of its placeholders, in order.
pub struct Statement<'a, B: Database> {
    sql: Arc<str>,
    values: Values<'a, B>,
    /// Why the statement must not be sent, if it must not: its [`arguments`](Self::arguments)
    /// then fail with this refusal.
    refused: Option<Refusal>,
    /// The row-level tenants whose rows the statement names.
    rows_of: RowsOf,
}

/// The row-level tenants whose rows a statement names: what row-level security must be told.
#[derive(Debug, Clone, Default)]
pub(crate) enum RowsOf {
    /// None (tenants in their own containers, shared models).
    #[default]
    Nobody,
    /// This one (placed in the container the statement names).
    One(Tenant),
    /// Several (a statement across tenants).
    Several,
}

/// Why a statement for a row-level tenant was refused: it names a table it cannot keep to the
/// tenant's rows. Carried to the caller inside the `sqlx::Error::Encode` that
/// [`Statement::arguments`] returns, and turned into [`Error::NotRowLevel`](crate::Error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The table.
    pub(crate) table: &'static str,
    /// Why, naming what to change.
    pub(crate) reason: &'static str,
}

impl Refusal {
    /// The refusal `err` carries, if it is one.
    pub(crate) fn of(err: &sqlx::Error) -> Option<Refusal> {
        match err {
            sqlx::Error::Encode(source) => source.downcast_ref::<Refusal>().copied(),
            _ => None,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a statement on table {:?} for a row-level tenant: {}",
            self.table, self.reason
        )
    }
}

impl std::error::Error for Refusal {}

/// Why a table without a tenant column is refused to a row-level tenant.
pub(crate) const NO_TENANT_COLUMN: &str = "its model has no tenant column; declare one with #[tenancy(tenant_column = \"tenant_id\")] (and the column in the table's migration)";

impl<'a, B: Scalars> Statement<'a, B> {
    /// The SQL text (values are placeholders).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The text, taken out.
    pub(crate) fn into_sql(self) -> String {
        self.sql.as_ref().to_owned()
    }

    /// The text as sqlx takes it, shared rather than copied.
    pub(crate) fn sql_str(&self) -> SqlStr {
        AssertSqlSafe(Arc::clone(&self.sql)).into_sql_str()
    }

    /// The row-level tenants whose rows the statement names.
    pub(crate) fn rows_of(&self) -> &RowsOf {
        &self.rows_of
    }

    /// How many values the statement binds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// The arguments, encoded afresh: call it again to send the statement again. Fails for a
    /// statement refused when it was built (a row-level tenant's statement on a table it
    /// cannot keep to its rows).
    pub fn arguments(&self) -> Result<B::Arguments, sqlx::Error> {
        use sqlx::Arguments;
        if let Some(refusal) = self.refused {
            return Err(sqlx::Error::Encode(Box::new(refusal)));
        }
        let mut args = B::Arguments::default();
        // Room for the encoded values too (PostgreSQL: a length and the bytes of each), so
        // that binding them does not regrow the buffer value by value.
        let keys: usize = self
            .values
            .iter()
            .map(|value| match value {
                Value::Key(key) => key.len(),
                _ => 0,
            })
            .sum();
        args.reserve(self.values.len(), self.values.len() * ARGUMENT_BYTES + keys);
        for value in &self.values {
            match value {
                Value::Bound(v) => v.bind(&mut args),
                Value::Column(row, index) => row.bind_column(*index, &mut args),
                Value::I64(n) => B::bind_i64(&mut args, *n),
                Value::Key(key) => B::bind_str(&mut args, key),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(args)
    }
}

impl<B: Database> std::fmt::Debug for Statement<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statement")
            .field("sql", &self.sql)
            .field("values", &self.values.len())
            .finish()
    }
}

/// A statement whose text depends only on its dialect, table and tenant, so that the text is
/// written once per thread and reused ([`Sql::reusing`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Shape {
    /// `SELECT <all columns> … WHERE "pk" = $1`.
    SelectByPk,
    /// `DELETE … WHERE "pk" = $1`.
    DeleteByPk,
    /// `INSERT` of one row, returning it where the dialect can.
    InsertOne,
    /// A statement a backend writes of its own over the table (the name it gives it: e.g.
    /// MySQL's read back of the row an insert just stored, by `LAST_INSERT_ID()`). Made only by
    /// a backend that has one.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    Own(&'static str),
    /// `UPDATE … SET` the columns of this set (bit `i`: column `i`), written in ascending
    /// order, `WHERE "pk" = …`, returning the row where the dialect can.
    Update(u64),
    /// A statement over a query's conditions and window (a `SELECT`, its count, a delete of
    /// the rows it selects), as the words of [`query_shape`](super::predicate::query_shape)
    /// say it: which statement, and every part of the conditions and window the text writes
    /// (columns, comparisons, how many values each binds, groups, order terms, whether a limit
    /// and an offset are given), none of the values.
    Query(QueryWords),
}

/// The words of a [`Shape::Query`]; a query of one filter, one order term and a limit needs 14.
pub(crate) type QueryWords = SmallVec<[usize; 16]>;

/// What a reused text is keyed by: the dialect; the table's name, schema, columns (by the
/// address and length of their `'static` slice, which no other list of columns can ever have)
/// and tenant column (two tables may share one list of columns, and only one filter by a
/// tenant column); the shape; the container the tenant's rows are in, and whether the tenant
/// is a row-level one (its name is bound, not written, so row-level tenants of one container
/// share their texts).
type TextKey = (
    TypeId,
    &'static str,
    Option<&'static str>,
    (usize, usize),
    Option<&'static str>,
    Shape,
    Arc<str>,
    bool,
);

/// The most texts a thread keeps; past it the cache starts again empty (a thread serving more
/// tenants than this rewrites their texts, as without a cache).
const MAX_TEXTS: usize = 1024;

thread_local! {
    static TEXTS: RefCell<HashMap<TextKey, Arc<str>, BuildHasherDefault<WordHasher>>> =
        RefCell::new(HashMap::default());
}

/// A multiply-rotate hash over machine words (the Fx hash of rustc), for the text cache: its
/// keys are a few short names, where SipHash costs more than building the text it saves. The
/// cache holds at most [`MAX_TEXTS`] keys per thread, which bounds what colliding names cost.
#[derive(Default)]
struct WordHasher(u64);

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        // The last few bytes into one word by shifts (copying a slice of unknown length calls
        // memcpy).
        let last = chunks
            .remainder()
            .iter()
            .rev()
            .fold(0u64, |word, &b| (word << 8) | u64::from(b));
        self.add(last);
    }

    /// One word (a `str` ends with a `0xff` byte, a `bool` is one), not through `write`.
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Room a statement's text starts with: a query with a filter, an order and a limit on a table
/// of five columns is 120 to 160 bytes (the tenant filter of a row-level tenant adds 20).
const TEXT_CAPACITY: usize = 256;

/// Builds one statement in dialect `D` for backend `B`, numbering placeholders as it goes.
pub(crate) struct Sql<'a, D: Dialect, B: Database> {
    pub(super) text: String,
    params: usize,
    values: Values<'a, B>,
    /// Whether the placeholders being written stand for values already recorded: each branch
    /// after the first of a statement across tenants, in a dialect whose placeholders name
    /// their value (`$1` again is the first value again).
    reuse: bool,
    /// Where the last table named was written: its container `[.0, .1)`, the whole `[.0, .2)`
    /// (what a semi-join's inner table and link refer to).
    pub(super) last_table: (usize, usize, usize),
    /// The tenant filter the last table named still needs: its tenant column and the tenant's
    /// name, written by the next `WHERE` (or refused at [`finish`](Self::finish) if none comes).
    scope: Option<(&'static str, Arc<str>)>,
    /// The tenant of the last tenant table named, and whether it is a row-level one (what a
    /// semi-join's inner table is filtered by).
    pub(super) tenant: Option<(Arc<str>, bool)>,
    /// Why the statement must not be sent, once a part of it cannot keep to its tenant's rows.
    refused: Option<Refusal>,
    /// The row-level tenants of the tables named so far.
    rows_of: RowsOf,
    /// A text written before for the same key: the walk records the values only.
    reused: Option<Arc<str>>,
    /// Where to keep the text this walk writes.
    keep: Option<TextKey>,
    dialect: PhantomData<D>,
}

impl<'a, D: Dialect, B: Database> Sql<'a, D, B> {
    pub(crate) fn new(start: &str) -> Self {
        Self::starting(start, None)
    }

    /// A builder whose text begins with `start`, keeping it under `keep` when finished.
    fn starting(start: &str, keep: Option<TextKey>) -> Self {
        let mut text = String::with_capacity(TEXT_CAPACITY);
        text.push_str(start);
        Self::with_text(text, None, keep)
    }

    fn with_text(text: String, reused: Option<Arc<str>>, keep: Option<TextKey>) -> Self {
        Sql {
            text,
            params: 0,
            values: SmallVec::new(),
            reuse: false,
            last_table: (0, 0, 0),
            scope: None,
            tenant: None,
            refused: None,
            rows_of: RowsOf::Nobody,
            reused,
            keep,
            dialect: PhantomData,
        }
    }

    /// A builder for a statement of `shape` on `tenant`'s `table`: if this thread wrote its
    /// text before, the walk records the values only and the statement takes that text (the
    /// same walk writes the text and the values, so they cannot disagree).
    pub(crate) fn reusing(start: &str, shape: Shape, tenant: &Tenant, table: &TableDef) -> Self {
        let key = (
            TypeId::of::<D>(),
            table.name,
            table.schema,
            (table.columns.as_ptr() as usize, table.columns.len()),
            table.tenant_column,
            shape,
            Arc::clone(tenant.container_arc()),
            tenant.is_row_level(),
        );
        match TEXTS.with(|texts| texts.borrow().get(&key).cloned()) {
            // No text to write: nothing allocated for one.
            Some(text) => Self::with_text(String::new(), Some(text), None),
            None => Self::starting(start, Some(key)),
        }
    }

    pub(crate) fn push(&mut self, s: &str) -> &mut Self {
        if self.reused.is_none() {
            self.text.push_str(s);
        }
        self
    }

    pub(crate) fn ident(&mut self, ident: &str) -> &mut Self {
        if self.reused.is_none() {
            D::quote_ident(&mut self.text, ident);
        }
        self
    }

    /// `<container>.<table>`: the tenant's container (or a shared model's schema), or on a
    /// backend that does not qualify, the connection's own file (`main`). A table with a tenant
    /// column is then filtered by it: the next `WHERE` (or an insert's values) carries the
    /// tenant's name. A row-level tenant's statement on a tenant table without one is refused.
    pub(crate) fn table(&mut self, tenant: &Tenant, table: &TableDef) -> &mut Self {
        let container = match table.schema {
            Some(schema) => schema,
            None if D::QUALIFIES => tenant.container(),
            None => "main",
        };
        if table.schema.is_none() {
            let key = Arc::clone(tenant.name_arc());
            match table.tenant_column {
                Some(column) => self.scope = Some((column, Arc::clone(&key))),
                None if tenant.is_row_level() => self.refuse(table.name, NO_TENANT_COLUMN),
                None => {}
            }
            if tenant.is_row_level() {
                self.rows_of = match std::mem::take(&mut self.rows_of) {
                    RowsOf::Nobody => RowsOf::One(tenant.clone()),
                    RowsOf::One(one) if one == *tenant => RowsOf::One(one),
                    _ => RowsOf::Several,
                };
            }
            self.tenant = Some((key, tenant.is_row_level()));
        }
        let start = self.text.len();
        self.ident(container);
        let mid = self.text.len();
        self.push(".").ident(table.name);
        self.last_table = (start, mid, self.text.len());
        self
    }

    /// Refuses the statement (the first refusal is the one reported).
    pub(crate) fn refuse(&mut self, table: &'static str, reason: &'static str) {
        self.refused.get_or_insert(Refusal { table, reason });
    }

    /// The tenant filter the last table named needs, taken (an insert writes it as a value).
    pub(super) fn take_scope(&mut self) -> Option<(&'static str, Arc<str>)> {
        self.scope.take()
    }

    /// ` WHERE ` for the first condition (`first`), preceded by the pending tenant filter and
    /// ` AND ` if there is one; ` AND ` for every other.
    pub(crate) fn and_where(&mut self, first: bool) -> &mut Self {
        if !first {
            return self.push(" AND ");
        }
        self.push(" WHERE ");
        if let Some((column, key)) = self.scope.take() {
            self.ident(column)
                .push(" = ")
                .bind(Value::Key(key))
                .push(" AND ");
        }
        self
    }

    /// ` WHERE "tenant_id" = $n` if the last table named still needs its tenant filter (no
    /// condition came to carry it).
    pub(crate) fn close_scope(&mut self) -> &mut Self {
        if let Some((column, key)) = self.scope.take() {
            self.push(" WHERE ")
                .ident(column)
                .push(" = ")
                .bind(Value::Key(key));
        }
        self
    }

    /// Writes the next placeholder and records the value it stands for.
    pub(crate) fn bind(&mut self, value: Value<'a, B>) -> &mut Self {
        self.params += 1;
        if self.reused.is_none() {
            D::placeholder(&mut self.text, self.params);
        }
        if !self.reuse {
            self.values.push(value);
        }
        self
    }

    /// Starts branch `index` of a statement across tenants on `table`: placeholders are
    /// numbered from the first again, and in a dialect whose placeholders name their value,
    /// every branch after the first reuses the values the first recorded (so the statement
    /// binds as many values as one branch, however many tenants it covers). Not on a table
    /// with a tenant column, whose branches each bind their own tenant's name.
    pub(crate) fn branch(&mut self, index: usize, table: &TableDef) -> &mut Self {
        if D::NUMBERED_PARAMS && table.tenant_column.is_none() {
            self.params = 0;
            self.reuse = index > 0;
        }
        self
    }

    pub(crate) fn idents<'n>(&mut self, names: impl IntoIterator<Item = &'n str>) -> &mut Self {
        for (i, name) in names.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.ident(name);
        }
        self
    }

    /// `"column"` or `"alias"."column"`.
    pub(crate) fn column(&mut self, alias: Option<&str>, column: &str) -> &mut Self {
        if let Some(alias) = alias {
            self.ident(alias).push(".");
        }
        self.ident(column)
    }

    pub(crate) fn finish(mut self) -> Statement<'a, B> {
        if let Some((_, _)) = self.scope.take() {
            // A table with a tenant column was named and no filter followed: a statement this
            // builder must never send.
            self.refuse(
                "",
                "the statement names a table with a tenant column without filtering by it",
            );
        }
        let sql = match self.reused {
            Some(text) => text,
            None => {
                let text: Arc<str> = self.text.into();
                if let Some(key) = self.keep {
                    TEXTS.with(|texts| {
                        let mut texts = texts.borrow_mut();
                        if texts.len() >= MAX_TEXTS {
                            texts.clear();
                        }
                        texts.insert(key, Arc::clone(&text));
                    });
                }
                text
            }
        };
        Statement {
            sql,
            values: self.values,
            refused: self.refused,
            rows_of: self.rows_of,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimals_as_format_writes_them() {
        for n in [0, 1, 9, 10, 99, 100, 65_535, 1_000_000, usize::MAX] {
            let mut out = String::from("$");
            super::push_decimal(&mut out, n);
            assert_eq!(out, format!("${n}"));
        }
    }
}
