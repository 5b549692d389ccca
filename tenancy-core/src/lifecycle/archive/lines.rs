//! The row lines of an archive: how a row's values are written as a line (a JSON array) and
//! read back from one, and the chunks of whole lines an export reads a table as.

use std::fmt::Write as _;

use futures_util::stream::BoxStream;
use futures_util::TryStreamExt;
use serde_json::Value as Json;

use super::codec::{first_special, hex, unhex, unhex_into};
use super::model::{Column, Kind, Shape, Value, ValueRef};
use crate::error::Error;

/// Row lines of one table as an export writes them: whole lines, each with its `\n`, and how
/// many. A backend fills one a value at a time ([`begin`](Self::begin), a value per column,
/// [`end`](Self::end)) or a row of [`Value`]s at a time; the archive's writer hashes and
/// writes it whole.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct RowLines {
    text: String,
    rows: u64,
    /// No value of the current row was written yet.
    first: bool,
}

/// The table's rows, a chunk of whole lines at a time.
pub type Lines<'a> = BoxStream<'a, Result<RowLines, Error>>;

impl RowLines {
    /// How many bytes of lines a chunk holds before it is handed on.
    pub(crate) const CHUNK: usize = 64 * 1024;

    fn new() -> Self {
        RowLines {
            text: String::with_capacity(Self::CHUNK + 1024),
            rows: 0,
            first: true,
        }
    }

    /// The lines.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// How many rows.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Whether it holds [`CHUNK`](Self::CHUNK) bytes or more: time to hand it on.
    pub(crate) fn full(&self) -> bool {
        self.text.len() >= Self::CHUNK
    }

    /// The lines so far, leaving this empty for the next.
    pub(crate) fn take(&mut self) -> RowLines {
        std::mem::replace(self, RowLines::new())
    }

    /// Appends the line of `row`, the values of `columns` in order.
    #[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
    pub(crate) fn push_row(&mut self, columns: &[Column], row: &[Value]) {
        row_line(&mut self.text, columns, row);
        self.rows += 1;
    }

    /// Starts a row.
    pub(crate) fn begin(&mut self) {
        self.text.push('[');
        self.first = true;
    }

    fn next(&mut self) -> &mut String {
        if !std::mem::take(&mut self.first) {
            self.text.push(',');
        }
        &mut self.text
    }

    /// `NULL`.
    pub(crate) fn null(&mut self) {
        self.next().push_str("null");
    }

    /// A boolean.
    pub(crate) fn bool(&mut self, b: bool) {
        self.next().push_str(if b { "true" } else { "false" });
    }

    /// An integer.
    pub(crate) fn int(&mut self, n: i64) {
        push_int(self.next(), n);
    }

    /// A float: a number, or the string `"NaN"`, `"Infinity"` or `"-Infinity"`.
    pub(crate) fn float(&mut self, f: f64) {
        let out = self.next();
        match f {
            f if f.is_finite() => {
                let _ = write!(out, "{f}");
            }
            f if f.is_nan() => out.push_str("\"NaN\""),
            f if f > 0.0 => out.push_str("\"Infinity\""),
            _ => out.push_str("\"-Infinity\""),
        }
    }

    /// Text, as a JSON string.
    pub(crate) fn text_value(&mut self, text: &str) {
        push_json_str(self.next(), text);
    }

    /// Bytes, as a string of hex digits.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        push_hex(self.next(), bytes);
    }

    /// Ends the row's line.
    pub(crate) fn end(&mut self) {
        self.text.push_str("]\n");
        self.rows += 1;
    }
}

/// The rows of `table` as a backend fetches them, each value decoded into the archive's by
/// `value` (given the row, the column's position in it and the column), as chunks of lines.
#[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
pub(crate) fn decoded<'a, R: Send + 'a>(
    mut rows: BoxStream<'a, Result<R, sqlx::Error>>,
    table: &'a Shape,
    value: impl Fn(&R, usize, &Column) -> Result<Value, Error> + Send + 'a,
) -> Lines<'a> {
    Box::pin(async_stream::try_stream! {
        let (mut lines, mut values) = (RowLines::new(), Vec::with_capacity(table.columns.len()));
        while let Some(row) = rows.try_next().await? {
            values.clear();
            for (i, c) in table.columns.iter().enumerate() {
                values.push(value(&row, i, c)?);
            }
            lines.push_row(&table.columns, &values);
            if lines.full() {
                yield lines.take();
            }
        }
        if lines.rows() > 0 {
            yield lines;
        }
    })
}

