//! An export's rows as PostgreSQL sends them for `COPY (<the export's SELECT>) TO STDOUT
//! (FORMAT binary)`, made into the archive's row lines as they arrive: each value in the
//! binary form of the type the `SELECT` casts it to (`int8`, `float8`, `bool`, `bytea`, dates
//! and times as days or microseconds, everything else text), printed as the archive carries
//! its column's kind, with no row or value built in between.

use crate::error::Error;
use crate::lifecycle::archive::instant::civil;
use crate::lifecycle::archive::{Kind, RowLines, Shape};

/// How a column's values arrive: the binary form of what the export's `SELECT` makes of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `int8`: 8 bytes, big-endian.
    Int8,
    /// `float8`: an IEEE 754 double, big-endian.
    Float8,
    /// `bool`: one byte.
    Bool,
    /// `bytea`: the bytes.
    Bytes,
    /// Text (UTF-8, the connection's encoding).
    Text,
    /// `date`: days since 2000-01-01, 4 bytes.
    Date,
    /// `time`: microseconds since midnight, 8 bytes.
    Time,
    /// `timestamp`: microseconds since 2000-01-01, 8 bytes.
    Timestamp,
    /// `timestamptz`: microseconds since 2000-01-01 UTC, 8 bytes.
    TimestampTz,
}

/// The form each of `table`'s columns arrives in, as
/// [`select`](super::port::select) reads it.
fn forms(table: &Shape) -> Vec<Form> {
    let form = |kind: Kind, declared: &str| match kind {
        Kind::Int => Form::Int8,
        Kind::Float => Form::Float8,
        Kind::Bool => Form::Bool,
        Kind::Bytes => Form::Bytes,
        // `timetz` (a time and an offset) as `to_json` prints it.
        Kind::Time if declared.starts_with("time with time zone") => Form::Text,
        Kind::Date => Form::Date,
        Kind::Time => Form::Time,
        Kind::Timestamp => Form::Timestamp,
        Kind::TimestampTz => Form::TimestampTz,
        _ => Form::Text,
    };
    table
        .columns
        .iter()
        .map(|c| form(c.kind, &c.declared))
        .collect()
}

/// What starts every binary `COPY`: the signature, then 32 bits of flags and the length of a
/// header extension.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// The rows of one table's binary `COPY`, read a chunk of bytes at a time (a row may be cut
/// between two chunks) into [`lines`](Self::lines).
pub(super) struct BinaryRows {
    forms: Vec<Form>,
    /// Bytes of a row (or of the header) whose rest is yet to come.
    pending: Vec<u8>,
    header_read: bool,
    ended: bool,
    /// A date or time printed, before it is written as a string.
    scratch: String,
    /// The rows read so far, as the archive's lines.
    pub(super) lines: RowLines,
}

fn refused(problem: String) -> Error {
    Error::from(sqlx::Error::Protocol(format!(
        "the export's binary COPY: {problem}"
    )))
}

impl BinaryRows {
    pub(super) fn new(table: &Shape) -> Self {
        BinaryRows {
            forms: forms(table),
            pending: Vec::new(),
            header_read: false,
            ended: false,
            scratch: String::new(),
            lines: RowLines::default(),
        }
    }

    /// Reads `chunk`: every row it completes into [`lines`](Self::lines).
    pub(super) fn feed(&mut self, chunk: &[u8]) -> Result<(), Error> {
        if self.pending.is_empty() {
            let used = self.read(chunk)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(chunk);
            let used = self.read(&pending)?;
            pending.drain(..used);
            self.pending = pending;
        }
        Ok(())
    }

    /// Checks that the data ended where it should: after its trailer, nothing cut short.
    pub(super) fn finish(&self) -> Result<(), Error> {
        match (self.ended, self.pending.len()) {
            (true, 0) => Ok(()),
            (_, n) => Err(refused(format!(
                "the data ends without its trailer ({n} bytes of a row cut short)"
            ))),
        }
    }

