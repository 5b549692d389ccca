//! Integration tests against a real PostgreSQL: `DATABASE_URL` when set, otherwise a private
//! throwaway cluster (see `tenancy-testdb`). One binary, one module per concern; every test makes
//! its own schemas, so tests run in parallel.

mod support;

mod across;
mod context;
mod crud;
mod hardening;
mod isolation;
mod lifecycle;
mod lifecycle_support;
mod migrations;
mod mysql;
mod names;
mod pgbouncer;
mod query;
mod types;
mod validation;
