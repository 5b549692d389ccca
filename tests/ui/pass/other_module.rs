//! A public model used from another module: its constants are visible there, and the derived
//! API works with the rest of `tenancy` (queries, changesets, inserts).

mod model {
    use tenancy::TenantModel;

    /// A palace guard.
    #[derive(Debug, Clone, TenantModel)]
    pub struct Guard {
        #[tenancy(id, generated)]
        pub id: i64,
        /// What the guard is called.
        #[tenancy(required, length(max = 50))]
        pub name: String,
        pub position: String,
        #[tenancy(skip)]
        pub notes: Vec<String>,
    }

    #[derive(TenantModel)]
    #[tenancy(rename_all = "SCREAMING-KEBAB-CASE")]
    pub(crate) struct UserProfile {
        #[tenancy(id)]
        pub(crate) user_id: i64,
        pub(crate) display_name: Option<String>,
    }
}

use model::{Guard, UserProfile};
use tenancy::{Changeset, Column, Tenant, TenantModel};

#[allow(dead_code)]
async fn demo(pool: &sqlx::PgPool, tenant: &Tenant) -> Result<(), tenancy::Error> {
    let guard = Guard {
        id: 0,
        name: "Abu".into(),
        position: "Guard".into(),
        notes: Vec::new(),
    };
    let mut stored = Guard::insert(guard, pool, tenant).await?;
    let found = Guard::query(tenant)
        .filter(Guard::NAME.eq("Abu"))
        .order_by(Guard::ID.desc())
        .fetch_all(pool)
        .await?;
    assert!(found.len() <= 1);
    stored
        .apply(
            pool,
            tenant,
            Changeset::new().set(Guard::POSITION, "Captain"),
        )
        .await?;
    let _ = Guard::find(pool, tenant, stored.id).await?;
    Ok(())
}

fn main() {
    let name: Column<Guard, String> = Guard::NAME;
    assert_eq!((name.index(), name.name()), (1, "name"));
    assert_eq!(Guard::TABLE.name, "guards");
    assert_eq!(Guard::TABLE.columns.len(), 3);
    assert_eq!(UserProfile::TABLE.name, "user_profiles");
    assert_eq!(UserProfile::USER_ID.name(), "USER-ID");
    assert_eq!(UserProfile::DISPLAY_NAME.name(), "DISPLAY-NAME");

    let tenant = Tenant::new("tenant_1").unwrap();
    let sql = Guard::query(&tenant).filter(Guard::NAME.eq("Abu")).to_sql();
    assert!(sql.contains(r#""tenant_1"."guards""#), "{sql}");
    assert!(sql.contains(r#""name""#), "{sql}");
    let changes = Changeset::new().set(Guard::POSITION, "Captain");
    assert_eq!(changes.len(), 1);
}