    /// Reads the whole rows at the start of `bytes` (and the header, the first time);
    /// how many bytes they took.
    fn read(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        let mut at = 0;
        if !self.header_read {
            let Some(fixed) = bytes.get(..19) else {
                return Ok(0);
            };
            if fixed[..11] != SIGNATURE[..] {
                return Err(refused("the data does not start with its signature".into()));
            }
            let extension = be_u32(&fixed[15..19]) as usize;
            if bytes.len() < 19 + extension {
                return Ok(0);
            }
            at = 19 + extension;
            self.header_read = true;
        }
        while at < bytes.len() {
            if self.ended {
                return Err(refused("data follows the trailer".into()));
            }
            let rest = &bytes[at..];
            let Some(size) = self.row_size(rest)? else {
                break;
            };
            if size == 2 {
                self.ended = true;
            } else {
                self.row(&rest[2..size])?;
            }
            at += size;
        }
        Ok(at)
    }

    /// The size of the row (or the trailer: 2) at the start of `bytes`, if they hold all of it.
    fn row_size(&self, bytes: &[u8]) -> Result<Option<usize>, Error> {
        let Some(count) = bytes.get(..2) else {
            return Ok(None);
        };
        let count = i16::from_be_bytes([count[0], count[1]]);
        if count == -1 {
            return Ok(Some(2));
        }
        if usize::try_from(count).ok() != Some(self.forms.len()) {
            return Err(refused(format!(
                "a row of {count} values; the table has {} columns",
                self.forms.len()
            )));
        }
        let mut at = 2;
        for _ in 0..self.forms.len() {
            let Some(length) = bytes.get(at..at + 4) else {
                return Ok(None);
            };
            at += 4;
            match be_u32(length) as i32 {
                -1 => {}
                n if n >= 0 => at += n as usize,
                n => return Err(refused(format!("a value of length {n}"))),
            }
        }
        Ok((at <= bytes.len()).then_some(at))
    }

    /// Writes the row whose values are `bytes` (each with its length; all there) as a line.
    fn row(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        self.lines.begin();
        for i in 0..self.forms.len() {
            let length = be_u32(&bytes[..4]) as i32;
            bytes = &bytes[4..];
            if length < 0 {
                self.lines.null();
                continue;
            }
            let (value, rest) = bytes.split_at(length as usize);
            bytes = rest;
            self.value(self.forms[i], value)?;
        }
        self.lines.end();
        Ok(())
    }

