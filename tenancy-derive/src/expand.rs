//! Code generation, from the checked model only.

use std::collections::HashSet;

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::DeriveInput;

use crate::ast::{Container, Field};
use crate::attr;
use crate::check;
use crate::ctxt::Ctxt;
use crate::ty;

/// `#[derive(TenantModel)]`: the impls, or every error found plus stand-in impls so the user's
/// code using the model does not add errors of its own.
pub fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let model = Container::from_ast(&cx, input);
    if let Some(model) = &model {
        check::check(&cx, model);
    }
    match (cx.check(), model) {
        (Ok(()), Some(model)) => expand(&model),
        (Ok(()), None) => unreachable!("no model without an error"),
        (Err(errors), model) => {
            let errors = errors.into_compile_error();
            let stand_in = model.as_ref().map(stand_in);
            quote!(#errors #stand_in)
        }
    }
}

/// The model's backend type: the one it names, else the facade's default.
fn backend(model: &Container) -> TokenStream {
    match model.attrs.backend {
        Some(attr::Backend::Postgres) => quote!(::tenancy::__private::sqlx::Postgres),
        Some(attr::Backend::MySql) => quote!(::tenancy::__private::sqlx::MySql),
        Some(attr::Backend::Sqlite) => quote!(::tenancy::__private::sqlx::Sqlite),
        None => quote!(::tenancy::DefaultBackend),
    }
}

fn expand(model: &Container) -> TokenStream {
    let codecs = column_codecs(model, model.columns().enumerate(), true);
    let model_impl = tenant_model_impl(model);
    let scope_impl = scope_impl(model);
    let validate_impl = validate_impl(model);
    let constants = column_constants(model, model.columns(), true);
    quote! {
        const _: () = {
            #codecs
            #model_impl
            #scope_impl
            #validate_impl
            #constants
        };
    }
}

/// After an error: whatever of the impls is certain not to add errors of its own, with bodies
/// that never run (the build fails anyway). Nothing for generic structs.
fn stand_in(model: &Container) -> TokenStream {
    let generics = model.generics;
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        return TokenStream::new();
    }
    let ident = model.ident;
    let typed = |f: &&Field| ty::unsupported(f.ty, model.has_unsigned()).is_none();
    let codecs = column_codecs(
        model,
        model.columns().enumerate().filter(|(_, f)| typed(f)),
        false,
    );
    let backend = backend(model);

    let keys: Vec<&Field> = model.fields.iter().filter(|f| f.is_primary_key()).collect();
    let model_impl = match keys.as_slice() {
        [key] if typed(key) => {
            let id_ty = key.ty;
            let table = &model.table;
            quote! {
                #[automatically_derived]
                impl ::tenancy::Model for #ident {
                    type Backend = #backend;
                    type Id = #id_ty;
                    const TABLE: ::tenancy::TableDef = ::tenancy::TableDef { name: #table, columns: &[], schema: ::core::option::Option::None, tenant_column: ::core::option::Option::None };
                    fn from_row(
                        _: &<#backend as ::tenancy::__private::sqlx::Database>::Row,
                    ) -> ::core::result::Result<Self, ::tenancy::__private::sqlx::Error> {
                        ::core::unreachable!()
                    }
                    fn bind_column(
                        &self,
                        _: usize,
                        _: &mut <#backend as ::tenancy::__private::sqlx::Database>::Arguments,
                    ) -> ::core::result::Result<(), ::tenancy::__private::sqlx::error::BoxDynError> {
                        ::core::unreachable!()
                    }
                    fn id(&self) -> Self::Id {
                        ::core::unreachable!()
                    }
                }
            }
        }
        _ => TokenStream::new(),
    };
    let scope_impl = if model_impl.is_empty() {
        TokenStream::new()
    } else {
        scope_impl(model)
    };

    let mut names = HashSet::new();
    let constants = column_constants(
        model,
        model.columns().filter(typed).filter(|f| {
            let name = f.const_name();
            name != "TABLE" && syn::parse_str::<syn::Ident>(&name).is_ok() && names.insert(name)
        }),
        !model_impl.is_empty(),
    );
    quote! {
        const _: () = {
            #codecs
            #model_impl
            #scope_impl
            #[automatically_derived]
            impl ::tenancy::Validate for #ident {
                fn validate(&self) -> ::core::result::Result<(), ::tenancy::ValidationErrors> {
                    ::core::unreachable!()
                }
            }
            #constants
        };
    }
}

/// A span at the user's tokens that resolves names like the rest of the generated code, so
/// errors in the code point at what the user wrote.
fn at(tokens: &impl Spanned) -> Span {
    Span::call_site().located_at(tokens.span())
}

/// The name of the codec constant of the column at `index`.
fn codec_name(index: usize) -> syn::Ident {
    format_ident!("__TENANCY_COLUMN_{}", index)
}

