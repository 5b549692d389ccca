//! Parsing of `#[tenancy(...)]` attributes. Every attribute of an item is read, and every
//! mistake recorded, before anything is returned: one build reports them all.

use proc_macro2::{TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::{Attribute, LitInt, LitStr, Token};

use crate::case::{RenameRule, RENAME_RULES};
use crate::ctxt::Ctxt;

/// The attribute namespace: `#[tenancy(...)]`.
const NAMESPACE: &str = "tenancy";

const CONTAINER_KEYS: &[&str] = &["table", "rename_all", "backend", "shared", "tenant_column"];

/// The backends a model can name, as written in `backend = "..."`.
const BACKENDS: &[&str] = &["postgres", "mysql", "sqlite"];

/// The database a model lives in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    MySql,
    Sqlite,
}
const FIELD_KEYS: &[&str] = &[
    "id",
    "generated",
    "rename",
    "skip",
    "required",
    "length",
    "range",
    "custom",
];

/// A key as written, kept so errors can point at it.
#[derive(Clone)]
pub struct Key {
    pub path: syn::Path,
    /// Position among the keys of its item, across all its `#[tenancy]` attributes.
    pub order: usize,
}

impl ToTokens for Key {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.path.to_tokens(tokens);
    }
}

/// Attributes on the struct.
#[derive(Default)]
pub struct Container {
    pub table: Option<LitStr>,
    pub rename_all: Option<RenameRule>,
    pub backend: Option<Backend>,
    /// `shared = "public"`: the table is in that one schema for every tenant.
    pub shared: Option<(Key, LitStr)>,
    /// `tenant_column = "tenant_id"`: each row holds its tenant in that column.
    pub tenant_column: Option<(Key, LitStr)>,
}

/// Attributes on a field.
#[derive(Default)]
pub struct Field {
    pub id: Option<Key>,
    pub generated: Option<Key>,
    pub rename: Option<(Key, LitStr)>,
    pub skip: Option<Key>,
    pub required: Option<Key>,
    pub length: Option<Bounds<LengthBound>>,
    pub range: Option<Bounds<TokenStream>>,
    pub custom: Option<syn::ExprPath>,
}

/// `length(min = .., max = ..)` or `range(min = .., max = ..)`.
pub struct Bounds<T> {
    pub key: Key,
    /// The whole `key(...)`, for errors about the bounds together.
    pub tokens: TokenStream,
    pub min: Option<T>,
    pub max: Option<T>,
    /// Nothing was written between the parentheses.
    pub empty: bool,
}

/// A `length` bound: a count, and the literal it was written as.
pub struct LengthBound {
    pub value: usize,
    pub literal: LitInt,
}

/// Which keys an item already has, to report the second of any pair as a duplicate.
#[derive(Default)]
struct Seen {
    keys: Vec<String>,
}

impl Seen {
    /// Numbers the key, or records a duplicate error and returns `None`.
    fn first(&mut self, cx: &Ctxt, meta: &ParseNestedMeta, name: &str) -> Option<Key> {
        if self.keys.iter().any(|k| k == name) {
            cx.error_spanned_by(
                &meta.path,
                format_args!("duplicate tenancy attribute `{name}`"),
            );
            return None;
        }
        self.keys.push(name.to_owned());
        Some(Key {
            path: meta.path.clone(),
            order: self.keys.len() - 1,
        })
    }
}

impl Container {
    pub fn from_ast(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut container = Container::default();
        let mut seen = Seen::default();
        for_each_key(cx, attrs, |meta, name| {
            match name {
                "table" => {
                    let table = string_value(cx, meta, "table = \"guards\"")?;
                    if seen.first(cx, meta, name).is_some() {
                        container.table = table;
                    }
                }
                "backend" => {
                    let backend = string_value(cx, meta, "backend = \"mysql\"")?
                        .and_then(|literal| backend(cx, &literal));
                    if seen.first(cx, meta, name).is_some() {
                        container.backend = backend;
                    }
                }
                "shared" => {
                    let schema = string_value(cx, meta, "shared = \"public\"")?;
                    if let (Some(key), Some(schema)) = (seen.first(cx, meta, name), schema) {
                        container.shared = Some((key, schema));
                    }
                }
                "tenant_column" => {
                    let column = string_value(cx, meta, "tenant_column = \"tenant_id\"")?;
                    if let (Some(key), Some(column)) = (seen.first(cx, meta, name), column) {
                        container.tenant_column = Some((key, column));
                    }
                }
                "rename_all" => {
                    let rule = string_value(cx, meta, "rename_all = \"camelCase\"")?
                        .and_then(|literal| rename_rule(cx, &literal));
                    if seen.first(cx, meta, name).is_some() {
                        container.rename_all = rule;
                    }
                }
                _ => unknown_key(cx, meta, name, CONTAINER_KEYS, FIELD_KEYS, "a field")?,
            }
            Ok(())
        });
        container
    }
}

