// When the derive reports a mistake, code using the model reports nothing more: the derive still
// provides the constants and trait impls it can.
use tenancy::{Changeset, Tenant, TenantModel, Validate};

#[derive(Debug, TenantModel)]
struct Guard {
    #[tenancy(id, generated)]
    id: i64,
    #[tenancy(required, lenght(max = 50))]
    name: String,
    position: String,
}

#[allow(dead_code)]
async fn demo(pool: &sqlx::PgPool, tenant: &Tenant) -> Result<(), tenancy::Error> {
    let guard = Guard {
        id: 0,
        name: "Abu".into(),
        position: "Guard".into(),
    };
    guard.validate()?;
    let mut stored = Guard::insert(guard, pool, tenant).await?;
    let _ = Guard::query(tenant)
        .filter(Guard::NAME.eq("Abu"))
        .fetch_all(pool)
        .await?;
    stored
        .apply(
            pool,
            tenant,
            Changeset::new().set(Guard::POSITION, "Captain"),
        )
        .await?;
    let _ = Guard::find(pool, tenant, stored.id).await?;
    let _ = Guard::TABLE.name;
    Ok(())
}

fn main() {}
