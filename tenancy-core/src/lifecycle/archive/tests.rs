//! The archive's values, kinds and format, without a database.

use super::canon::convert;
use super::codec::uuid_text;
use super::lines::{fast_row, push_int, row_line, value_from_json, value_to_json};
use super::*;

fn col(name: &str, declared: &str, kind: Kind) -> Column {
    Column {
        name: name.into(),
        declared: declared.into(),
        kind,
    }
}

/// Columns `a`, `b`, … of `kinds`, without declared types.
fn cols(kinds: &[Kind]) -> Vec<Column> {
    kinds
        .iter()
        .zip('a'..='z')
        .map(|(&kind, name)| col(&name.to_string(), "", kind))
        .collect()
}

#[test]
fn values_are_made_canonical_for_their_kind_or_refused() {
    let uuid = [0x12u8; 16];
    assert_eq!(
        canonical(Kind::Uuid, Value::Bytes(uuid.to_vec())).unwrap(),
        Value::Text("12121212-1212-1212-1212-121212121212".into())
    );
    assert_eq!(
        canonical(Kind::Bool, Value::Int(0)).unwrap(),
        Value::Bool(false)
    );
    assert_eq!(
        canonical(Kind::Numeric, Value::Int(7)).unwrap(),
        Value::Text("7".into())
    );
    assert_eq!(
        canonical(Kind::Int, Value::Text(" 42".into())).unwrap(),
        Value::Int(42)
    );
    assert!(canonical(Kind::Int, Value::Text("x".into())).is_err());
    assert!(canonical(Kind::Uuid, Value::Bytes(vec![1, 2])).is_err());
    assert!(canonical(Kind::Float, Value::Bytes(vec![1])).is_err());
    assert_eq!(
        convert(Kind::Uuid, Kind::Bytes, Value::Text(uuid_text(&uuid))).unwrap(),
        Value::Bytes(uuid.to_vec())
    );
}

#[test]
fn what_maps_onto_what() {
    let text = col("a", "TEXT", Kind::Text);
    assert!(maps(&text, &col("a", "uuid", Kind::Uuid)));
    assert!(maps(&text, &col("a", "timestamptz", Kind::TimestampTz)));
    assert!(maps(
        &col("a", "INTEGER", Kind::Int),
        &col("a", "bigint", Kind::Int)
    ));
    assert!(maps(
        &col("a", "INTEGER", Kind::Int),
        &col("a", "boolean", Kind::Bool)
    ));
    assert!(maps(
        &col("a", "BLOB", Kind::Bytes),
        &col("a", "uuid", Kind::Uuid)
    ));
    assert!(!maps(&text, &col("a", "bigint", Kind::Int)));
    assert!(!maps(&col("a", "BLOB", Kind::Bytes), &text));
    assert!(!maps(
        &col("a", "inet", Kind::Other),
        &col("a", "cidr", Kind::Other)
    ));
    assert!(maps(
        &col("a", "inet", Kind::Other),
        &col("a", "INET", Kind::Other)
    ));
    assert!(!maps(&col("a", "inet", Kind::Other), &text));
}

#[test]
fn values_survive_their_json_form() {
    let cases = [
        (Kind::Int, Value::Int(i64::MIN)),
        (Kind::Float, Value::Float(0.1)),
        (Kind::Float, Value::Float(f64::NEG_INFINITY)),
        (Kind::Bool, Value::Bool(true)),
        (Kind::Bytes, Value::Bytes(vec![0, 255, 16])),
        (Kind::Text, Value::Text("a \"quoted\"\nline ✓".into())),
        (Kind::Numeric, Value::Null),
    ];
    for (kind, value) in cases {
        let back = value_from_json(kind, value_to_json(kind, &value)).unwrap();
        assert_eq!(back, value, "{kind:?}");
    }
    let nan = value_from_json(
        Kind::Float,
        value_to_json(Kind::Float, &Value::Float(f64::NAN)),
    );
    assert!(matches!(nan, Ok(Value::Float(f)) if f.is_nan()));
    assert!(value_from_json(Kind::Int, Json::from("1")).is_err());
    assert!(value_from_json(Kind::Bytes, Json::from("zz")).is_err());
}