/// One codec constant per column (named, or `_` when nothing uses them).
fn column_codecs<'a, 'b: 'a>(
    model: &Container,
    columns: impl Iterator<Item = (usize, &'a Field<'b>)>,
    named: bool,
) -> TokenStream {
    let backend = backend(model);
    columns
        .map(|(index, field)| {
            let ty = field.ty;
            let name = if named {
                codec_name(index).into_token_stream()
            } else {
                quote!(_)
            };
            let codec = quote_spanned!(at(ty)=> ::tenancy::__private::codec::<#backend, #ty>());
            quote!(const #name: ::tenancy::__private::Codec<#backend, #ty> = #codec;)
        })
        .collect()
}

/// `PerTenant` for a tenant model, `SharedModel` for `#[tenancy(shared = "...")]`.
fn scope_impl(model: &Container) -> TokenStream {
    let ident = model.ident;
    match &model.attrs.shared {
        Some((_, schema)) => quote! {
            #[automatically_derived]
            impl ::tenancy::SharedModel for #ident {
                const SCHEMA: &'static str = #schema;
            }
        },
        None => quote! {
            #[automatically_derived]
            impl ::tenancy::PerTenant for #ident {}
        },
    }
}

fn tenant_model_impl(model: &Container) -> TokenStream {
    let ident = model.ident;
    let table = &model.table;
    let columns: Vec<&Field> = model.columns().collect();
    let key = columns
        .iter()
        .find(|f| f.is_primary_key())
        .expect("checked: one primary key");
    let (key_ty, key_member) = (key.ty, key.ident);
    let backend = backend(model);
    let schema = match &model.attrs.shared {
        Some((_, schema)) => quote!(::core::option::Option::Some(#schema)),
        None => quote!(::core::option::Option::None),
    };

    let tenant_column = match &model.attrs.tenant_column {
        Some((_, column)) => quote!(::core::option::Option::Some(#column)),
        None => quote!(::core::option::Option::None),
    };

    let column_defs = columns.iter().map(|field| {
        let name = &field.column;
        let primary_key = field.is_primary_key().then(|| quote!(.primary_key()));
        let generated = field.is_generated().then(|| quote!(.generated()));
        quote!(::tenancy::ColumnDef::new(#name) #primary_key #generated)
    });
    let mut index = 0..;
    let reads = model.fields.iter().map(|field| {
        let (member, ty) = (field.ident, field.ty);
        if field.is_column() {
            let (codec, column) = (codec_name(index.next().unwrap()), &field.column);
            quote!(#member: (#codec.decode)(__row, #column)?)
        } else {
            quote_spanned!(at(ty)=> #member: <#ty as ::core::default::Default>::default())
        }
    });
    let binds = columns.iter().enumerate().map(|(index, field)| {
        let member = field.ident;
        let codec = codec_name(index);
        let index = Literal::usize_unsuffixed(index);
        quote!(#index => (#codec.bind)(&self.#member, __args))
    });

    quote! {
        #[automatically_derived]
        impl ::tenancy::Model for #ident {
            type Backend = #backend;
            type Id = #key_ty;

            const TABLE: ::tenancy::TableDef = ::tenancy::TableDef {
                name: #table,
                columns: &[#(#column_defs),*],
                schema: #schema,
                tenant_column: #tenant_column,
            };

            fn from_row(
                __row: &<#backend as ::tenancy::__private::sqlx::Database>::Row,
            ) -> ::core::result::Result<Self, ::tenancy::__private::sqlx::Error> {
                ::core::result::Result::Ok(Self {
                    #(#reads,)*
                })
            }

            fn bind_column(
                &self,
                __index: usize,
                __args: &mut <#backend as ::tenancy::__private::sqlx::Database>::Arguments,
            ) -> ::core::result::Result<(), ::tenancy::__private::sqlx::error::BoxDynError> {
                match __index {
                    #(#binds,)*
                    _ => ::core::result::Result::Err(::core::convert::Into::into(
                        ::std::format!("{} has no column {}", #table, __index),
                    )),
                }
            }

            fn id(&self) -> Self::Id {
                ::core::clone::Clone::clone(&self.#key_member)
            }
        }
    }
}

fn validate_impl(model: &Container) -> TokenStream {
    let ident = model.ident;
    let mut checks = Vec::new();
    for field in &model.fields {
        let (name, member, attrs) = (&field.name, field.ident, &field.attrs);
        // Each call, arguments included, is spanned at its key, so a rule that does not fit the
        // field's type is reported at the rule.
        let check = |span: Span, rule: &str, arguments: TokenStream| {
            let rule = format_ident!("{}", rule, span = span);
            quote_spanned! {span=>
                ::tenancy::__private::rules::#rule(&mut __errors, #name, #arguments);
            }
        };
        if let Some(key) = &attrs.required {
            let span = at(key);
            checks.push(check(
                span,
                "required",
                quote_spanned!(span=> &self.#member),
            ));
        }
        if let Some(length) = &attrs.length {
            let span = at(&length.key);
            let min = bound(span, length.min.as_ref().map(|b| &b.literal));
            let max = bound(span, length.max.as_ref().map(|b| &b.literal));
            let arguments = quote_spanned!(span=> &self.#member, #min, #max);
            checks.push(check(span, "length", arguments));
        }
        if let Some(range) = &attrs.range {
            let span = at(&range.key);
            let value = match ty::option_inner(field.ty) {
                Some(_) => quote_spanned!(span=> self.#member.as_ref()),
                None => quote_spanned!(span=> ::core::option::Option::Some(&self.#member)),
            };
            let min = bound(span, range.min.as_ref());
            let max = bound(span, range.max.as_ref());
            let arguments = quote_spanned!(span=> #value, #min, #max);
            checks.push(check(span, "range", arguments));
        }
        if let Some(path) = &attrs.custom {
            let span = at(path);
            checks.push(check(
                span,
                "custom",
                quote_spanned!(span=> #path(&self.#member)),
            ));
        }
    }
    let body = if checks.is_empty() {
        quote!(::core::result::Result::Ok(()))
    } else {
        quote! {
            let mut __errors = ::tenancy::ValidationErrors::new();
            #(#checks)*
            __errors.into_result()
        }
    };
    quote! {
        #[automatically_derived]
        impl ::tenancy::Validate for #ident {
            fn validate(&self) -> ::core::result::Result<(), ::tenancy::ValidationErrors> {
                #body
            }
        }
    }
}

/// `Some(value)` for a bound given, else `None`; the value keeps its own span.
fn bound(span: Span, value: Option<&impl ToTokens>) -> TokenStream {
    match value {
        Some(value) => quote_spanned!(span=> ::core::option::Option::Some(#value)),
        None => quote_spanned!(span=> ::core::option::Option::None),
    }
}

/// One `Column` constant per column field, with the struct's visibility. `index` is the field's
/// position among all columns, whichever of them are given.
fn column_constants<'a, 'b: 'a>(
    model: &Container,
    fields: impl Iterator<Item = &'a Field<'b>>,
    with_table: bool,
) -> TokenStream {
    let (ident, vis) = (model.ident, model.vis);
    // `Guard::TABLE` without importing `tenancy::Model`.
    let table = with_table.then(|| {
        let summary = format!("The table and columns of [`{ident}`] (`tenancy::Model::TABLE`).");
        quote! {
            #[doc = #summary]
            #vis const TABLE: ::tenancy::TableDef = <#ident as ::tenancy::Model>::TABLE;
        }
    });
    let wanted: Vec<&Field> = fields.collect();
    let constants = model
        .columns()
        .enumerate()
        .filter(|(_, f)| wanted.iter().any(|w| std::ptr::eq(*w, *f)))
        .map(|(index, field)| {
            let (member, ty, column) = (field.ident, field.ty, &field.column);
            let name = format_ident!("{}", field.const_name(), span = field.ident.span());
            let summary = format!("Column `{column:?}` of [`{ident}`].");
            let docs = &field.docs;
            let separator = (!docs.is_empty()).then(|| quote!(#[doc = ""]));
            quote! {
                #[doc = #summary]
                #separator
                #(#docs)*
                #vis const #name: ::tenancy::Column<#ident, #ty> = ::tenancy::Column::new(
                    #index,
                    #column,
                    |__model: &mut #ident| &mut __model.#member,
                    |__model: &#ident| &__model.#member,
                );
            }
        });
    quote! {
        #[automatically_derived]
        #[allow(dead_code, non_upper_case_globals)]
        impl #ident {
            #table
            #(#constants)*
        }
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    #[test]
    fn generates_items_for_a_valid_model() {
        let input = parse_quote! {
            pub struct UserProfile {
                #[tenancy(id, generated)]
                id: i64,
                /// Shown to others.
                display_name: String,
                #[tenancy(skip)]
                cache: Vec<u8>,
            }
        };
        let output = super::derive(&input);
        let text = output.to_string();
        assert!(text.starts_with("const _ : () ="), "{text}");
        assert!(text.contains("name : \"user_profiles\""), "{text}");
        assert!(text.contains("ColumnDef :: new (\"id\") . primary_key () . generated ()"));
        assert!(text.contains("pub const DISPLAY_NAME"));
        assert!(!text.contains("const CACHE"));
        assert!(!text.contains("compile_error"));
    }

    #[test]
    fn reports_errors_with_stand_ins() {
        let input = parse_quote! {
            struct Guard {
                #[tenancy(id, bogus)]
                id: i64,
                name: String,
            }
        };
        let text = super::derive(&input).to_string();
        assert_eq!(text.matches("compile_error").count(), 1, "{text}");
        assert!(text.contains("impl :: tenancy :: Model for Guard"));
        assert!(text.contains("const NAME"));
    }
}
