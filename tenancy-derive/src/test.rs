//! `#[tenancy::test]`: an async test run with a fresh, migrated tenant (the runtime side is
//! `tenancy::testing`, feature `testing`).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr};

use crate::ctxt::Ctxt;

/// Where the tenant migrations are, relative to the crate's `CARGO_MANIFEST_DIR`, by default.
const DEFAULT_MIGRATIONS: &str = "migrations/tenant";

/// The attribute's options.
#[derive(Default)]
struct Options {
    migrations: Option<LitStr>,
}

impl Options {
    fn parse(cx: &Ctxt, args: TokenStream) -> Options {
        let mut options = Options::default();
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
            } else {
                Err(meta.error(
                    "unknown `#[tenancy::test]` option: the option is `migrations = \"...\"`",
                ))
            }
        });
        if let Err(e) = syn::parse::Parser::parse2(parser, args) {
            cx.syn_error(e);
        }
        options
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
    check(&cx, &item);
    match cx.check() {
        Ok(()) => generate(&options, &item),
        Err(errors) => {
            let errors = errors.into_compile_error();
            quote!(#errors #[allow(dead_code)] #item)
        }
    }
}

fn check(cx: &Ctxt, item: &ItemFn) {
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
    for input in &sig.inputs {
        if let FnArg::Receiver(receiver) = input {
            cx.error_spanned_by(receiver, "a `#[tenancy::test]` function cannot take `self`");
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
    let migrations = match &options.migrations {
        Some(path) => path.clone(),
        None => LitStr::new(DEFAULT_MIGRATIONS, proc_macro2::Span::call_site()),
    };
    // Each argument from the test's tenant, by its type; an error at the type when it is not
    // one a test can ask for.
    let args = sig.inputs.iter().map(|input| match input {
        FnArg::Typed(arg) => {
            let ty = &arg.ty;
            quote_spanned!(ty.span()=>
                <#ty as ::tenancy::testing::TestArg>::from_test(__tenancy_test)
            )
        }
        FnArg::Receiver(_) => unreachable!("checked"),
    });
    // The same check outside the `#[test]` function, which exists only in test builds: so a
    // build that is not a test's (`cargo check`, trybuild) reports a wrong argument too.
    let checks = sig.inputs.iter().filter_map(|input| match input {
        FnArg::Typed(arg) => {
            let ty = &arg.ty;
            Some(quote_spanned!(ty.span()=>
                let _ = <#ty as ::tenancy::testing::TestArg>::from_test;
            ))
        }
        FnArg::Receiver(_) => None,
    });
    quote! {
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
            ::tenancy::testing::__run(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                ::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), "/", #migrations),
                |__tenancy_test: &::tenancy::testing::TestTenant| #name(#(#args),*),
            )
        }
    }
}