#[tokio::test]
async fn an_archive_reads_back_and_any_change_to_it_is_refused() {
    let header = Header {
        backend: "sqlite".into(),
        tenant: "acme".into(),
        migrations: vec![ArchivedMigration {
            version: 1,
            description: "guards".into(),
            checksum: "00ff".into(),
        }],
        tables: vec![Shape {
            name: "guards".into(),
            columns: vec![
                col("id", "INTEGER", Kind::Int),
                col("name", "TEXT", Kind::Text),
            ],
            references: Vec::new(),
        }],
    };
    let mut bytes = Vec::new();
    let mut w = ArchiveWriter::new(&mut bytes);
    w.header(&header).await.unwrap();
    w.begin_table("guards").await.unwrap();
    // A chunk of lines for each row: the table's hash and count run on over chunks.
    for (i, n) in [(1, "Abu"), (2, "Bea")] {
        let mut lines = RowLines::default();
        lines.push_row(
            &header.tables[0].columns,
            &[Value::Int(i), Value::Text(n.into())],
        );
        w.rows(&lines).await.unwrap();
    }
    w.end_table().await.unwrap();
    assert_eq!(w.finish().await.unwrap(), (1, 2));
    let text = String::from_utf8(bytes.clone()).unwrap();

    async fn read(text: &str) -> Result<Vec<Vec<Value>>, Error> {
        let mut r = ArchiveReader::new(text.as_bytes());
        r.header().await?;
        let mut all = Vec::new();
        while let Part::Table(i) = r.next_part().await? {
            let (mut rows, mut state) = (Vec::new(), Progress::default());
            while r.rows(i, 1, &mut rows, &mut state).await? {
                all.append(&mut rows);
            }
            all.append(&mut rows);
        }
        Ok(all)
    }
    let rows = read(&text).await.unwrap();
    assert_eq!(rows[1], [Value::Int(2), Value::Text("Bea".into())]);

    // Each change, and the line an import names when it refuses the archive.
    let refused = [
        ("a changed value", text.replace("\"Bea\"", "\"Bex\""), 5),
        ("cut short", text[..text.len() - 10].to_owned(), 6),
        (
            "no trailer",
            text.lines().take(5).map(|l| format!("{l}\n")).collect(),
            6,
        ),
        ("a dropped row", text.replacen("[2,\"Bea\"]\n", "", 1), 4),
        ("no header", "{}\n".to_owned(), 1),
        (
            "a newer format",
            text.replacen("\"tenancy_archive\":1", "\"tenancy_archive\":2", 1),
            1,
        ),
        (
            "a changed header",
            text.replacen("\"acme\"", "\"acne\"", 1),
            6,
        ),
    ];
    for (change, archive, line) in &refused {
        match read(archive).await {
            Err(Error::Archive { line: at, .. }) if at == *line => {}
            other => panic!("{change}: {other:?}, not refused at line {line}"),
        }
    }

    // Read into text rows, through buffers of any size: the same rows, the same refusals.
    let table = &header.tables[0];
    async fn read_text(bytes: &[u8], table: &Shape, buffer: usize) -> Result<String, Error> {
        let mut r = ArchiveReader::new(tokio::io::BufReader::with_capacity(buffer, bytes));
        r.header().await?;
        let (mut all, mut out) = (String::new(), String::new());
        let mut text = RowsToText::new(DEBUG_TEXT, table, table, &[0, 1]);
        while let Part::Table(i) = r.next_part().await? {
            let mut state = Progress::default();
            while r.text_rows(i, 1, &mut out, &mut state, &mut text).await? {
                all.push_str(&out);
            }
            all.push_str(&out);
        }
        Ok(all)
    }
    let mut not_utf8 = text.replace("Bea", "B\u{1}a").into_bytes();
    let at = not_utf8.iter().position(|&b| b == 1).unwrap();
    not_utf8[at] = 0xff;
    for buffer in [1, 3, 8, 64, 8192] {
        let rows = read_text(text.as_bytes(), table, buffer).await.unwrap();
        assert_eq!(
            rows, "Int(1)|Text(\"Abu\")/Int(2)|Text(\"Bea\")/",
            "{buffer}"
        );
        for (change, archive, line) in &refused {
            match read_text(archive.as_bytes(), table, buffer).await {
                Err(Error::Archive { line: at, .. }) if at == *line => {}
                other => panic!("{change} ({buffer}): {other:?}, not refused at line {line}"),
            }
        }
        match read_text(&not_utf8, table, buffer).await {
            Err(Error::Archive { line: 4, problem }) if problem.contains("UTF-8") => {}
            other => panic!("not UTF-8 ({buffer}): {other:?}"),
        }
    }
}

