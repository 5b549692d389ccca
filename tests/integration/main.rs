//! Integration tests against a real PostgreSQL: `DATABASE_URL` when set, otherwise a private
//! throwaway cluster (see `tenancy-testdb`), and MySQL/MariaDB (`MYSQL_URL`, by default
//! `mysql://root@127.0.0.1:3306/test`). One binary, one module per concern; every test makes its
//! own schemas, so tests run in parallel. The behaviours every backend shares run once per backend
//! from one source (`backends`); the other modules are PostgreSQL's own.

mod support;

mod backends;

mod across;
mod context;
mod crud;
mod faults;
mod hardening;
mod isolation;
mod lifecycle;
mod lifecycle_support;
mod migrations;
mod names;
mod pgbouncer;
mod testing;
mod types;
