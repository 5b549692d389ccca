//! What an archive carries: the kinds of columns, the columns and tables, and the values of
//! rows, as the backends read and write them.

/// What a column holds, as the archive carries it: the meaning, independent of how a backend
/// stores it (a SQLite uuid is a 16-byte blob, a PostgreSQL one a `uuid`).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A 64-bit integer.
    Int,
    /// A 64-bit float.
    Float,
    /// An exact decimal, as text.
    Numeric,
    /// A boolean.
    Bool,
    /// Text (enums included).
    Text,
    /// Bytes.
    Bytes,
    /// A uuid, as canonical text.
    Uuid,
    /// A JSON document, as its text.
    Json,
    /// A date, ISO 8601.
    Date,
    /// A time of day, ISO 8601.
    Time,
    /// A date and time without a time zone, ISO 8601.
    Timestamp,
    /// A point in time, ISO 8601 with its offset.
    TimestampTz,
    /// Any other type, as the source's text form: imported only into a column whose declared
    /// type is the same.
    Other,
}

const KINDS: [(Kind, &str); 13] = [
    (Kind::Int, "int"),
    (Kind::Float, "float"),
    (Kind::Numeric, "numeric"),
    (Kind::Bool, "bool"),
    (Kind::Text, "text"),
    (Kind::Bytes, "bytes"),
    (Kind::Uuid, "uuid"),
    (Kind::Json, "json"),
    (Kind::Date, "date"),
    (Kind::Time, "time"),
    (Kind::Timestamp, "timestamp"),
    (Kind::TimestampTz, "timestamptz"),
    (Kind::Other, "other"),
];

impl Kind {
    /// Its name in an archive.
    pub fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("other", |(_, n)| n)
    }

    /// The kind an archive names `name`.
    pub(crate) fn parse(name: &str) -> Option<Kind> {
        KINDS.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
    }

    /// Whether a value of this kind is carried as text.
    pub(crate) fn textual(self) -> bool {
        !matches!(self, Kind::Int | Kind::Float | Kind::Bool | Kind::Bytes)
    }
}

/// A column of a table, as an export reads it and an import writes it.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type as the database declares it.
    pub declared: String,
    /// What it holds.
    pub kind: Kind,
}

/// A table of a tenant: its columns (generated ones left out: they are computed again) and
/// the tables of the same tenant it references.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Its name.
    pub name: String,
    /// Its stored columns, in order.
    pub columns: Vec<Column>,
    /// The tenant's tables it references.
    pub references: Vec<String>,
}

/// One value of a row, in the representation the archive carries for its column's kind
/// ([`canonical`](super::canonical)).
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl Value {
    pub(crate) fn what(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Text(_) => "text",
            Value::Bytes(_) => "blob",
        }
    }
}

/// One value of a row as read from its line, borrowing the line where it can.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Bytes(&'a [u8]),
}

impl Value {
    /// The value, borrowed.
    pub(crate) fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Int(n) => ValueRef::Int(*n),
            Value::Float(f) => ValueRef::Float(*f),
            Value::Text(t) => ValueRef::Text(t),
            Value::Bytes(b) => ValueRef::Bytes(b),
        }
    }
}

impl ValueRef<'_> {
    /// The value, owned.
    pub(super) fn owned(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Int(n) => Value::Int(n),
            ValueRef::Float(f) => Value::Float(f),
            ValueRef::Text(t) => Value::Text(t.to_owned()),
            ValueRef::Bytes(b) => Value::Bytes(b.to_vec()),
        }
    }
}
