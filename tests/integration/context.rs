//! The current tenant beyond the request: spawned tasks, job payloads, and code that requires a
//! tenant running without one.

use serde::{Deserialize, Serialize};
use tenancy::{context, Error, Record, Tenant, TenantModel};

use crate::support::{pool, raw_guards, Guard, Tenants};

/// A background job as a queue would carry it.
#[derive(Serialize, Deserialize)]
struct Job {
    tenant: Tenant,
    name: String,
}

/// Code deep in an application that takes its tenant from the context.
async fn hire(pool: &sqlx::PgPool, name: &str) -> Result<Record<Guard>, Error> {
    let tenant = context::require()?;
    Guard::new(name, "Guard").insert(pool, &tenant).await
}

#[tokio::test]
async fn a_spawned_task_and_a_job_payload_keep_their_tenant() {
    let pool = pool().await;
    let t = Tenants::new(&pool, 2).await;
    let (a, b) = (t.get(0).clone(), t.get(1).clone());

    // A task spawned while serving `a` hires into `a`, even while the caller moves on to `b`.
    let p = pool.clone();
    let task = context::with_tenant_sync(a.clone(), || {
        context::spawn(async move { hire(&p, "Abu").await })
    });
    let hired = context::with_tenant(b.clone(), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hired.tenant(), &a);

    // A job enqueued for `b` (serialized, sent, deserialized) runs in `b`.
    let payload = serde_json::to_string(&Job {
        tenant: b.clone(),
        name: "Zed".into(),
    })
    .unwrap();
    assert_eq!(
        payload,
        format!(r#"{{"tenant":"{}","name":"Zed"}}"#, b.as_str())
    );
    let job: Job = serde_json::from_str(&payload).unwrap();
    context::with_tenant(job.tenant, hire(&pool, &job.name))
        .await
        .unwrap();

    assert_eq!(
        raw_guards(&pool, &a).await,
        [("Abu".into(), "Guard".into())]
    );
    assert_eq!(
        raw_guards(&pool, &b).await,
        [("Zed".into(), "Guard".into())]
    );
}

#[tokio::test]
async fn a_payload_naming_an_invalid_tenant_is_refused_with_the_rule() {
    let err = serde_json::from_str::<Job>(r#"{"tenant":"Acme; DROP","name":"x"}"#)
        .err()
        .expect("an invalid tenant name must not deserialize");
    assert!(
        err.to_string()
            .contains("the upper-case letter 'A' at byte 0"),
        "the error names the rule: {err}"
    );
}

#[tokio::test]
async fn code_requiring_a_tenant_fails_without_one() {
    let pool = pool().await;
    let t = Tenants::new(&pool, 1).await;
    assert!(matches!(
        hire(&pool, "Abu").await,
        Err(Error::NoCurrentTenant)
    ));
    // `tokio::spawn` starts a task without the caller's tenant; only `context::spawn` keeps it.
    let p = pool.clone();
    let plain = context::with_tenant(t.get(0).clone(), async move {
        tokio::spawn(async move { hire(&p, "Abu").await })
            .await
            .unwrap()
    })
    .await;
    assert!(matches!(plain, Err(Error::NoCurrentTenant)));
    assert!(raw_guards(&pool, t.get(0)).await.is_empty());
    let message = Error::NoCurrentTenant.to_string();
    assert!(message.contains("context::spawn"), "{message}");
}
