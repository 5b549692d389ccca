//! Work across tenants: a closure for every tenant (`Tenants::for_each`) and one query over
//! many tenants (`query_across`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tenancy::{context, EachOptions, Error, Tenant, TenantModel};
use tokio::task::JoinSet;

use crate::lifecycle_support::{v1, Lifecycle};
use crate::support::{pool_with, raw_guards, Guard, Tenants};

async fn drop_guards(pool: &sqlx::PgPool, tenant: &Tenant) {
    let sql = format!("DROP TABLE {}.guards", tenant.quoted());
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_fan_out_over_200_tenants_reports_exactly_the_3_broken_ones() {
    let pool = pool_with(8).await;
    let lc = Lifecycle::new(&pool, v1()).await;
    let mut creating = JoinSet::new();
    for _ in 0..200 {
        let tenants = lc.tenants.clone();
        creating.spawn(async move {
            tenants
                .create(tenancy_testdb::unique_name("fan"))
                .await
                .unwrap()
        });
        while creating.len() >= 8 {
            creating.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(created) = creating.join_next().await {
        created.unwrap();
    }
    let all = lc.tenants.list().await.unwrap();
    assert_eq!(all.len(), 200);
    let broken: BTreeSet<Tenant> = [&all[7], &all[100], &all[199]]
        .into_iter()
        .cloned()
        .collect();
    for tenant in &broken {
        drop_guards(&pool, tenant).await;
    }

    let progressed = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&progressed);
    let p = pool.clone();
    let report = lc
        .tenants
        .for_each(
            EachOptions::default().concurrency(8).on_progress(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
            }),
            move |tenant| {
                let p = p.clone();
                async move {
                    // The closure's tenant is also the current one.
                    assert_eq!(context::current().as_ref(), Some(&tenant));
                    Guard::query(&tenant).count(&p).await
                }
            },
        )
        .await
        .unwrap();

    assert_eq!(report.tenants.len(), 200);
    assert_eq!(progressed.load(Ordering::Relaxed), 200);
    let failed: BTreeSet<Tenant> = report.failed().map(|(t, _)| t.clone()).collect();
    assert_eq!(failed, broken);
    for (tenant, error) in report.failed() {
        assert!(
            matches!(error, Error::UnknownTenant { tenant: t, .. } if t == tenant),
            "{error}"
        );
    }
    assert_eq!(report.succeeded().count(), 197);
    assert!(report.succeeded().all(|(_, n)| *n == 0));

    // A chosen set, in the order given.
    let chosen = vec![all[3].clone(), all[1].clone()];
    let report = lc
        .tenants
        .for_each(
            EachOptions::default().only(chosen.clone()),
            |tenant| async move { Ok::<_, Error>(tenant) },
        )
        .await
        .unwrap();
    let ran: Vec<Tenant> = report.succeeded().map(|(_, t)| t.clone()).collect();
    assert_eq!(ran, chosen);
}

#[tokio::test]
async fn records_of_a_query_across_tenants_write_back_only_into_their_own_tenant() {
    let pool = pool_with(4).await;
    let t = Tenants::new(&pool, 3).await;
    for (i, tenant) in t.tenants.iter().enumerate() {
        // Same ids in every tenant: a write that went to the wrong tenant would hit a row.
        Guard::new("Abu", &format!("Guard {i}"))
            .insert(&pool, tenant)
            .await
            .unwrap();
        Guard::new("Zed", "Cook")
            .insert(&pool, tenant)
            .await
            .unwrap();
    }

    let abus = Guard::query_across(&t.tenants)
        .filter(Guard::NAME.eq("Abu"))
        .tenants_per_statement(2)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(abus.len(), 3);
    for (i, (abu, tenant)) in abus.iter().zip(&t.tenants).enumerate() {
        assert_eq!(abu.tenant(), tenant);
        assert_eq!((abu.id, abu.position.clone()), (1, format!("Guard {i}")));
    }

    let mut second = abus.into_iter().nth(1).unwrap();
    second.position = "Captain".into();
    let refused = second.update(&pool, t.get(0)).await.unwrap_err();
    assert!(matches!(refused, Error::TenantMismatch { .. }), "{refused}");
    let own = second.tenant().clone();
    second.update(&pool, &own).await.unwrap();

    let positions: Vec<String> = {
        let mut out = Vec::new();
        for tenant in &t.tenants {
            out.push(raw_guards(&pool, tenant).await[0].1.clone());
        }
        out
    };
    assert_eq!(positions, ["Guard 0", "Captain", "Guard 2"]);
}

#[tokio::test]
async fn a_query_across_tenants_filters_orders_and_counts_per_tenant() {
    let pool = pool_with(4).await;
    let t = Tenants::new(&pool, 3).await;
    for tenant in &t.tenants[..2] {
        for name in ["Abu", "Bea", "Cai"] {
            Guard::new(name, "Guard")
                .insert(&pool, tenant)
                .await
                .unwrap();
        }
    }
    // The last of each tenant by name; the third tenant has none.
    let lasts = Guard::query_across(&t.tenants)
        .order_by(Guard::NAME.desc())
        .limit(1)
        .fetch_all(&pool)
        .await
        .unwrap();
    let got: Vec<(Tenant, String)> = lasts
        .iter()
        .map(|r| (r.tenant().clone(), r.name.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (t.get(0).clone(), "Cai".to_owned()),
            (t.get(1).clone(), "Cai".to_owned())
        ]
    );
    for per_statement in [1, 2, 100] {
        let query = || Guard::query_across(&t.tenants).tenants_per_statement(per_statement);
        assert_eq!(query().count(&pool).await.unwrap(), 6);
        let counts = query()
            .filter(Guard::NAME.is_in(["Abu", "Cai"]))
            .count_by_tenant(&pool)
            .await
            .unwrap();
        let expected: Vec<(Tenant, i64)> = vec![
            (t.get(0).clone(), 2),
            (t.get(1).clone(), 2),
            (t.get(2).clone(), 0),
        ];
        assert_eq!(counts, expected, "{per_statement} tenants per statement");
    }

    // A tenant without the table is named: alone in its statement, and last of three in one.
    drop_guards(&pool, t.get(2)).await;
    for per_statement in [2, 3] {
        let err = Guard::query_across(&t.tenants)
            .tenants_per_statement(per_statement)
            .count(&pool)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::UnknownTenant { tenant, .. } if tenant == t.get(2)),
            "{per_statement} tenants per statement: {err}"
        );
    }
}
