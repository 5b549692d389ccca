//! MySQL's and MariaDB's SQL dialect.

use crate::statement::Dialect;

/// MySQL's and MariaDB's SQL: `` `backquoted` `` identifiers, `?` placeholders, no
/// `RETURNING` (the row is read back by key or `LAST_INSERT_ID()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MySqlDialect;

impl Dialect for MySqlDialect {
    const RETURNING: bool = false;
    const NUMBERED_PARAMS: bool = false;
    const DELETE_THROUGH_DERIVED_TABLE: bool = true;
    // The documented idiom: the largest unsigned 64-bit value.
    const LIMIT_FOR_OFFSET: Option<&'static str> = Some(" LIMIT 18446744073709551615");
    const INTEGER_TYPE: &'static str = "SIGNED";
    const ON_DUPLICATE_KEY: bool = true;
    const FLOAT_TYPE: &'static str = "DOUBLE";
    const QUOTE: char = '`';
    const PLACEHOLDER: char = '?';
    const CONTAINERS_WITH_TABLE: Option<[&'static str; 2]> = Some([
        "SELECT CAST(table_schema AS CHAR) FROM information_schema.tables WHERE table_name = ",
        " AND table_schema IN (",
    ]);
}

/// [`MySqlDialect`] with `INSERT … RETURNING`, which MariaDB has from 10.5 on (MySQL has none):
/// the dialect of an insert sent in a [`MySqlMode`] that says so. A type of its own, so the
/// statement texts kept per thread for one are never taken for the other's.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MariaDbInsert;

impl Dialect for MariaDbInsert {
    const RETURNING: bool = true;
    const NUMBERED_PARAMS: bool = MySqlDialect::NUMBERED_PARAMS;
    const DELETE_THROUGH_DERIVED_TABLE: bool = MySqlDialect::DELETE_THROUGH_DERIVED_TABLE;
    const LIMIT_FOR_OFFSET: Option<&'static str> = MySqlDialect::LIMIT_FOR_OFFSET;
    const INTEGER_TYPE: &'static str = MySqlDialect::INTEGER_TYPE;
    const ON_DUPLICATE_KEY: bool = MySqlDialect::ON_DUPLICATE_KEY;
    const FLOAT_TYPE: &'static str = MySqlDialect::FLOAT_TYPE;
    const QUOTE: char = MySqlDialect::QUOTE;
    const PLACEHOLDER: char = MySqlDialect::PLACEHOLDER;
    const CONTAINERS_WITH_TABLE: Option<[&'static str; 2]> = MySqlDialect::CONTAINERS_WITH_TABLE;
}

/// How a MySQL / MariaDB session sends its statements.
#[derive(Debug, Clone, Copy, Default)]
pub struct MySqlMode {
    /// The server is MariaDB 10.5 or newer: an insert returns its row (`INSERT … RETURNING`),
    /// one statement, instead of reading it back in a second one. Known to a handle once it
    /// has made sure of its registry; a session of a plain sqlx pool or connection reads back.
    pub(crate) returning: bool,
}
