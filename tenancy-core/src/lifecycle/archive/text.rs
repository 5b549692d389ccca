//! An archive's row lines turned straight into the text rows a backend streams (PostgreSQL's
//! `COPY` text): each value read from its line and written out without a
//! [`Value`](super::Value) of its own wherever its column's conversion leaves it as it is. A
//! line this cannot read so (written otherwise than this format's writer writes, or a value to
//! convert) goes through values, as every backend's import reads it; either way the text is
//! the same.

use super::canon::{convert, convert_row};
use super::lines::{fast_cell, parse_row};
use super::model::{Kind, Shape, ValueRef};

/// How a backend takes rows as text: each value written by `push`, `between` after each but
/// the row's last, `after` after the row.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct TextRows {
    /// Appends one value (canonical for its target column's kind).
    pub push: fn(&mut String, ValueRef<'_>),
    /// Between two values of a row.
    pub between: char,
    /// After a row.
    pub after: char,
}

/// What a value of an archive column needs on its way into its target column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing: [`convert`] leaves every value of this kind as it is.
    AsIs,
    /// A uuid: as it is if it is canonical text already.
    Uuid,
    /// [`convert`] from the archive's kind to the target's.
    Convert(Kind, Kind),
}

/// Turns the row lines of one archive table into a backend's text rows, for the target
/// columns an import planned for it.
pub(crate) struct RowsToText<'a> {
    text: TextRows,
    /// The archive's table.
    from: &'a Shape,
    /// The target table, and per archive column the index of its target column.
    to: &'a Shape,
    columns: &'a [usize],
    steps: Vec<Step>,
    /// What escaped strings and hex digits are read into.
    scratch: String,
    bytes: Vec<u8>,
}

impl<'a> RowsToText<'a> {
    pub(crate) fn new(
        text: TextRows,
        from: &'a Shape,
        to: &'a Shape,
        columns: &'a [usize],
    ) -> Self {
        let steps = from
            .columns
            .iter()
            .zip(columns)
            .map(|(c, &i)| match (c.kind, to.columns[i].kind) {
                (Kind::Uuid, Kind::Uuid) => Step::Uuid,
                (a, b) if a == b && b != Kind::Json => Step::AsIs,
                (a, b) => Step::Convert(a, b),
            })
            .collect();
        RowsToText {
            text,
            from,
            to,
            columns,
            steps,
            scratch: String::new(),
            bytes: Vec::new(),
        }
    }

    /// Appends the text row of `line` (a row line without its `\n`) to `out`; a line that is
    /// no row of the table, or a value unfit for its column, is the problem's description.
    pub(crate) fn row(&mut self, line: &str, out: &mut String) -> Result<(), String> {
        let start = out.len();
        if self.direct(line, out).is_some() {
            return Ok(());
        }
        out.truncate(start);
        let mut row = parse_row(line, self.from)?;
        let kinds = self.from.columns.iter().map(|c| c.kind);
        convert_row(kinds, self.to, self.columns, &mut row)?;
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                out.push(self.text.between);
            }
            (self.text.push)(out, value.as_ref());
        }
        out.push(self.text.after);
        Ok(())
    }

    /// The row written value by value as it is read; `None` (with part of it written) for a
    /// line read otherwise.
    pub(super) fn direct(&mut self, line: &str, out: &mut String) -> Option<()> {
        let bytes = line.as_bytes();
        if bytes.first() != Some(&b'[') {
            return None;
        }
        let (text, columns) = (self.text, &self.from.columns);
        let mut at = 1; // after '['
        for (i, (c, step)) in columns.iter().zip(&self.steps).enumerate() {
            if i > 0 {
                if bytes.get(at) != Some(&b',') {
                    return None;
                }
                at += 1;
                out.push(text.between);
            }
            let value = fast_cell(line, &mut at, c.kind, &mut self.scratch, &mut self.bytes)?;
            match (step, value) {
                (Step::AsIs, value) => (text.push)(out, value),
                (Step::Uuid, ValueRef::Text(t)) if canonical_uuid(t) => (text.push)(out, value),
                (Step::Uuid, ValueRef::Null) => (text.push)(out, value),
                (Step::Uuid, _) => return None,
                (Step::Convert(from, to), value) => {
                    let value = convert(*from, *to, value.owned()).ok()?;
                    (text.push)(out, value.as_ref());
                }
            }
        }
        if &line[at..] != "]" {
            return None;
        }
        out.push(text.after);
        Some(())
    }
}

/// Whether `text` is a uuid's canonical text (what [`uuid_text`](super::codec::uuid_text) prints): lowercase hex
/// digits in groups of 8, 4, 4, 4 and 12, joined by hyphens.
fn canonical_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
        })
}
