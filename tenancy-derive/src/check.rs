//! Rules that involve more than one attribute, field or name. Each broken rule is recorded
//! against the token the user must change; checking always goes on to the end.

use quote::ToTokens;

use crate::ast::{Container, Field};
use crate::attr::Key;
use crate::ctxt::Ctxt;
use crate::ty;

/// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1).
const MAX_IDENTIFIER_BYTES: usize = 63;

pub fn check(cx: &Ctxt, model: &Container) {
    check_generics(cx, model);
    let mysql = model.is_mysql();
    check_identifier(
        cx,
        mysql,
        "table name",
        &model.table,
        model.table_tokens(),
        "#[tenancy(table = \"...\")]",
    );
    if let Some((key, schema)) = &model.attrs.shared {
        check_identifier(
            cx,
            mysql,
            "shared schema name",
            &schema.value(),
            schema.to_token_stream(),
            "#[tenancy(shared = \"...\")]",
        );
        if model.attrs.backend == Some(crate::attr::Backend::Sqlite) {
            cx.error_spanned_by(
                key,
                "shared models are not supported on SQLite: each tenant is a database file of its own, and tenancy does not attach a shared file to it; keep shared data in a model of its own pool",
            );
        }
    }
    if let Some((key, column)) = &model.attrs.tenant_column {
        check_identifier(
            cx,
            mysql,
            "tenant column name",
            &column.value(),
            column.to_token_stream(),
            "#[tenancy(tenant_column = \"...\")]",
        );
        if model.attrs.shared.is_some() {
            cx.error_spanned_by(
                key,
                "a shared model has no tenant column: its table holds rows every tenant reads; remove `tenant_column`, or `shared` to keep each tenant's rows apart",
            );
        }
        if let Some(field) = model
            .fields
            .iter()
            .find(|f| f.is_column() && f.column == column.value())
        {
            cx.error_spanned_by(
                column,
                format_args!(
                    "the tenant column `{}` is also the column of field `{}`: tenancy sets the tenant column itself, so it is not a field; remove the field or #[tenancy(skip)] it",
                    field.column, field.name
                ),
            );
        }
    }
    let mut primary_key: Option<&Field> = None;
    for (i, field) in model.fields.iter().enumerate() {
        check_skip(cx, field);
        if let Some(id) = &field.attrs.id {
            match primary_key {
                Some(first) => cx.error_spanned_by(
                    id,
                    format_args!(
                        "a second primary key: field `{}` is already #[tenancy(id)]; a model has exactly one primary key",
                        first.name
                    ),
                ),
                None => primary_key = Some(field),
            }
            if ty::option_inner(field.ty).is_some() {
                cx.error_spanned_by(
                    field.ty,
                    "the primary key cannot be an Option: primary key columns are NOT NULL (for an id the database assigns, use #[tenancy(id, generated)] on a plain integer)",
                );
            }
        }
        check_rules(cx, field);
        if field.is_column() {
            if let Some((part, reason)) = ty::unsupported(field.ty, model.has_unsigned()) {
                cx.error_spanned_by(part, reason);
            }
            check_identifier(
                cx,
                mysql,
                "column name",
                &field.column,
                field.column_tokens(),
                "#[tenancy(rename = \"...\")]",
            );
            check_unique_column(cx, &model.fields[..i], field);
            check_const_name(cx, model, &model.fields[..i], field);
        }
    }
    if primary_key.is_none() {
        cx.error_spanned_by(
            model.ident,
            "no primary key: mark one field with #[tenancy(id)]",
        );
    }
}

fn check_generics(cx: &Ctxt, model: &Container) {
    let generics = model.generics;
    let message = "generic models are not supported: a model is one table with fixed column types";
    if !generics.params.is_empty() {
        cx.error_spanned_by(generics, message);
    } else if let Some(where_clause) = &generics.where_clause {
        cx.error_spanned_by(where_clause, message);
    }
}

/// `skip` with `id`, `generated` or `rename`: reported at whichever key comes second.
fn check_skip(cx: &Ctxt, field: &Field) {
    let Some(skip) = &field.attrs.skip else {
        return;
    };
    let others = [
        ("id", field.attrs.id.as_ref()),
        ("generated", field.attrs.generated.as_ref()),
        ("rename", field.attrs.rename.as_ref().map(|(key, _)| key)),
    ];
    for (name, key) in others {
        let Some(key) = key else { continue };
        let second: &Key = if key.order > skip.order { key } else { skip };
        cx.error_spanned_by(
            second,
            format_args!(
                "`skip` cannot be combined with `{name}`: a skipped field is not a column"
            ),
        );
    }
}

