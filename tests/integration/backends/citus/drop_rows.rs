//! The drop of a row-level tenant of a container distributed by the tenant column: its rows
//! deleted a batch at a time from its shard only, read back on the workers directly.

use std::sync::{Arc, Mutex};

use tenancy::{DropOptions, Dropped, TenantModel};

use super::rows::{migrations, shard_rows};
use super::{name, pool, Lifecycle, RowGuard};

#[tokio::test]
async fn a_distributed_containers_tenant_is_dropped_in_batches_from_its_shard_only() {
    let pool = pool().await;
    let l = Lifecycle::new(&pool, migrations(&[])).await;
    let db = &l.tenants;
    let container = db.create(name("rows")).await.unwrap();
    db.distribute_rows(&container).await.unwrap();
    let a = db.create_in(name("a"), &container).await.unwrap();
    let b = db.create_in(name("b"), &container).await.unwrap();
    for (tenant, guards) in [(&a, 7), (&b, 2)] {
        for i in 0..guards {
            let guard = RowGuard::new(&format!("g{i}"), "Guard");
            guard.insert(db, tenant).await.unwrap();
        }
    }
    assert_eq!(shard_rows(&pool, &container, &a).await.1.len(), 7);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let options = DropOptions::default()
        .rows_per_batch(3)
        .on_progress(move |p| {
            keep.lock()
                .unwrap()
                .push((p.table.map(str::to_owned), p.rows));
        });
    let dropped = db.drop_with(a.as_str(), options).await.unwrap();
    assert_eq!(dropped, Dropped::Rows { deleted: 7 });
    let guards = Some("guards".to_owned());
    assert_eq!(
        *seen.lock().unwrap(),
        [(guards.clone(), 3), (guards.clone(), 3), (guards, 1)]
    );
    assert!(shard_rows(&pool, &container, &a).await.1.is_empty());
    assert_eq!(shard_rows(&pool, &container, &b).await.1, ["g0", "g1"]);
    assert!(!db.exists(a.as_str()).await.unwrap());
}
