// A rollback test has one connection: a second `&mut` argument is an error at its type.

#[tenancy::test(rollback)]
async fn rollback_two_connections(
    conn: &mut sqlx::PgConnection,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
) {
    let _ = (conn, tx);
}

fn main() {}