/// The validation rules: each must have something to check and fit the field's type.
fn check_rules(cx: &Ctxt, field: &Field) {
    let attrs = &field.attrs;
    if let Some(required) = &attrs.required {
        if let Some(name) = ty::number_or_bool(field.ty) {
            cx.error_spanned_by(
                required,
                format_args!(
                    "`required` does not apply to {name}, which always has a value: it checks that a String, Vec or Option is not empty (for an optional value, use Option<{name}>)"
                ),
            );
        }
    }
    if let Some(length) = &attrs.length {
        let inner = ty::option_inner(field.ty).unwrap_or(field.ty);
        if let Some(name) = ty::number_or_bool(inner) {
            cx.error_spanned_by(
                &length.key,
                format_args!(
                    "`length` does not apply to {name}: it counts the characters of a String or the items of a Vec; for numbers use `range`"
                ),
            );
        }
        if length.empty {
            cx.error_spanned_by(
                &length.key,
                "`length` needs `min`, `max` or both: length(min = 1, max = 50)",
            );
        }
        if let (Some(min), Some(max)) = (&length.min, &length.max) {
            if min.value > max.value {
                cx.error_spanned_by(
                    &length.tokens,
                    format_args!(
                        "`length` min {} is greater than max {}: no value can pass",
                        min.value, max.value
                    ),
                );
            }
        }
    }
    if let Some(range) = &attrs.range {
        let inner = ty::option_inner(field.ty).unwrap_or(field.ty);
        if ty::is_string(inner) {
            cx.error_spanned_by(
                &range.key,
                "`range` does not apply to String: it compares numbers; for text use `length`",
            );
        }
        if range.empty {
            cx.error_spanned_by(
                &range.key,
                "`range` needs `min`, `max` or both: range(min = 0, max = 150)",
            );
        }
        if let (Some(min), Some(max)) = (&range.min, &range.max) {
            if let (Some(lo), Some(hi)) = (number(min), number(max)) {
                if lo > hi {
                    cx.error_spanned_by(
                        &range.tokens,
                        format_args!(
                            "`range` min {} is greater than max {}: no value can pass",
                            min.to_string().replace(' ', ""),
                            max.to_string().replace(' ', "")
                        ),
                    );
                }
            }
        }
    }
}

/// The value of a number literal, possibly negated: `-5`, `2.5`, `10_000i64`.
fn number(tokens: &proc_macro2::TokenStream) -> Option<f64> {
    let (negative, literal) = match syn::parse2::<syn::Expr>(tokens.clone()).ok()? {
        syn::Expr::Lit(lit) => (false, lit.lit),
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => match *expr {
            syn::Expr::Lit(lit) => (true, lit.lit),
            _ => return None,
        },
        _ => return None,
    };
    let value = match literal {
        syn::Lit::Int(int) => int.base10_parse::<i128>().ok()? as f64,
        syn::Lit::Float(float) => float.base10_parse::<f64>().ok()?,
        _ => return None,
    };
    Some(if negative { -value } else { value })
}

/// A name PostgreSQL keeps as written: not empty, at most 63 bytes, no NUL.
/// Checks a name PostgreSQL's way (at most 63 bytes, no NUL), and for a MySQL model also
/// MariaDB's: no trailing white space (errors 1103/1166) and nothing outside the Basic
/// Multilingual Plane (identifiers are utf8mb3, error 1300).
fn check_identifier(
    cx: &Ctxt,
    mysql: bool,
    what: &str,
    name: &str,
    tokens: proc_macro2::TokenStream,
    attribute: &str,
) {
    if name.is_empty() {
        cx.error_spanned_by(tokens, format_args!("{what} is empty"));
    } else if name.contains('\0') {
        cx.error_spanned_by(
            tokens,
            format_args!(
                "{what} contains a NUL character, which PostgreSQL identifiers cannot hold"
            ),
        );
    } else if name.len() > MAX_IDENTIFIER_BYTES {
        cx.error_spanned_by(
            tokens,
            format_args!(
                "{what} `{name}` is {} bytes long; PostgreSQL identifiers are at most {MAX_IDENTIFIER_BYTES} bytes (set a shorter one with {attribute})",
                name.len()
            ),
        );
    } else if mysql && name.ends_with([' ', '\t', '\n', '\x0b', '\x0c', '\r']) {
        cx.error_spanned_by(
            tokens,
            format_args!(
                "{what} {name:?} ends with white space, which MySQL and MariaDB refuse in identifiers (set another with {attribute})"
            ),
        );
    } else if let Some(c) = name.chars().find(|c| mysql && u32::from(*c) > 0xFFFF) {
        cx.error_spanned_by(
            tokens,
            format_args!(
                "{what} {name:?} holds {c:?} (U+{:X}), outside the Basic Multilingual Plane, which MySQL and MariaDB identifiers cannot hold (set another with {attribute})",
                u32::from(c)
            ),
        );
    }
}

