// MySQL commits DDL implicitly, and a SQLite tenant is a file of its own: `rollback` with
// `backend = "mysql"` or `backend = "sqlite"` is an error at `rollback`; an unknown backend is
// an error at its value.

#[tenancy::test(backend = "mysql", rollback)]
async fn rollback_mysql() {}

#[tenancy::test(backend = "sqlite", rollback)]
async fn rollback_sqlite() {}

#[tenancy::test(backend = "oracle")]
async fn unknown_backend() {}

fn main() {}