/// Text rows that show each value as it is debug-printed.
const DEBUG_TEXT: TextRows = TextRows {
    push: |out, value| out.push_str(&format!("{value:?}")),
    between: '|',
    after: '/',
};

#[test]
fn a_row_line_is_the_json_of_its_values() {
    use Kind::{Bool, Bytes, Float, Int, Text};
    let columns = cols(&[Text, Int, Float, Bytes, Float, Bool, Float]);
    let texts = [
        "plain",
        "quote \" backslash \\ slash /",
        "lines\n\r\ttab \u{0} \u{1f} \u{7f}",
        "ünïcode ✓ 😀 \u{2028}",
        "",
    ];
    for text in texts {
        let row = [
            Value::Text(text.into()),
            Value::Int(i64::MIN),
            Value::Float(0.1 + 0.2),
            Value::Bytes(vec![0, 1, 254, 255]),
            Value::Float(f64::NAN),
            Value::Null,
            Value::Float(1e300),
        ];
        let mut line = String::new();
        row_line(&mut line, &columns, &row);
        assert!(line.ends_with("]\n"));
        let parsed: Vec<Json> = serde_json::from_str(&line).unwrap();
        let back: Vec<Value> = columns
            .iter()
            .zip(parsed)
            .map(|(c, j)| value_from_json(c.kind, j).unwrap())
            .collect();
        assert_eq!(back[0], row[0], "{line}");
        assert_eq!(back[1..4], row[1..4], "{line}");
        assert!(matches!(back[4], Value::Float(f) if f.is_nan()));
        assert_eq!(back[5..], row[5..], "{line}");
        // The same values serde_json itself would write.
        let expected: Vec<Json> = columns
            .iter()
            .zip(&row)
            .map(|(c, v)| value_to_json(c.kind, v))
            .collect();
        let reparsed: Vec<Json> = serde_json::from_str(&line).unwrap();
        assert_eq!(reparsed, expected);
    }
}

/// A row written a value at a time (as PostgreSQL's export writes its rows) is the line
/// [`row_line`] writes of the same values; integers are printed as `write!` prints them.
#[test]
fn a_row_written_a_value_at_a_time_is_its_row_line() {
    use Kind::{Bool, Bytes, Float, Int, Text};
    let columns = cols(&[
        Text, Int, Float, Bytes, Float, Bool, Float, Int, Float, Text,
    ]);
    let row = [
        Value::Text("quote \" backslash \\ lines\n\t \u{1} ünïcode 😀".into()),
        Value::Int(i64::MIN),
        Value::Float(0.1 + 0.2),
        Value::Bytes(vec![0, 1, 0x7f, 254, 255]),
        Value::Float(f64::NAN),
        Value::Bool(false),
        Value::Float(f64::NEG_INFINITY),
        Value::Int(0),
        Value::Float(1e300),
        Value::Null,
    ];
    let (mut built, mut expected) = (RowLines::default(), RowLines::default());
    for _ in 0..2 {
        built.begin();
        for value in &row {
            match value {
                Value::Null => built.null(),
                Value::Bool(b) => built.bool(*b),
                Value::Int(n) => built.int(*n),
                Value::Float(f) => built.float(*f),
                Value::Text(t) => built.text_value(t),
                Value::Bytes(b) => built.bytes(b),
            }
        }
        built.end();
        expected.push_row(&columns, &row);
    }
    assert_eq!(built.text(), expected.text());
    assert_eq!((built.rows(), expected.rows()), (2, 2));
    let mut line = String::new();
    row_line(&mut line, &columns, &row);
    assert_eq!(built.text(), line.repeat(2));
    for n in [
        i64::MIN,
        i64::MIN + 1,
        -10,
        -1,
        0,
        9,
        10,
        1_000_000,
        i64::MAX,
    ] {
        let mut out = String::from("x");
        push_int(&mut out, n);
        assert_eq!(out, format!("x{n}"));
    }
}

