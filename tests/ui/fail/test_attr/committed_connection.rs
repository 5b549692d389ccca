// A connection is the rollback mode's argument: without `rollback` the error points at the
// type and says so.

#[tenancy::test]
async fn committed_connection(conn: &mut sqlx::PgConnection) {
    let _ = conn;
}

fn main() {}
