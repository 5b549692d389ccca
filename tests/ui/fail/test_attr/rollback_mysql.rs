// MySQL commits DDL implicitly: `rollback` with `backend = "mysql"` is an error at `rollback`;
// an unknown backend is an error at its value.

#[tenancy::test(backend = "mysql", rollback)]
async fn rollback_mysql() {}

#[tenancy::test(backend = "sqlite")]
async fn unknown_backend() {}

fn main() {}
