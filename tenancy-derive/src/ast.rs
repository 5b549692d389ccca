//! The model the derive works from: the struct, its fields and their parsed attributes, each
//! keeping the syn node it came from so errors can point at it.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{Attribute, Data, DeriveInput, Fields, Generics, Ident, Type, Visibility};

use crate::attr;
use crate::case;
use crate::ctxt::Ctxt;

pub struct Container<'a> {
    pub ident: &'a Ident,
    pub vis: &'a Visibility,
    pub generics: &'a Generics,
    pub attrs: attr::Container,
    /// The table's name: `#[tenancy(table)]` or the default from the struct's name.
    pub table: String,
    /// Every field, in declaration order, skipped ones included.
    pub fields: Vec<Field<'a>>,
}

pub struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    pub attrs: attr::Field,
    /// The field's doc comments, repeated on its column constant.
    pub docs: Vec<&'a Attribute>,
    /// The Rust name without `r#`, as validation errors report it.
    pub name: String,
    /// The column's name: `rename`, else the field's name under `rename_all`.
    pub column: String,
}

impl<'a> Container<'a> {
    /// Whether the model's backend has unsigned integer columns (MySQL does).
    pub fn has_unsigned(&self) -> bool {
        self.is_mysql()
    }

    /// Whether the model lives on MySQL / MariaDB (whose identifiers are narrower).
    pub fn is_mysql(&self) -> bool {
        self.attrs.backend == Some(attr::Backend::MySql)
    }

    /// The model of a struct with named fields, or `None` (with the error recorded) for any
    /// other item.
    pub fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::Container::from_ast(cx, &input.attrs);
        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => &fields.named,
                Fields::Unnamed(fields) => {
                    cx.error_spanned_by(
                        fields,
                        "tuple structs are not supported: #[derive(TenantModel)] needs named fields, one per column",
                    );
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &input.ident,
                        "unit structs are not supported: #[derive(TenantModel)] needs named fields, one per column",
                    );
                    return None;
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    "enums are not supported: #[derive(TenantModel)] needs a struct with named fields, one per column (to store an enum in one column, derive sqlx::Type for it)",
                );
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "unions are not supported: #[derive(TenantModel)] needs a struct with named fields, one per column",
                );
                return None;
            }
        };
        let table = match &attrs.table {
            Some(table) => table.value(),
            None => case::default_table_name(&input.ident.unraw().to_string()),
        };
        let rename_all = attrs.rename_all;
        let fields = fields
            .iter()
            .map(|field| {
                let ident = field.ident.as_ref().expect("named field");
                let attrs = attr::Field::from_ast(cx, &field.attrs);
                let name = ident.unraw().to_string();
                let column = match (&attrs.rename, rename_all) {
                    (Some((_, column)), _) => column.value(),
                    (None, Some(rule)) => rule.apply_to_field(&name),
                    (None, None) => name.clone(),
                };
                Field {
                    ident,
                    ty: &field.ty,
                    docs: field
                        .attrs
                        .iter()
                        .filter(|a| a.path().is_ident("doc"))
                        .collect(),
                    attrs,
                    name,
                    column,
                }
            })
            .collect::<Vec<_>>();
        Some(Container {
            ident: &input.ident,
            vis: &input.vis,
            generics: &input.generics,
            attrs,
            table,
            fields,
        })
    }

    /// The fields that are columns (not skipped), in the order of `TABLE.columns`.
    pub fn columns(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|f| f.is_column())
    }

    /// What an error about the table's name points at: the `table` literal, else the ident.
    pub fn table_tokens(&self) -> TokenStream {
        match &self.attrs.table {
            Some(table) => table.to_token_stream(),
            None => self.ident.to_token_stream(),
        }
    }
}

impl Field<'_> {
    pub fn is_column(&self) -> bool {
        self.attrs.skip.is_none()
    }

    pub fn is_primary_key(&self) -> bool {
        self.attrs.id.is_some()
    }

    pub fn is_generated(&self) -> bool {
        self.attrs.generated.is_some()
    }

    /// The name of the field's column constant.
    pub fn const_name(&self) -> String {
        case::const_name(&self.name)
    }

    /// What an error about the column's name points at: the `rename` literal, else the ident.
    pub fn column_tokens(&self) -> TokenStream {
        match &self.attrs.rename {
            Some((_, column)) => column.to_token_stream(),
            None => self.ident.to_token_stream(),
        }
    }
}
