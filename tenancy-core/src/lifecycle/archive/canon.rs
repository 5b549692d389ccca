//! Values made canonical for their columns' kinds, and which kinds map onto which: what an
//! export stores of a value and what an import converts it to on its way into a column of
//! another kind.

use serde_json::Value as Json;

use super::codec::{uuid_bytes, uuid_text};
use super::instant;
use super::model::{Column, Kind, Shape, Value};

/// `value`, as read from a column of kind `kind`, in the representation the archive carries
/// for that kind: an integer for `int`, text for `uuid` (a 16-byte blob is a uuid's bytes), and
/// so on. A value that cannot be one (text that is no integer in an `int` column) is an error
/// saying so.
pub(crate) fn canonical(kind: Kind, value: Value) -> Result<Value, String> {
    let refused = |v: &Value| format!("a {} value cannot be stored as {}", v.what(), kind.name());
    Ok(match (kind, value) {
        (_, Value::Null) => Value::Null,
        (Kind::Int, Value::Int(i)) => Value::Int(i),
        (Kind::Int, Value::Bool(b)) => Value::Int(b.into()),
        (Kind::Int, Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            Value::Int(f as i64)
        }
        (Kind::Int, Value::Text(t)) => Value::Int(
            t.trim()
                .parse()
                .map_err(|_| format!("{t:?} is not an integer"))?,
        ),
        (Kind::Float, Value::Float(f)) => Value::Float(f),
        (Kind::Float, Value::Int(i)) => Value::Float(i as f64),
        (Kind::Float, Value::Text(t)) => Value::Float(
            t.trim()
                .parse()
                .map_err(|_| format!("{t:?} is not a number"))?,
        ),
        (Kind::Bool, Value::Bool(b)) => Value::Bool(b),
        (Kind::Bool, Value::Int(i)) => Value::Bool(i != 0),
        (Kind::Bool, Value::Text(t)) => match t.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "1" | "y" | "yes" | "on" => Value::Bool(true),
            "f" | "false" | "0" | "n" | "no" | "off" => Value::Bool(false),
            _ => return Err(format!("{t:?} is not a boolean")),
        },
        (Kind::Bytes, Value::Bytes(b)) => Value::Bytes(b),
        (Kind::Bytes, Value::Text(t)) => Value::Bytes(t.into_bytes()),
        (Kind::Uuid, Value::Bytes(b)) if b.len() == 16 => Value::Text(uuid_text(&b)),
        (Kind::Uuid, Value::Text(t)) => Value::Text(uuid_text(&uuid_bytes(&t)?)),
        (Kind::Uuid, Value::Bytes(b)) => {
            return Err(format!(
                "a blob of {} bytes is not a uuid (16 bytes)",
                b.len()
            ))
        }
        (Kind::Numeric, Value::Float(f)) if f.is_finite() => Value::Text(f.to_string()),
        (Kind::Numeric, Value::Int(i)) => Value::Text(i.to_string()),
        (k, Value::Text(t)) if k.textual() => Value::Text(t),
        (k, Value::Int(i)) if k.textual() && k != Kind::Uuid => Value::Text(i.to_string()),
        (k, Value::Float(f)) if k.textual() && k != Kind::Uuid => Value::Text(f.to_string()),
        (k, Value::Bytes(b)) if k.textual() => match String::from_utf8(b) {
            Ok(t) => Value::Text(t),
            Err(_) => {
                return Err(format!(
                    "a blob that is not UTF-8 cannot be stored as {}",
                    k.name()
                ))
            }
        },
        (_, other) => return Err(refused(&other)),
    })
}

/// Whether values of column `from` (an archive's) can be stored in column `to` (a tenant's):
/// the same kind (for [`Kind::Other`], the same declared type), a widening (`int` into
/// `float`, `numeric` or `bool`, `float` into `numeric`), a uuid between its text and its 16
/// bytes, a timestamp with or without time zone, or between text and a kind carried as text
/// (the server checks each value: text into a `uuid` column must be a uuid).
pub(crate) fn maps(from: &Column, to: &Column) -> bool {
    use Kind::*;
    match (from.kind, to.kind) {
        (Other, Other) => from.declared.eq_ignore_ascii_case(&to.declared),
        (a, b) if a == b => true,
        (Int, Float | Numeric | Bool) | (Bool, Int) | (Float, Numeric) => true,
        (Bytes, Uuid) | (Uuid, Bytes) => true,
        (Timestamp, TimestampTz) | (TimestampTz, Timestamp) => true,
        (Text, b) => b.textual() && b != Other,
        (a, Text) => a.textual() && a != Other,
        _ => false,
    }
}

/// `value` (canonical for `from`'s kind) made canonical for `to`'s kind.
pub(crate) fn convert(from: Kind, to: Kind, value: Value) -> Result<Value, String> {
    match (from, to, value) {
        (Kind::Uuid, Kind::Bytes, Value::Text(t)) => Ok(Value::Bytes(uuid_bytes(&t)?)),
        (Kind::TimestampTz, Kind::Timestamp, Value::Text(t)) => Ok(Value::Text(instant::utc(t))),
        (_, Kind::Json, Value::Text(t)) => match serde_json::from_str::<Json>(&t) {
            Ok(_) => Ok(Value::Text(t)),
            Err(e) => Err(format!("{t:?} is not JSON: {e}")),
        },
        (_, to, value) => canonical(to, value),
    }
}

/// `row`, values of an archive table's columns of kinds `kinds`, made canonical for the
/// columns of `to` they go to (`columns`: per value, its target column's index), each in its
/// place.
pub(crate) fn convert_row(
    kinds: impl IntoIterator<Item = Kind>,
    to: &Shape,
    columns: &[usize],
    row: &mut [Value],
) -> Result<(), String> {
    for ((value, from), &i) in row.iter_mut().zip(kinds).zip(columns) {
        let column = &to.columns[i];
        let read = std::mem::replace(value, Value::Null);
        *value = convert(from, column.kind, read)
            .map_err(|p| format!("column {:?} of table {:?}: {p}", column.name, to.name))?;
    }
    Ok(())
}
