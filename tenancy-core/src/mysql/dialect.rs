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