#[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
pub(super) fn value_to_json(kind: Kind, value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) if f.is_finite() => Json::from(*f),
        Value::Float(f) if f.is_nan() => Json::from("NaN"),
        Value::Float(f) if *f > 0.0 => Json::from("Infinity"),
        Value::Float(_) => Json::from("-Infinity"),
        Value::Text(t) => Json::from(t.as_str()),
        Value::Bytes(b) if kind == Kind::Bytes => Json::from(hex(b)),
        // Not canonical (a backend's bug): carried as text so the archive stays readable.
        Value::Bytes(b) => Json::from(String::from_utf8_lossy(b).into_owned()),
    }
}

pub(super) fn value_from_json(kind: Kind, json: Json) -> Result<Value, String> {
    let wrong = |j: &Json| format!("{j} is not a {} value", kind.name());
    Ok(match (kind, json) {
        (_, Json::Null) => Value::Null,
        (Kind::Int, Json::Number(n)) => {
            Value::Int(n.as_i64().ok_or_else(|| wrong(&Json::Number(n)))?)
        }
        (Kind::Float, Json::Number(n)) => {
            Value::Float(n.as_f64().ok_or_else(|| wrong(&Json::Number(n)))?)
        }
        (Kind::Float, Json::String(s)) => Value::Float(match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => return Err(wrong(&Json::String(s))),
        }),
        (Kind::Bool, Json::Bool(b)) => Value::Bool(b),
        (Kind::Bytes, Json::String(s)) => {
            Value::Bytes(unhex(&s).ok_or_else(|| wrong(&Json::String(s.clone())))?)
        }
        (k, Json::String(s)) if k.textual() => Value::Text(s),
        (_, other) => return Err(wrong(&other)),
    })
}

