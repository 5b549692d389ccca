//! Quoting identifiers: every schema, database, table and column name reaches SQL through
//! here, between the dialect's quotes with any quote inside doubled.

/// The name quoted with `quote` that `text` starts with, after its opening quote (a doubled
/// quote inside read as one, as [`quote_into`] writes it); `None` if it is not closed.
#[cfg(any(feature = "mysql", feature = "sqlite"))]
pub(crate) fn unquote_from(text: &str, quote: char) -> Option<String> {
    let mut name = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != quote {
            name.push(c);
        } else if chars.clone().next() == Some(quote) {
            chars.next();
            name.push(quote);
        } else {
            return Some(name);
        }
    }
    None
}

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