    fn value(&mut self, form: Form, value: &[u8]) -> Result<(), Error> {
        let wrong = || {
            refused(format!(
                "a {form:?} value of {} bytes",
                value.len()
            ))
        };
        let eight = || -> Result<[u8; 8], Error> { value.try_into().map_err(|_| wrong()) };
        let lines = &mut self.lines;
        match form {
            Form::Int8 => lines.int(i64::from_be_bytes(eight()?)),
            Form::Float8 => lines.float(f64::from_be_bytes(eight()?)),
            Form::Bool => match value {
                [b] => lines.bool(*b != 0),
                _ => return Err(wrong()),
            },
            Form::Bytes => lines.bytes(value),
            Form::Text => match std::str::from_utf8(value) {
                Ok(text) => lines.text_value(text),
                Err(_) => return Err(refused("a text value that is not UTF-8".into())),
            },
            Form::Date => {
                let days: [u8; 4] = value.try_into().map_err(|_| wrong())?;
                self.scratch.clear();
                iso_date(&mut self.scratch, i32::from_be_bytes(days));
                lines.text_value(&self.scratch);
            }
            Form::Time => {
                self.scratch.clear();
                iso_time(&mut self.scratch, i64::from_be_bytes(eight()?));
                lines.text_value(&self.scratch);
            }
            Form::Timestamp | Form::TimestampTz => {
                let offset = if form == Form::Timestamp { "" } else { "+00:00" };
                self.scratch.clear();
                iso_timestamp(&mut self.scratch, i64::from_be_bytes(eight()?), offset);
                lines.text_value(&self.scratch);
            }
        }
        Ok(())
    }
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;

/// Appends `n` in decimal, zero-padded to `width` digits at least.
fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let (mut at, mut rest) = (digits.len(), n);
    while rest > 0 || at > digits.len() - width.max(1) {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// Appends a date sent as days since 2000-01-01, as PostgreSQL prints it in ISO style (`BC`
/// after a year before 1; `infinity`).
fn iso_date(out: &mut String, days: i32) {
    match days {
        i32::MAX => out.push_str("infinity"),
        i32::MIN => out.push_str("-infinity"),
        d => {
            let bc = date_of(out, i64::from(d));
            if bc {
                out.push_str(" BC");
            }
        }
    }
}

/// Appends `YYYY-MM-DD` of a day since 2000-01-01 (the year counted back from 1 BC for one
/// before 1); whether it is before 1.
fn date_of(out: &mut String, days: i64) -> bool {
    let (year, month, day) = civil(days + PG_EPOCH_DAYS);
    let bc = year < 1;
    let year = if bc { 1 - year } else { year };
    push_padded(out, year.unsigned_abs(), 4);
    out.push('-');
    push_padded(out, u64::from(month), 2);
    out.push('-');
    push_padded(out, u64::from(day), 2);
    bc
}

/// Appends microseconds since midnight as `HH:MM:SS[.ffffff]` (the fraction without its
/// trailing zeros).
fn iso_time(out: &mut String, micros: i64) {
    let secs = micros.div_euclid(1_000_000).unsigned_abs();
    let frac = micros.rem_euclid(1_000_000).unsigned_abs();
    push_padded(out, secs / 3_600, 2);
    out.push(':');
    push_padded(out, secs / 60 % 60, 2);
    out.push(':');
    push_padded(out, secs % 60, 2);
    if frac != 0 {
        let (mut frac, mut width) = (frac, 6);
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        out.push('.');
        push_padded(out, frac, width);
    }
}

/// Appends a timestamp sent as microseconds since 2000-01-01 (in UTC for `timestamptz`) as
/// `YYYY-MM-DDTHH:MM:SS[.ffffff]` and `offset` (and ` BC` for one before year 1).
fn iso_timestamp(out: &mut String, micros: i64, offset: &str) {
    match micros {
        i64::MAX => return out.push_str("infinity"),
        i64::MIN => return out.push_str("-infinity"),
        _ => {}
    }
    let bc = date_of(out, micros.div_euclid(86_400_000_000));
    out.push('T');
    iso_time(out, micros.rem_euclid(86_400_000_000));
    out.push_str(offset);
    if bc {
        out.push_str(" BC");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::archive::{Column, Value};

    fn printed(print: impl FnOnce(&mut String)) -> String {
        let mut out = String::new();
        print(&mut out);
        out
    }

    #[test]
    fn dates_and_times_print_as_postgresql_prints_them() {
        let date = |d| printed(|o| iso_date(o, d));
        let time = |t| printed(|o| iso_time(o, t));
        let stamp = |t, offset| printed(|o| iso_timestamp(o, t, offset));
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(8_825), "2024-02-29");
        assert_eq!(date(-730_119), "0001-01-01");
        assert_eq!(date(-730_120), "0001-12-31 BC");
        assert_eq!(date(-746_117), "0044-03-15 BC");
        assert_eq!(date(2_914_000), "9978-04-06");
        assert_eq!(date(3_000_000), "10213-09-21");
        assert_eq!(date(i32::MAX), "infinity");
        assert_eq!(date(i32::MIN), "-infinity");
        assert_eq!(time(45_296_789_000), "12:34:56.789");
        assert_eq!(time(45_296_000_001), "12:34:56.000001");
        assert_eq!(time(86_399_999_999), "23:59:59.999999");
        assert_eq!(time(86_400_000_000), "24:00:00");
        assert_eq!(time(0), "00:00:00");
        assert_eq!(
            stamp(8_825 * 86_400_000_000 + 86_399_999_999, ""),
            "2024-02-29T23:59:59.999999"
        );
        assert_eq!(stamp(-1, "+00:00"), "1999-12-31T23:59:59.999999+00:00");
        assert_eq!(
            stamp(-746_117 * 86_400_000_000 + 43_200_500_000, ""),
            "0044-03-15T12:00:00.5 BC"
        );
        assert_eq!(stamp(i64::MIN, "+00:00"), "-infinity");
        assert_eq!(stamp(i64::MAX, ""), "infinity");
    }

    /// `COPY`'s binary form of `rows` (values already in their binary form; `None` NULL).
    fn copy_data(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&3u32.to_be_bytes());
        out.extend_from_slice(b"ext");
        for row in rows {
            out.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for value in row {
                match value {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(v) => {
                        out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        out.extend_from_slice(v);
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    fn table() -> Shape {
        let col = |name: &str, declared: &str, kind| Column {
            name: name.into(),
            declared: declared.into(),
            kind,
        };
        Shape {
            name: "things".into(),
            columns: vec![
                col("id", "bigint", Kind::Int),
                col("ratio", "double precision", Kind::Float),
                col("flag", "boolean", Kind::Bool),
                col("photo", "bytea", Kind::Bytes),
                col("name", "text", Kind::Text),
                col("day", "date", Kind::Date),
                col("at", "time without time zone", Kind::Time),
                col("tt", "time with time zone", Kind::Time),
                col("naive", "timestamp without time zone", Kind::Timestamp),
                col("when", "timestamp with time zone", Kind::TimestampTz),
                col("tags", "text[]", Kind::Other),
            ],
            references: Vec::new(),
        }
    }

    /// Every form, NULL, and a row cut anywhere between two chunks: the lines are those of
    /// the same values written row by row, whatever the chunks.
    #[test]
    fn binary_rows_are_the_lines_of_their_values_however_they_are_cut() {
        let table = table();
        let full = vec![
            Some(7i64.to_be_bytes().to_vec()),
            Some(0.1f64.to_be_bytes().to_vec()),
            Some(vec![1]),
            Some(vec![0, 255]),
            Some("a \"b\"\n ü".as_bytes().to_vec()),
            Some(8_825i32.to_be_bytes().to_vec()),
            Some(45_296_789_000i64.to_be_bytes().to_vec()),
            Some(b"23:00:00.5-02:30".to_vec()),
            Some((-1i64).to_be_bytes().to_vec()),
            Some(i64::MAX.to_be_bytes().to_vec()),
            Some(b"{a,\"b,c\",NULL}".to_vec()),
        ];
        let nulls = vec![None; 11];
        let data = copy_data(&[full, nulls.clone(), nulls]);
        let values = [
            Value::Int(7),
            Value::Float(0.1),
            Value::Bool(true),
            Value::Bytes(vec![0, 255]),
            Value::Text("a \"b\"\n ü".into()),
            Value::Text("2024-02-29".into()),
            Value::Text("12:34:56.789".into()),
            Value::Text("23:00:00.5-02:30".into()),
            Value::Text("1999-12-31T23:59:59.999999".into()),
            Value::Text("infinity".into()),
            Value::Text("{a,\"b,c\",NULL}".into()),
        ];
        let mut expected = RowLines::default();
        expected.push_row(&table.columns, &values);
        expected.push_row(&table.columns, &[const { Value::Null }; 11]);
        expected.push_row(&table.columns, &[const { Value::Null }; 11]);
        for cut in 0..=data.len() {
            let mut rows = BinaryRows::new(&table);
            rows.feed(&data[..cut]).unwrap();
            rows.feed(&data[cut..]).unwrap();
            rows.finish().unwrap();
            assert_eq!(rows.lines.text(), expected.text(), "cut at {cut}");
            assert_eq!(rows.lines.rows(), 3);
        }
        // A byte at a time.
        let mut rows = BinaryRows::new(&table);
        for byte in &data {
            rows.feed(std::slice::from_ref(byte)).unwrap();
        }
        rows.finish().unwrap();
        assert_eq!(rows.lines.text(), expected.text());
    }

    /// Data cut short, a row of another width, a value of the wrong size, text that is not
    /// UTF-8, or anything after the trailer: refused.
    #[test]
    fn binary_rows_that_are_not_whole_or_not_the_tables_are_refused() {
        let table = table();
        let row = |id: Vec<u8>, name: Vec<u8>| {
            let mut row = vec![None; 11];
            row[0] = Some(id);
            row[4] = Some(name);
            row
        };
        let good = copy_data(&[row(1i64.to_be_bytes().to_vec(), b"a".to_vec())]);
        let read = |data: &[u8]| -> Result<u64, Error> {
            let mut rows = BinaryRows::new(&table);
            rows.feed(data)?;
            rows.finish()?;
            Ok(rows.lines.rows())
        };
        assert_eq!(read(&good).unwrap(), 1);
        let refused = [
            ("cut short", good[..good.len() - 1].to_vec()),
            ("no header", good[5..].to_vec()),
            ("after the trailer", [&good[..], &[0, 0]].concat()),
            ("a 4-byte int8", copy_data(&[row(vec![0; 4], b"a".to_vec())])),
            ("not UTF-8", copy_data(&[row(vec![0; 8], vec![0xff])])),
            ("a short row", copy_data(&[vec![None; 10]])),
        ];
        for (what, data) in refused {
            assert!(read(&data).is_err(), "{what}: read");
        }
    }
}