impl Field {
    pub fn from_ast(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut field = Field::default();
        let mut seen = Seen::default();
        for_each_key(cx, attrs, |meta, name| {
            match name {
                "id" | "generated" | "skip" | "required" => {
                    flag(cx, meta, name)?;
                    // A flag given a value still counts as set, so a typo like `id = true`
                    // does not also report a missing primary key.
                    let key = seen.first(cx, meta, name);
                    let slot = match name {
                        "id" => &mut field.id,
                        "generated" => &mut field.generated,
                        "skip" => &mut field.skip,
                        _ => &mut field.required,
                    };
                    if key.is_some() {
                        *slot = key;
                    }
                }
                "rename" => {
                    let column = string_value(cx, meta, "rename = \"column_name\"")?;
                    if let (Some(key), Some(column)) = (seen.first(cx, meta, name), column) {
                        field.rename = Some((key, column));
                    }
                }
                "length" => {
                    let length = bounds(cx, meta, name, "length(min = 1, max = 50)", |value| {
                        let literal = syn::parse2::<LitInt>(value.clone()).ok()?;
                        let count = literal.base10_parse::<usize>().ok()?;
                        let literal = LitInt::new(&count.to_string(), literal.span());
                        Some(LengthBound {
                            value: count,
                            literal,
                        })
                    })?;
                    if let Some(key) = seen.first(cx, meta, name) {
                        field.length = length.map(|b| Bounds { key, ..b });
                    }
                }
                "range" => {
                    let range = bounds(cx, meta, name, "range(min = 0, max = 150)", |value| {
                        match syn::parse2::<syn::Expr>(value.clone()).ok()? {
                            syn::Expr::Lit(syn::ExprLit {
                                lit: syn::Lit::Str(_) | syn::Lit::ByteStr(_) | syn::Lit::Bool(_),
                                ..
                            }) => None,
                            _ => Some(value.clone()),
                        }
                    })?;
                    if let Some(key) = seen.first(cx, meta, name) {
                        field.range = range.map(|b| Bounds { key, ..b });
                    }
                }
                "custom" => {
                    let example = "custom = \"path::to::function\"";
                    let path = string_value(cx, meta, example)?.and_then(|literal| {
                        literal
                            .parse::<syn::ExprPath>()
                            .map_err(|_| {
                                cx.error_spanned_by(
                                    &literal,
                                    format_args!(
                                        "expected the path of a validation function: {example}"
                                    ),
                                );
                            })
                            .ok()
                    });
                    if seen.first(cx, meta, name).is_some() {
                        field.custom = path;
                    }
                }
                _ => unknown_key(cx, meta, name, FIELD_KEYS, CONTAINER_KEYS, "the struct")?,
            }
            Ok(())
        });
        field
    }
}

/// Calls `parse` with every key of every `#[tenancy(...)]` in `attrs`, and records the syntax
/// errors that stop one attribute (the others are still read).
fn for_each_key(
    cx: &Ctxt,
    attrs: &[Attribute],
    mut parse: impl FnMut(&ParseNestedMeta, &str) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|a| a.path().is_ident(NAMESPACE)) {
        if let Err(error) = attr.parse_nested_meta(|meta| {
            let name = key_name(&meta.path);
            parse(&meta, &name)
        }) {
            cx.syn_error(error);
        }
    }
}

fn key_name(path: &syn::Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

fn unknown_key(
    cx: &Ctxt,
    meta: &ParseNestedMeta,
    name: &str,
    expected: &[&str],
    elsewhere: &[&str],
    elsewhere_place: &str,
) -> syn::Result<()> {
    rest(meta.input)?;
    let expected = expected.join(", ");
    if elsewhere.contains(&name) {
        cx.error_spanned_by(
            &meta.path,
            format_args!(
                "tenancy attribute `{name}` belongs on {elsewhere_place}; expected here one of: {expected}"
            ),
        );
    } else {
        cx.error_spanned_by(
            &meta.path,
            format_args!("unknown tenancy attribute `{name}`; expected one of: {expected}"),
        );
    }
    Ok(())
}

/// The tokens from here to the next `,` of the list (the value of a key).
fn rest(input: ParseStream) -> syn::Result<TokenStream> {
    let mut tokens = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        tokens.extend([input.parse::<TokenTree>()?]);
    }
    Ok(tokens)
}

/// A key without a value: `id`.
fn flag(cx: &Ctxt, meta: &ParseNestedMeta, name: &str) -> syn::Result<()> {
    let value = rest(meta.input)?;
    if !value.is_empty() {
        cx.error_spanned_by(
            value,
            format_args!("`{name}` takes no value: write #[tenancy({name})]"),
        );
    }
    Ok(())
}

