//! Quoting identifiers: every schema, database, table and column name reaches SQL through
//! here, between the dialect's quotes with any quote inside doubled.

/// Appends `text` between two `quote`s, doubling any `quote` inside.
pub(crate) fn quote_into(out: &mut String, text: &str, quote: char) {
    out.reserve(text.len() + 2);
    out.push(quote);
    // A statement quotes every name it writes, and names rarely hold a quote: copy them whole.
    if quote.is_ascii() && !text.bytes().any(|b| b == quote as u8) {
        out.push_str(text);
    } else {
        for c in text.chars() {
            if c == quote {
                out.push(quote);
            }
            out.push(c);
        }
    }
    out.push(quote);
}

/// Appends `ident` double-quoted, doubling any `"` inside (ANSI SQL quoting: PostgreSQL and
/// SQLite).
pub(crate) fn double_quote_into(out: &mut String, ident: &str) {
    quote_into(out, ident, '"')
}

/// `ident` double-quoted.
pub(crate) fn double_quoted(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    double_quote_into(&mut out, ident);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(double_quoted(r#"we"ird"#), r#""we""ird""#);
        let mut out = String::new();
        quote_into(&mut out, "a`b", '`');
        assert_eq!(out, "`a``b`");
        for (text, quoted) in [
            ("", r#""""#),
            (r#"""#, r#""""""#),
            (r#""a"#, r#""""a""#),
            (r#"a""#, r#""a""""#),
            (r#"a""b"#, r#""a""""b""#),
            ("ünï", r#""ünï""#),
        ] {
            assert_eq!(double_quoted(text), quoted, "{text:?}");
        }
    }
}
