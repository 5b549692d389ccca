//! `#[tenancy::test]`: an async test run with a fresh, migrated tenant (the runtime side is
//! `tenancy::testing`, feature `testing`).
//!
//! ```text
//! #[tenancy::test]                                   committed, PostgreSQL, migrations/tenant
//! #[tenancy::test(rollback)]                         one transaction, rolled back
//! #[tenancy::test(migrations = "db/tenant", fixtures("guards", "db/seed/more.sql"))]
//! #[tenancy::test(backend = "mysql")]                committed, MySQL / MariaDB (MYSQL_URL)
//! #[tenancy::test(backend = "sqlite")]               committed, SQLite, a temporary folder
//! #[tenancy::test(row_level)]                        committed, a row-level tenant in a
//!                                                    container of its own (any backend)
//! ```
//!
//! `row_level`: the test's tenant is a row-level tenant (`Tenants::create_in`) in a fresh,
//! migrated container made for the test; the fixtures run in the container, and the rows
//! they write with `tenant_id = 'test_tenant'` (`tenancy::testing::FIXTURE_TENANT`) become the
//! tenant's. Both are dropped after the test, the tenant first. Not with `rollback`.
//!
//! The migrations folder and the fixture files are looked up when the attribute expands
//! (relative to `CARGO_MANIFEST_DIR`): a missing one is an error at its string. Fixtures are
//! embedded with `include_str!`, so editing one rebuilds the test.

use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitStr, Token, Type};

use crate::ctxt::Ctxt;

/// Where the tenant migrations are, relative to the crate's `CARGO_MANIFEST_DIR`, by default.
const DEFAULT_MIGRATIONS: &str = "migrations/tenant";

const OPTIONS: &str = "the options are `migrations = \"...\"`, `rollback`, `row_level`, \
    `fixtures(\"...\", ...)` and `backend = \"mysql\"` or `backend = \"sqlite\"`";