/// `key = "..."`; `None` after recording why when the value is something else.
fn string_value(cx: &Ctxt, meta: &ParseNestedMeta, example: &str) -> syn::Result<Option<LitStr>> {
    let path = &meta.path;
    let name = key_name(path);
    if !meta.input.peek(Token![=]) {
        let value = rest(meta.input)?;
        cx.error_spanned_by(
            quote!(#path #value),
            format_args!("`{name}` needs a string value: {example}"),
        );
        return Ok(None);
    }
    let eq: Token![=] = meta.input.parse()?;
    let value = rest(meta.input)?;
    if value.is_empty() {
        cx.error_spanned_by(
            quote!(#path #eq),
            format_args!("`{name}` needs a string value: {example}"),
        );
        return Ok(None);
    }
    match syn::parse2::<LitStr>(value.clone()) {
        Ok(literal) => Ok(Some(literal)),
        Err(_) => {
            cx.error_spanned_by(value, format_args!("expected a string literal: {example}"));
            Ok(None)
        }
    }
}

fn backend(cx: &Ctxt, literal: &LitStr) -> Option<Backend> {
    match literal.value().as_str() {
        "postgres" => Some(Backend::Postgres),
        "mysql" => Some(Backend::MySql),
        "sqlite" => Some(Backend::Sqlite),
        other => {
            cx.error_spanned_by(
                literal,
                format_args!(
                    "unknown backend {other:?}; expected one of: {}",
                    BACKENDS.join(", ")
                ),
            );
            None
        }
    }
}

fn rename_rule(cx: &Ctxt, literal: &LitStr) -> Option<RenameRule> {
    let rule = RenameRule::from_name(&literal.value());
    if rule.is_none() {
        let expected: Vec<&str> = RENAME_RULES.iter().map(|&(name, _)| name).collect();
        cx.error_spanned_by(
            literal,
            format_args!(
                "unknown rename_all rule {:?}; expected one of: {}",
                literal.value(),
                expected.join(", ")
            ),
        );
    }
    rule
}

/// `key(min = .., max = ..)`. `value` turns a bound's tokens into a value, or `None` if they are
/// not a valid bound. The returned key is a placeholder the caller replaces.
fn bounds<T>(
    cx: &Ctxt,
    meta: &ParseNestedMeta,
    name: &str,
    example: &str,
    mut value: impl FnMut(&TokenStream) -> Option<T>,
) -> syn::Result<Option<Bounds<T>>> {
    let path = &meta.path;
    if !meta.input.peek(syn::token::Paren) {
        let value = rest(meta.input)?;
        cx.error_spanned_by(
            quote!(#path #value),
            format_args!("`{name}` takes bounds: {example}"),
        );
        return Ok(None);
    }
    let list: TokenTree = meta.input.fork().parse()?;
    let mut bounds = Bounds {
        key: Key {
            path: path.clone(),
            order: 0,
        },
        tokens: quote!(#path #list),
        min: None,
        max: None,
        empty: true,
    };
    if matches!(&list, TokenTree::Group(group) if group.stream().is_empty()) {
        // `length()`: nothing to parse; the check reports the missing bounds.
        meta.input.parse::<TokenTree>()?;
        return Ok(Some(bounds));
    }
    let mut seen: Vec<String> = Vec::new();
    meta.parse_nested_meta(|inner| {
        bounds.empty = false;
        let bound = key_name(&inner.path);
        if bound != "min" && bound != "max" {
            rest(inner.input)?;
            cx.error_spanned_by(
                &inner.path,
                format_args!("unknown `{name}` bound `{bound}`; expected `min` or `max`"),
            );
            return Ok(());
        }
        let tokens = if inner.input.peek(Token![=]) {
            inner.input.parse::<Token![=]>()?;
            rest(inner.input)?
        } else {
            rest(inner.input)?;
            TokenStream::new()
        };
        let parsed = if tokens.is_empty() {
            cx.error_spanned_by(
                &inner.path,
                format_args!("`{bound}` needs a value: {example}"),
            );
            None
        } else {
            let parsed = value(&tokens);
            if parsed.is_none() {
                let expected = if name == "length" {
                    "a non-negative integer literal"
                } else {
                    "a number"
                };
                cx.error_spanned_by(
                    &tokens,
                    format_args!("expected {expected} as the `{name}` bound: {example}"),
                );
            }
            parsed
        };
        if seen.contains(&bound) {
            cx.error_spanned_by(
                &inner.path,
                format_args!("duplicate tenancy attribute `{name}({bound})`"),
            );
        } else {
            seen.push(bound.clone());
            if bound == "min" {
                bounds.min = parsed;
            } else {
                bounds.max = parsed;
            }
        }
        Ok(())
    })?;
    Ok(Some(bounds))
}