fn check_unique_column(cx: &Ctxt, before: &[Field], field: &Field) {
    if let Some(first) = before
        .iter()
        .find(|f| f.is_column() && f.column == field.column)
    {
        cx.error_spanned_by(
            field.column_tokens(),
            format_args!(
                "duplicate column `{}`: field `{}` already maps to it",
                field.column, first.name
            ),
        );
    }
}

/// Each column gets an associated constant named after its field in upper case; two fields
/// must not make the same one, and none may take the name of `Model::TABLE`.
fn check_const_name(cx: &Ctxt, model: &Container, before: &[Field], field: &Field) {
    let name = field.const_name();
    if name == "TABLE" {
        cx.error_spanned_by(
            field.ident,
            format_args!(
                "field `{}` would make the column constant `{}::TABLE`, which is Model::TABLE; rename the field and keep the column with #[tenancy(rename = \"{}\")]",
                field.name, model.ident, field.column
            ),
        );
    } else if syn::parse_str::<syn::Ident>(&name).is_err() {
        cx.error_spanned_by(
            field.ident,
            format_args!(
                "field `{}` upper-cased, `{name}`, is not a valid constant name; rename the field",
                field.name
            ),
        );
    } else if let Some(first) = before
        .iter()
        .find(|f| f.is_column() && f.const_name() == name)
    {
        cx.error_spanned_by(
            field.ident,
            format_args!(
                "fields `{}` and `{}` both make the column constant `{}::{name}`; rename one of them",
                first.ident.to_token_stream(),
                field.ident.to_token_stream(),
                model.ident
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use crate::ast::Container;
    use crate::ctxt::Ctxt;

    /// Every error message for `input`, in the order reported.
    fn errors(input: syn::DeriveInput) -> Vec<String> {
        let cx = Ctxt::new();
        if let Some(model) = Container::from_ast(&cx, &input) {
            super::check(&cx, &model);
        }
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_valid_model_has_no_errors() {
        let input = parse_quote! {
            #[tenancy(table = "guards", rename_all = "camelCase")]
            struct Guard {
                #[tenancy(id, generated)]
                id: i64,
                #[tenancy(required, length(min = 1, max = 50))]
                #[tenancy(rename = "full_name")]
                name: String,
                #[tenancy(range(min = -1.5, max = 2))]
                score: Option<f64>,
                #[tenancy(custom = "crate::check")]
                code: String,
                #[tenancy(skip)]
                cache: Vec<String>,
            }
        };
        assert_eq!(errors(input), Vec::<String>::new());
    }

    #[test]
    fn every_mistake_is_reported() {
        let input = parse_quote! {
            #[tenancy(tabel = "guards", rename_all = "Camel")]
            struct Guard {
                #[tenancy(skip, id)]
                id: u32,
                #[tenancy(required, required, length(min = 5, max = 1))]
                age: i32,
                #[tenancy(rename = "age")]
                other: String,
            }
        };
        let errors = errors(input);
        let firsts: Vec<&str> = errors
            .iter()
            .map(|e| e.split([';', ':']).next().unwrap())
            .collect();
        assert_eq!(
            firsts,
            [
                "unknown tenancy attribute `tabel`",
                "unknown rename_all rule \"Camel\"",
                "duplicate tenancy attribute `required`",
                "`skip` cannot be combined with `id`",
                "`required` does not apply to i32, which always has a value",
                "`length` does not apply to i32",
                "`length` min 5 is greater than max 1",
                "duplicate column `age`",
            ],
            "{errors:#?}"
        );
    }

    #[test]
    fn names_are_checked_after_renaming() {
        let input = parse_quote! {
            #[tenancy(rename_all = "UPPERCASE")]
            struct Guard {
                #[tenancy(id)]
                id: i64,
                #[tenancy(rename = "NAME")]
                full_name: String,
                name: String,
                table: String,
            }
        };
        let errors = errors(input);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].starts_with("duplicate column `NAME`: field `full_name`"));
        assert!(
            errors[1].starts_with("field `table` would make the column constant `Guard::TABLE`")
        );
    }
}
