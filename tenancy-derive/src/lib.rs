//! `#[derive(TenantModel)]` for the [`tenancy`](https://docs.rs/tenancy) crate, which re-exports
//! it; depend on `tenancy`, not on this crate.
//!
//! The derive runs as serde_derive does: `attr` parses `#[tenancy(...)]`, `ast` builds the
//! model, `check` applies the rules spanning several attributes, all recording into one
//! `ctxt::Ctxt` so every mistake is reported in one build, and `expand` generates code from the
//! model only. On errors it still emits what it safely can of the impls (as thiserror does), so
//! the user's code using the model adds no errors of its own.

mod ast;
mod attr;
mod case;
mod check;
mod ctxt;
mod expand;
mod test;
mod ty;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Makes a struct a tenant model: one row of a table that exists in every tenant's schema.
///
/// Implements `tenancy::Model` (table and columns, reading a row, binding a column, the
/// primary key), which gives it the operations of `tenancy::TenantModel`, and `tenancy::Validate` (the `required`, `length`, `range` and `custom` rules),
/// and adds one `tenancy::Column` constant per column, named after its field in upper case
/// (`Guard::NAME`), for typed queries and changesets.
///
/// The struct needs named fields and exactly one `#[tenancy(id)]`. The table is named after the
/// struct in snake_case plus `s` (`UserProfile` -> `user_profiles`) unless
/// `#[tenancy(table = "...")]` says otherwise; columns are named after their fields.
///
/// See the `tenancy::derive` module of the `tenancy` crate for the attribute reference and
/// examples.
#[proc_macro_derive(TenantModel, attributes(tenancy))]
pub fn derive_tenant_model(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}

/// Runs an async test with a fresh tenant, migrated with the crate's tenant migrations, gone
/// when the test ends, also when it panics.
///
/// On an `async fn` returning `()` or `Result<(), E: Debug>`; options, in any order:
/// - `migrations = "migrations/tenant"`: the folder, relative to the crate's
///   `CARGO_MANIFEST_DIR` (that one by default);
/// - `rollback`: everything (the tenant's creation, the fixtures, the test) in one transaction
///   on one connection, rolled back at the end (PostgreSQL); the arguments are
///   `tenancy::Tenant` and one `&mut sqlx::PgConnection` or `&mut sqlx::Transaction<'_, Postgres>`.
///   Without it the tenant is committed and dropped afterwards; the arguments are
///   `tenancy::Tenant`, `sqlx::PgPool` and `tenancy::Tenants`;
/// - `fixtures("guards", "db/seed.sql")`: SQL run in the tenant after its migrations, a name
///   meaning `<migrations>/../fixtures/<name>.sql`;
/// - `backend = "mysql"`: MySQL / MariaDB at `MYSQL_URL` (committed mode; arguments
///   `sqlx::MySqlPool`, `tenancy::Tenants<sqlx::MySql>`, `tenancy::Tenant`); `backend =
///   "sqlite"`: a temporary folder per test (committed mode);
/// - `row_level` (committed mode, any backend; not with `rollback`): the `tenancy::Tenant` is a
///   row-level tenant (`Tenants::create_in`, `is_row_level()`) in a container made and migrated
///   for the test alone; the fixtures run in the container, and the rows they write with the
///   tenant column `tenant_id` set to `'test_tenant'` (`tenancy::testing::FIXTURE_TENANT`)
///   become the tenant's. The tenant, then its container, are dropped after the test.
///
/// The test database is `DATABASE_URL`. See the `tenancy::testing` module of the `tenancy`
/// crate (feature `testing`).
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    test::expand(args.into(), item.into()).into()
}