/// The fast reader of row lines reads what the JSON reader reads, or leaves the line to it.
#[test]
fn the_fast_row_reader_agrees_with_the_json_reader() {
    use Kind::{Bool, Bytes, Float, Int, Text, Uuid};
    let columns = cols(&[Text, Int, Float, Bytes, Bool, Uuid]);
    let slow = |line: &str| -> Option<Vec<Value>> {
        let values: Vec<Json> = serde_json::from_str(line).ok()?;
        if values.len() != columns.len() {
            return None;
        }
        columns
            .iter()
            .zip(values)
            .map(|(c, v)| value_from_json(c.kind, v).ok())
            .collect()
    };
    let mut lines: Vec<String> = vec![
        r#"["a\"b\\c\/d\b\f\n\r\t\u00e9\u2028",-9223372036854775808,1e300,"00ff",true,null]"#
            .into(),
        r#"["",0,-0.5,"",false,"12345678-1234-1234-1234-123456789abc"]"#.into(),
        r#"[null,null,"NaN",null,null,null]"#.into(),
        r#"["\ud83d\ude00",1,2,"0",true,null]"#.into(), // a surrogate pair; odd hex
        r#"[ "a",1,2.5,"00",true,null]"#.into(),        // a space
        r#"["a",1.5,2.5,"00",true,null]"#.into(),       // not an integer
        r#"["a",1,2.5,"00",1,null]"#.into(),            // not a boolean
        r#"["a",1,2.5,"00",true,null,7]"#.into(),       // a value too many
        r#"["a",1,2.5,"00",true]"#.into(),              // a value too few
        r#"["a",1,2.5,"00",true,null]x"#.into(),
        r#"["unterminated,1,2.5,"00",true,null]"#.into(),
        "[\"raw\ttab\",1,2.5,\"00\",true,null]".into(), // a control character unescaped
    ];
    // And lines as this format's writer makes them, from many characters.
    let mut seed = 7u64;
    for _ in 0..200 {
        let mut text = String::new();
        for _ in 0..(seed % 12) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let c = match seed >> 61 {
                0 => char::from_u32((seed >> 20) as u32 % 0x20).unwrap(),
                1 => ['"', '\\', '/', '\u{7f}'][(seed >> 30) as usize % 4],
                2 => char::from_u32(0x80 + (seed >> 20) as u32 % 0x700).unwrap(),
                3 => '😀',
                _ => char::from_u32(0x20 + (seed >> 20) as u32 % 0x5f).unwrap(),
            };
            text.push(c);
        }
        let row = [
            Value::Text(text),
            Value::Int((seed >> 3) as i64 - (seed >> 2) as i64),
            Value::Float(f64::from_bits(seed >> 2) % 1e10),
            Value::Bytes(seed.to_be_bytes().to_vec()),
            Value::Bool(seed.is_multiple_of(2)),
            Value::Null,
        ];
        let mut line = String::new();
        row_line(&mut line, &columns, &row);
        line.pop();
        lines.push(line);
    }
    for line in &lines {
        let fast = fast_row(line, &columns);
        let slow = slow(line);
        match fast {
            // Compared as printed: NaN is not equal to itself.
            Some(fast) => assert_eq!(format!("{:?}", Some(fast)), format!("{slow:?}"), "{line}"),
            None => assert!(
                slow.is_none() || line.contains(' ') || line.contains("\\ud83d"),
                "the fast reader left a plain line: {line}"
            ),
        }
    }
    // Every line the writer made took the fast path.
    assert!(lines[12..].iter().all(|l| fast_row(l, &columns).is_some()));
}