/// The attribute's options.
#[derive(Default)]
struct Options {
    migrations: Option<LitStr>,
    rollback: Option<Ident>,
    /// `row_level`: the test's tenant is a row-level tenant in a container of its own.
    row_level: Option<Ident>,
    fixtures: Vec<LitStr>,
    /// `backend = "mysql"` or `backend = "sqlite"`: the string and sqlx's type's name.
    backend: Option<(LitStr, &'static str)>,
}

impl Options {
    fn parse(cx: &Ctxt, args: TokenStream) -> Options {
        let mut options = Options::default();
        let mut backend_seen = false;
        let mut fixtures_seen = false;
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("migrations") {
                let value: LitStr = meta.value()?.parse()?;
                if options.migrations.is_some() {
                    return Err(meta.error("duplicate `migrations` option"));
                }
                if value.value().is_empty() {
                    return Err(syn::Error::new(
                        value.span(),
                        "`migrations` names a folder, relative to CARGO_MANIFEST_DIR",
                    ));
                }
                options.migrations = Some(value);
                Ok(())
            } else if meta.path.is_ident("rollback") {
                if options.rollback.is_some() {
                    return Err(meta.error("duplicate `rollback` option"));
                }
                options.rollback = meta.path.get_ident().cloned();
                Ok(())
            } else if meta.path.is_ident("row_level") {
                if options.row_level.is_some() {
                    return Err(meta.error("duplicate `row_level` option"));
                }
                options.row_level = meta.path.get_ident().cloned();
                Ok(())
            } else if meta.path.is_ident("fixtures") {
                if fixtures_seen {
                    return Err(meta.error("duplicate `fixtures` option: list them all in one"));
                }
                fixtures_seen = true;
                let content;
                syn::parenthesized!(content in meta.input);
                let list: Punctuated<LitStr, Token![,]> =
                    content.parse_terminated(|input| input.parse(), Token![,])?;
                for fixture in &list {
                    if fixture.value().trim().is_empty() {
                        return Err(syn::Error::new(
                            fixture.span(),
                            "a fixture is a name (`<migrations>/../fixtures/<name>.sql`) or a \
                             path ending in `.sql`, relative to CARGO_MANIFEST_DIR",
                        ));
                    }
                }
                options.fixtures.extend(list);
                Ok(())
            } else if meta.path.is_ident("backend") {
                let value: LitStr = meta.value()?.parse()?;
                if backend_seen {
                    return Err(meta.error("duplicate `backend` option"));
                }
                backend_seen = true;
                match value.value().as_str() {
                    "postgres" => {}
                    "mysql" => options.backend = Some((value, "MySql")),
                    "sqlite" => options.backend = Some((value, "Sqlite")),
                    _ => {
                        return Err(syn::Error::new(
                            value.span(),
                            "unknown backend: write `backend = \"postgres\"` (the default, \
                             also for Citus), `backend = \"mysql\"` or `backend = \"sqlite\"`",
                        ))
                    }
                }
                Ok(())
            } else {
                Err(meta.error(format_args!("unknown `#[tenancy::test]` option: {OPTIONS}")))
            }
        });
        if let Err(e) = syn::parse::Parser::parse2(parser, args) {
            cx.syn_error(e);
        }
        match (&options.rollback, &options.backend) {
            (Some(rollback), Some((_, "MySql"))) => cx.error_spanned_by(
                rollback,
                "`rollback` is PostgreSQL's: MySQL commits every `CREATE` implicitly, so a \
                 tenant cannot be made inside a transaction that is rolled back; remove \
                 `rollback` (committed mode) or `backend = \"mysql\"`",
            ),
            (Some(rollback), Some(_)) => cx.error_spanned_by(
                rollback,
                "`rollback` is PostgreSQL's: a SQLite tenant is a file of its own, made outside \
                 any one connection's transaction; remove `rollback` (committed mode, in a \
                 temporary folder per test) or `backend = \"sqlite\"`",
            ),
            _ => {}
        }
        if let (Some(row_level), Some(_)) = (&options.row_level, &options.rollback) {
            cx.error_spanned_by(
                row_level,
                "`row_level` is committed mode's: a rollback test makes its tenant in one \
                 batch on one connection, with no `Tenants` handle to register a row-level \
                 tenant in a container through; remove `row_level` (a test tenant of its \
                 own, rolled back) or `rollback` (committed, dropped after the test)",
            );
        }
        options
    }

    /// The migrations folder, relative to `CARGO_MANIFEST_DIR`.
    fn migrations(&self) -> LitStr {
        match &self.migrations {
            Some(path) => path.clone(),
            None => LitStr::new(DEFAULT_MIGRATIONS, Span::call_site()),
        }
    }

    /// Each fixture's path relative to `CARGO_MANIFEST_DIR`: `name` is
    /// `<migrations>/../fixtures/<name>.sql`, a value ending in `.sql` is a path.
    fn fixture_paths(&self) -> Vec<(LitStr, String)> {
        let migrations = self.migrations().value();
        let parent = Path::new(&migrations)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        self.fixtures
            .iter()
            .map(|fixture| {
                let value = fixture.value();
                let path = if value.ends_with(".sql") {
                    PathBuf::from(&value)
                } else {
                    parent.join("fixtures").join(format!("{value}.sql"))
                };
                (fixture.clone(), path.to_string_lossy().into_owned())
            })
            .collect()
    }

    /// Errors at the strings naming a migrations folder or a fixture file that does not exist
    /// (when `CARGO_MANIFEST_DIR` is known).
    fn check_paths(&self, cx: &Ctxt) {
        let Some(root) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
            return;
        };
        let migrations = self.migrations();
        let folder = root.join(migrations.value());
        if !folder.is_dir() {
            let message = format!(
                "no migrations folder `{}` in the crate (`migrations = \"...\"` is relative \
                 to CARGO_MANIFEST_DIR; `{DEFAULT_MIGRATIONS}` by default)",
                migrations.value()
            );
            cx.syn_error(syn::Error::new(migrations.span(), message));
        }
        for (fixture, path) in self.fixture_paths() {
            let file = root.join(&path);
            if !file.is_file() {
                let message = format!(
                    "no fixture file `{path}` in the crate (`fixtures(\"name\")` is \
                     `<migrations>/../fixtures/name.sql`; a value ending in `.sql` is a path \
                     relative to CARGO_MANIFEST_DIR)"
                );
                cx.syn_error(syn::Error::new(fixture.span(), message));
            }
        }
    }
}

/// The `#[test]` function running `item` with its tenant, or the errors found and `item`
/// unchanged (so its body adds no errors of its own).
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let options = Options::parse(&cx, args);
    let item: ItemFn = match syn::parse2(item) {
        Ok(item) => item,
        Err(e) => {
            cx.syn_error(e);
            return cx.check().unwrap_err().into_compile_error();
        }
    };
    options.check_paths(&cx);
    check(&cx, &options, &item);
    match cx.check() {
        Ok(()) => generate(&options, &item),
        Err(errors) => {
            let errors = errors.into_compile_error();
            quote!(#errors #[allow(dead_code)] #item)
        }
    }
}

/// Whether `ty` is written `&mut …` (a borrow of the rollback test's one connection).
fn is_mut_ref(ty: &Type) -> bool {
    matches!(ty, Type::Reference(r) if r.mutability.is_some())
}

