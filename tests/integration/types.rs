//! Every supported column type round-trips through insert, find and a filter.

use sqlx::types::time::OffsetDateTime;
use sqlx::types::{JsonValue, Uuid};
use tenancy::TenantModel;

use crate::support::{pool, Tenants};

/// Enum types are looked up by name on the connection's `search_path`, so they live in a shared
/// schema (`public`), not in each tenant.
#[derive(sqlx::Type, Debug, Clone, Copy, PartialEq)]
#[sqlx(type_name = "tenancy_it_mood", rename_all = "lowercase")]
pub enum Mood {
    Calm,
    Alert,
}

#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "samples", rename_all = "camelCase")]
pub struct Sample {
    #[tenancy(id)]
    pub sample_id: Uuid,
    pub small: i16,
    pub medium: i32,
    pub large: i64,
    pub ratio: f32,
    pub precise: f64,
    pub active: bool,
    pub label: String,
    pub note: Option<String>,
    pub blob: Vec<u8>,
    pub seen_at: OffsetDateTime,
    pub payload: JsonValue,
    pub mood: Mood,
    #[tenancy(rename = "legacy_code")]
    pub code: Option<i64>,
    pub grade: i8,
    pub scores: Vec<i32>,
    pub tags: Vec<String>,
    pub maybe_mood: Option<Mood>,
    pub maybe_blob: Option<Vec<u8>>,
    #[tenancy(skip)]
    pub cached: Option<String>,
}

const SAMPLES_DDL: &str = r#"CREATE TABLE samples (
    "sampleId" uuid PRIMARY KEY,
    small smallint NOT NULL,
    medium integer NOT NULL,
    large bigint NOT NULL,
    ratio real NOT NULL,
    precise double precision NOT NULL,
    active boolean NOT NULL,
    label text NOT NULL,
    note text,
    blob bytea NOT NULL,
    "seenAt" timestamptz NOT NULL,
    payload jsonb NOT NULL,
    mood tenancy_it_mood NOT NULL,
    legacy_code bigint,
    grade "char" NOT NULL,
    scores integer[] NOT NULL,
    tags text[] NOT NULL,
    "maybeMood" tenancy_it_mood,
    "maybeBlob" bytea
)"#;

const MOOD_DDL: &str = "DO $$ BEGIN
    CREATE TYPE public.tenancy_it_mood AS ENUM ('calm', 'alert');
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$";

#[tokio::test]
async fn every_type_round_trips() {
    let pool = pool().await;
    sqlx::raw_sql(MOOD_DDL).execute(&pool).await.unwrap();
    let t = Tenants::with(&pool, 1, &[SAMPLES_DDL]).await;
    let a = t.get(0);
    let seen_at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let sample = Sample {
        sample_id: Uuid::from_u128(0x1234),
        small: -3,
        medium: 70_000,
        large: 1 << 40,
        ratio: 0.5,
        precise: 1.0 / 3.0,
        active: true,
        label: "ünïcode ✓".into(),
        note: None,
        blob: vec![0, 1, 255],
        seen_at,
        payload: serde_json_value(),
        mood: Mood::Alert,
        code: Some(42),
        grade: b'A' as i8,
        scores: vec![3, -1, 70_000],
        tags: vec!["night".into(), "gate \"2\"".into(), String::new()],
        maybe_mood: Some(Mood::Calm),
        maybe_blob: Some(vec![9, 0]),
        cached: Some("not stored".into()),
    };
    // The optional columns empty, the arrays empty.
    let empty = Sample {
        sample_id: Uuid::from_u128(0x5678),
        note: Some("second".into()),
        code: None,
        grade: -1,
        scores: Vec::new(),
        tags: Vec::new(),
        maybe_mood: None,
        maybe_blob: None,
        ..sample.clone()
    };
    for sample in [sample.clone(), empty.clone()] {
        let stored = sample.clone().insert(&pool, a).await.unwrap();
        let expected = Sample {
            cached: None,
            ..sample
        };
        assert_eq!(stored.value(), &expected);
        let found = Sample::find(&pool, a, expected.sample_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.value(), &expected);
    }
    let by_mood = Sample::query(a)
        .filter(Sample::MOOD.eq(Mood::Alert))
        .filter(Sample::BLOB.eq(vec![0u8, 1, 255]))
        .filter(Sample::SEEN_AT.eq(seen_at))
        .filter(Sample::CODE.eq(42))
        .filter(Sample::GRADE.eq(b'A' as i8))
        .filter(Sample::SCORES.eq(vec![3, -1, 70_000]))
        .filter(Sample::TAGS.eq(sample.tags.clone()))
        .filter(Sample::MAYBE_MOOD.eq(Mood::Calm))
        .filter(Sample::MAYBE_BLOB.eq(vec![9u8, 0]))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(by_mood.len(), 1);
    assert_eq!(by_mood[0].sample_id, sample.sample_id);
    let nulls = Sample::query(a)
        .filter(Sample::MAYBE_MOOD.is_null())
        .filter(Sample::MAYBE_BLOB.is_null())
        .filter(Sample::SCORES.eq(Vec::<i32>::new()))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(nulls.len(), 1);
    assert_eq!(nulls[0].sample_id, empty.sample_id);
    assert_eq!(Sample::SEEN_AT.name(), "seenAt");
    assert_eq!(Sample::CODE.name(), "legacy_code");
}

