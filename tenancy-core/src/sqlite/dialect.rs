//! SQLite's SQL dialect.

use crate::statement::Dialect;

/// SQLite's SQL: `"double quoted"` identifiers, `?n` placeholders, `RETURNING` (3.35+), and
/// tables named `"main"."table"`: a tenant is the file its connection has open.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteDialect;

impl Dialect for SqliteDialect {
    const RETURNING: bool = true;
    const NUMBERED_PARAMS: bool = true;
    // SQLite's grammar has OFFSET only after LIMIT; a negative limit means none.
    const LIMIT_FOR_OFFSET: Option<&'static str> = Some(" LIMIT -1");
    const QUALIFIES: bool = false;
    const INTEGER_TYPE: &'static str = "INTEGER";
    const FLOAT_TYPE: &'static str = "REAL";
    const QUOTE: char = '"';
    const PLACEHOLDER: char = '?';
}