/// A row line turned straight into text rows is the text of its values read and converted one
/// by one; lines written otherwise, and values to convert, take that way.
#[test]
fn text_rows_are_the_text_of_the_rows_values() {
    use Kind::{Bool, Bytes, Float, Int, Json as JsonKind, Numeric, Text, Uuid};
    let from = Shape {
        name: "t".into(),
        columns: cols(&[Text, Int, Float, Bytes, Bool, Uuid, Int, Text, Numeric]),
        references: Vec::new(),
    };
    // Per archive column, a target column of the same kind, or one to convert into.
    let to = Shape {
        name: "t".into(),
        columns: cols(&[
            Text, Int, Float, Bytes, Bool, Uuid, Float, JsonKind, Numeric,
        ]),
        references: Vec::new(),
    };
    let columns: Vec<usize> = (0..from.columns.len()).collect();
    let through_values = |line: &str| -> Result<String, String> {
        let mut row = parse_row(line, &from)?;
        convert_row(from.columns.iter().map(|c| c.kind), &to, &columns, &mut row)?;
        let mut out = String::new();
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                out.push(DEBUG_TEXT.between);
            }
            (DEBUG_TEXT.push)(&mut out, v.as_ref());
        }
        out.push(DEBUG_TEXT.after);
        Ok(out)
    };
    let lines = [
        r#"["a\"b\\c\/d\b\f\n\r\t\u00e9",-9223372036854775808,1e300,"00ff",true,null,7,"{\"a\":1}","1.50"]"#,
        r#"["",0,-0.5,"",false,"12345678-1234-1234-1234-123456789abc",null,"[]","0"]"#,
        r#"[null,null,"NaN",null,null,null,null,null,null]"#,
        r#"["plain",1,"-Infinity","0a",true,"12345678-1234-1234-1234-123456789ABC",2,"3","x"]"#, // uppercase uuid
        r#"["plain",1,2,"0a",true,"{12345678-1234-1234-1234-123456789abc}",2,"3","x"]"#, // braces
        r#"["\ud83d\ude00",1,2,"0a",true,null,2,"3","x"]"#, // a surrogate pair
        r#"[ "a",1,2,"0a",true,null,2,"3","x"]"#,           // a space
        r#"["a",1,2,"0a",true,"not a uuid",2,"3","x"]"#,
        r#"["a",1,2,"0a",true,null,2,"{not json","x"]"#,
        r#"["a",1.5,2,"0a",true,null,2,"3","x"]"#, // not an integer
        r#"["a",1,2,"0g",true,null,2,"3","x"]"#,   // not hex
        r#"["a",1,2,"0a",true,null,2,"3"]"#,       // a value too few
        r#"["a",1,2,"0a",true,null,2,"3","x",null]"#, // a value too many
        r#"["a",1,2,"0a",true,null,2,"3","x"]x"#,
        r#"x"a",1,2,"0a",true,null,2,"3","x"]"#, // no opening bracket
        r#"{"end":"t"}"#,
    ];
    let mut text = RowsToText::new(DEBUG_TEXT, &from, &to, &columns);
    let mut direct = 0;
    for line in lines {
        let mut out = "before ".to_owned();
        let read = text.row(line, &mut out);
        match through_values(line) {
            Ok(expected) => {
                assert_eq!(read, Ok(()), "{line}");
                assert_eq!(out, format!("before {expected}"), "{line}");
            }
            Err(problem) => assert_eq!(read, Err(problem), "{line}"),
        }
        let mut out = String::new();
        if text.direct(line, &mut out).is_some() {
            direct += 1;
        }
    }
    // The first three lines (as this format's writer writes them) went straight through.
    assert!(lines[..3]
        .iter()
        .all(|l| text.direct(l, &mut String::new()).is_some()));
    assert_eq!(direct, 3);
}

/// The word-at-a-time search finds the first byte a JSON string escapes wherever it is.
#[test]
fn the_first_special_byte_is_found_wherever_it_is() {
    let naive = |b: &[u8]| b.iter().position(|&c| c < 0x20 || c == b'"' || c == b'\\');
    let mut seed = 11u64;
    for len in 0..40 {
        for _ in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Mostly plain bytes (ASCII and above 0x7f), now and then a special one.
                    match (seed >> 59) % 16 {
                        0 => [b'"', b'\\', b'\n', 0, 0x1f, b'\t'][(seed >> 20) as usize % 6],
                        1 => [0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc]
                            [(seed >> 20) as usize % 9],
                        _ => 0x20 + (seed >> 24) as u8 % 0xd0,
                    }
                })
                .collect();
            assert_eq!(codec::first_special(&bytes), naive(&bytes), "{bytes:?}");
        }
    }
}