fn serde_json_value() -> JsonValue {
    r#"{"shift": "night", "gates": [1, 2]}"#.parse().unwrap()
}

/// The `chrono` feature's types (`cargo test --features chrono`).
#[cfg(feature = "chrono")]
mod chrono_types {
    use sqlx::types::chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
    use tenancy::TenantModel;

    use crate::support::{pool, Tenants};

    #[derive(TenantModel, Debug, Clone, PartialEq)]
    #[tenancy(table = "shifts")]
    pub struct Shift {
        #[tenancy(id)]
        pub id: i32,
        pub starts_at: DateTime<Utc>,
        pub local: NaiveDateTime,
        pub day: NaiveDate,
        pub at: NaiveTime,
        pub ends_at: Option<DateTime<Utc>>,
    }

    const SHIFTS_DDL: &str = "CREATE TABLE shifts (
        id integer PRIMARY KEY,
        starts_at timestamptz NOT NULL,
        local timestamp NOT NULL,
        day date NOT NULL,
        at time NOT NULL,
        ends_at timestamptz
    )";

    #[tokio::test]
    async fn chrono_types_round_trip() {
        let pool = pool().await;
        let t = Tenants::with(&pool, 1, &[SHIFTS_DDL]).await;
        let a = t.get(0);
        let starts_at = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        let shift = Shift {
            id: 1,
            starts_at,
            local: starts_at.naive_utc(),
            day: NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
            at: NaiveTime::from_hms_micro_opt(23, 59, 58, 999_999).unwrap(),
            ends_at: None,
        };
        let stored = shift.clone().insert(&pool, a).await.unwrap();
        assert_eq!(stored.value(), &shift);
        let found = Shift::find(&pool, a, 1).await.unwrap().unwrap();
        assert_eq!(found.value(), &shift);
        let n = Shift::query(a)
            .filter(Shift::STARTS_AT.eq(starts_at))
            .filter(Shift::DAY.eq(shift.day))
            .filter(Shift::ENDS_AT.is_null())
            .count(&pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}

/// An enum type in `public` (as the README advises) is found by a tenant migration only through
/// `with_shared_schemas(["public"])`: migrations see the tenant's schema and `pg_catalog` alone.
#[tokio::test]
async fn a_migration_finds_a_public_enum_only_through_shared_schemas() {
    use crate::lifecycle_support::{migration, Lifecycle};
    let pool = pool().await;
    sqlx::raw_sql(MOOD_DDL).execute(&pool).await.unwrap();
    let uses_it = vec![migration(
        1,
        sqlx::migrate::MigrationType::Simple,
        "CREATE TABLE moods (id bigint PRIMARY KEY, mood tenancy_it_mood NOT NULL)",
    )];
    let l = Lifecycle::new(&pool, uses_it.clone()).await;
    let name = tenancy_testdb::unique_name("enum");
    let err = l.tenants.create(&name).await.unwrap_err();
    let text = tenancy::testing::causes(&err);
    assert!(
        matches!(err, tenancy::Error::Migration { version: 1, .. })
            && text.contains("type \"tenancy_it_mood\" does not exist"),
        "{text}"
    );
    let shared = l
        .with_migrations(&pool, uses_it)
        .with_shared_schemas(["public"]);
    let tenant = shared.create(&name).await.unwrap();
    let sql = format!(
        "INSERT INTO {}.moods VALUES (1, 'calm') RETURNING mood",
        tenant.quoted()
    );
    let mood: Mood = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mood, Mood::Calm);
}