fn check(cx: &Ctxt, options: &Options, item: &ItemFn) {
    let sig = &item.sig;
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            "a `#[tenancy::test]` function must be `async`: write `async fn`",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &sig.generics,
            "a `#[tenancy::test]` function cannot be generic",
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "a `#[tenancy::test]` function cannot be variadic");
    }
    let mut borrows = 0;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                cx.error_spanned_by(receiver, "a `#[tenancy::test]` function cannot take `self`")
            }
            FnArg::Typed(arg) if options.rollback.is_some() && is_mut_ref(&arg.ty) => {
                borrows += 1;
                if borrows > 1 {
                    cx.error_spanned_by(
                        &arg.ty,
                        "a `#[tenancy::test(rollback)]` function has one connection: take \
                         either `&mut PgConnection` or `&mut Transaction`, once",
                    );
                }
            }
            FnArg::Typed(_) => {}
        }
    }
}

fn generate(options: &Options, item: &ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item;
    let name = &sig.ident;
    let migrations = options.migrations();
    let fixtures = options.fixture_paths().into_iter().map(|(fixture, path)| {
        quote_spanned!(fixture.span()=>
            ::core::include_str!(::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), "/", #path))
        )
    });
    let types: Vec<&Type> = sig
        .inputs
        .iter()
        .map(|input| match input {
            FnArg::Typed(arg) => &*arg.ty,
            FnArg::Receiver(_) => unreachable!("checked"),
        })
        .collect();
    let test_name = quote!(::core::concat!(
        ::core::module_path!(),
        "::",
        ::core::stringify!(#name)
    ));
    let migrations = quote!(::core::concat!(
        ::core::env!("CARGO_MANIFEST_DIR"),
        "/",
        #migrations
    ));
    let (checks, run) = if options.rollback.is_some() {
        // Each argument by its type, the `&mut` ones (the connection) last, so that the
        // tenant is read before the connection is borrowed for the whole test.
        let vars: Vec<Ident> = (0..types.len())
            .map(|i| format_ident!("__tenancy_arg_{}", i))
            .collect();
        let mut order: Vec<usize> = (0..types.len()).collect();
        order.sort_by_key(|&i| is_mut_ref(types[i]));
        let lets = order.iter().map(|&i| {
            let (ty, var) = (types[i], &vars[i]);
            quote_spanned!(ty.span()=>
                let #var = <#ty as ::tenancy::postgres::RollbackArg<'_>>::from_rollback(
                    &mut *__tenancy_test
                );
            )
        });
        let checks = types.iter().map(|ty| {
            quote_spanned!(ty.span()=>
                let _ = <#ty as ::tenancy::postgres::RollbackArg<'_>>::from_rollback;
            )
        });
        let run = quote! {
            ::tenancy::postgres::__run_rollback(
                #test_name,
                #migrations,
                &[#(#fixtures),*],
                |__tenancy_test: &mut ::tenancy::postgres::RollbackTenant| {
                    #(#lets)*
                    ::std::boxed::Box::pin(#name(#(#vars),*))
                },
            )
        };
        (checks.collect::<Vec<_>>(), run)
    } else {
        let backend = match &options.backend {
            Some((value, name)) => {
                let name = Ident::new(name, value.span());
                quote_spanned!(value.span()=> ::tenancy::__private::sqlx::#name)
            }
            None => quote!(::tenancy::__private::sqlx::Postgres),
        };
        // Each argument from the test's tenant, by its type; an error at the type when it is
        // not one a test can ask for.
        let args = types.iter().map(|ty| {
            quote_spanned!(ty.span()=>
                <#ty as ::tenancy::testing::TestArg<#backend>>::from_test(__tenancy_test)
            )
        });
        let checks = types.iter().map(|ty| {
            quote_spanned!(ty.span()=>
                let _ = <#ty as ::tenancy::testing::TestArg<#backend>>::from_test;
            )
        });
        let row_level = options.row_level.is_some();
        let run = quote! {
            ::tenancy::testing::__run::<#backend, _, _>(
                #test_name,
                #migrations,
                &[#(#fixtures),*],
                #row_level,
                |__tenancy_test: &::tenancy::testing::TestTenant<#backend>| #name(#(#args),*),
            )
        };
        (checks.collect::<Vec<_>>(), run)
    };
    quote! {
        // The argument checks outside the `#[test]` function, which exists only in test
        // builds: so a build that is not a test's (`cargo check`, trybuild) reports a wrong
        // argument too.
        #[cfg(not(test))]
        const _: () = {
            #[allow(dead_code)]
            fn arguments() {
                #(#checks)*
            }
        };

        #(#attrs)*
        #[::core::prelude::v1::test]
        #vis fn #name() {
            #sig #block
            #run
        }
    }
}