/// Appends `text` to `out` as a JSON string.
fn push_json_str(out: &mut String, text: &str) {
    out.push('"');
    let bytes = text.as_bytes();
    let mut start = 0;
    // Bytes of multi-byte characters are 0x80 and above: never split here.
    while let Some(i) = first_special(&bytes[start..]).map(|i| start + i) {
        out.push_str(&text[start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// Appends one row's line (with its `\n`) to `out`: the JSON array of its values, each as the
/// archive carries its column's kind (what [`value_to_json`] makes, written directly).
#[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
pub(super) fn row_line(out: &mut String, columns: &[Column], row: &[Value]) {
    out.push('[');
    for (i, (c, v)) in columns.iter().zip(row).enumerate() {
        if i > 0 {
            out.push(',');
        }
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => push_int(out, *n),
            // Rust prints the shortest text that reads back as the same float.
            Value::Float(f) if f.is_finite() => {
                let _ = write!(out, "{f}");
            }
            Value::Text(t) => push_json_str(out, t),
            Value::Bytes(b) if c.kind == Kind::Bytes => push_hex(out, b),
            other => out.push_str(&value_to_json(c.kind, other).to_string()),
        }
    }
    out.push_str("]\n");
}

/// Appends `n` in decimal digits (what `write!` prints, without its formatting machinery).
pub(crate) fn push_int(out: &mut String, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// Appends `bytes` as a JSON string of lowercase hex digits.
fn push_hex(out: &mut String, bytes: &[u8]) {
    out.push('"');
    push_hex_digits(out, bytes);
    out.push('"');
}

/// Appends the lowercase hex digits of `bytes` (what [`hex`] makes, without a `String` of its
/// own).
pub(crate) fn push_hex_digits(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// A JSON string's contents starting at `bytes[*at]` (just after its opening quote), up to
/// and past its closing quote: the line's own text when it holds no escape, else read into
/// `scratch`; `None` for anything but the escapes a writer of this format makes (`\"`, `\\`,
/// `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, and `\u` of a character outside the surrogates).
fn fast_string<'a>(text: &'a str, at: &mut usize, scratch: &'a mut String) -> Option<&'a str> {
    let bytes = text.as_bytes();
    // Most strings hold no escape: read in one piece.
    let plain = first_special(&bytes[*at..]);
    if let Some(end) = plain.filter(|&end| bytes[*at + end] == b'"') {
        let string = &text[*at..*at + end];
        *at += end + 1;
        return Some(string);
    }
    let out = scratch;
    out.clear();
    let mut start = *at;
    while *at < bytes.len() {
        match bytes[*at] {
            b'"' => {
                out.push_str(&text[start..*at]);
                *at += 1;
                return Some(out);
            }
            b'\\' => {
                out.push_str(&text[start..*at]);
                let escape = *bytes.get(*at + 1)?;
                *at += 2;
                match escape {
                    b'"' => out.push('"'),
                    b'\\' => out.push('\\'),
                    b'/' => out.push('/'),
                    b'b' => out.push('\u{8}'),
                    b'f' => out.push('\u{c}'),
                    b'n' => out.push('\n'),
                    b'r' => out.push('\r'),
                    b't' => out.push('\t'),
                    b'u' => {
                        let digits = text.get(*at..*at + 4)?;
                        let code = u32::from_str_radix(digits, 16).ok()?;
                        out.push(char::from_u32(code)?);
                        *at += 4;
                    }
                    _ => return None,
                }
                start = *at;
            }
            0..=0x1f => return None,
            _ => *at += 1,
        }
    }
    None
}

/// The value of a column of kind `kind` starting at `line[*at]`, read without building a JSON
/// value, for the forms this format's writer makes (a literal, a plain integer or decimal, or
/// a string), and moved past; `None` for anything else. Escaped strings are read into
/// `scratch`, hex digits into `bytes`.
pub(super) fn fast_cell<'a>(
    line: &'a str,
    at: &mut usize,
    kind: Kind,
    scratch: &'a mut String,
    bytes_read: &'a mut Vec<u8>,
) -> Option<ValueRef<'a>> {
    let bytes = line.as_bytes();
    Some(match *bytes.get(*at)? {
        b'"' => {
            *at += 1;
            let text = fast_string(line, at, scratch)?;
            match kind {
                Kind::Bytes => {
                    unhex_into(text, bytes_read)?;
                    ValueRef::Bytes(bytes_read)
                }
                Kind::Float => match text {
                    "NaN" => ValueRef::Float(f64::NAN),
                    "Infinity" => ValueRef::Float(f64::INFINITY),
                    "-Infinity" => ValueRef::Float(f64::NEG_INFINITY),
                    _ => return None,
                },
                k if k.textual() => ValueRef::Text(text),
                _ => return None,
            }
        }
        b'n' if line[*at..].starts_with("null") => {
            *at += 4;
            ValueRef::Null
        }
        b't' if line[*at..].starts_with("true") && kind == Kind::Bool => {
            *at += 4;
            ValueRef::Bool(true)
        }
        b'f' if line[*at..].starts_with("false") && kind == Kind::Bool => {
            *at += 5;
            ValueRef::Bool(false)
        }
        b'-' | b'0'..=b'9' => {
            let end = *at
                + bytes[*at..]
                    .iter()
                    .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                    .unwrap_or(bytes.len() - *at);
            let number = &line[*at..end];
            *at = end;
            match kind {
                Kind::Int => ValueRef::Int(number.parse().ok()?),
                Kind::Float => ValueRef::Float(number.parse().ok()?),
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// A row line read without building JSON values, for the forms this format's writer makes
/// (no spaces, each value a literal, a plain integer or decimal, or a string); `None` for
/// anything else, which the JSON reader then reads (and refuses, if it is not a row).
pub(super) fn fast_row(line: &str, columns: &[Column]) -> Option<Vec<Value>> {
    let bytes = line.as_bytes();
    let (mut scratch, mut hex) = (String::new(), Vec::new());
    let mut at = 1; // after '['
    let mut row = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            if bytes.get(at) != Some(&b',') {
                return None;
            }
            at += 1;
        }
        row.push(fast_cell(line, &mut at, c.kind, &mut scratch, &mut hex)?.owned());
    }
    (&line[at..] == "]").then_some(row)
}

/// The values of row line `line` (without its `\n`) of `table`, each as the archive carries
/// its column's kind; a line that is no row of the table is the problem's description.
pub(super) fn parse_row(line: &str, table: &Shape) -> Result<Vec<Value>, String> {
    let columns = &table.columns;
    if let Some(row) = fast_row(line, columns) {
        return Ok(row);
    }
    let values: Vec<Json> = match serde_json::from_str(line) {
        Ok(Json::Array(values)) => values,
        Ok(_) => return Err("a row is not a JSON array".to_owned()),
        Err(e) => return Err(format!("not JSON: {e}")),
    };
    if values.len() != columns.len() {
        return Err(format!(
            "a row of table {:?} has {} values; the table has {} columns",
            table.name,
            values.len(),
            columns.len()
        ));
    }
    columns
        .iter()
        .zip(values)
        .map(|(c, v)| value_from_json(c.kind, v).map_err(|p| format!("column {:?}: {p}", c.name)))
        .collect()
}
