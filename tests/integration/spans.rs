//! The statement spans (feature `tracing`): a subscriber that wants `DEBUG` gets one
//! `tenancy.statement` span per statement, with its tenant, table and SQL; one that does not
//! gets none. (That the library then does not build or enter the span at all is a cost, seen
//! by counting instructions, not here.)

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tenancy::{Tenant, TenantModel};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The name and fields of every span opened while it is the default subscriber.
#[derive(Clone, Default)]
struct Opened(Arc<Mutex<Vec<(String, String)>>>);

impl<S: tracing::Subscriber> Layer<S> for Opened {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                let _ = write!(self.0, "{}={:?};", field.name(), value);
            }
        }
        let mut fields = Fields(String::new());
        attrs.record(&mut fields);
        let name = attrs.metadata().name().to_owned();
        self.0.lock().unwrap().push((name, fields.0));
    }
}

impl Opened {
    fn statements(&self) -> Vec<String> {
        let opened = self.0.lock().unwrap();
        opened
            .iter()
            .filter(|(name, _)| name == "tenancy.statement")
            .map(|(_, fields)| fields.clone())
            .collect()
    }
}

#[derive(TenantModel, Debug, Clone, PartialEq)]
#[tenancy(table = "guards", backend = "sqlite")]
struct SpanGuard {
    #[tenancy(id, generated)]
    id: i64,
    name: String,
    position: String,
}

/// Finds guard 1 of `tenant` with `level` as the subscriber's most verbose level, and returns
/// the statement spans it opened.
async fn find_under(
    level: LevelFilter,
    pool: &tenancy::TenantPool<sqlx::Sqlite>,
    tenant: &Tenant,
) -> Vec<String> {
    let opened = Opened::default();
    let subscriber = tracing_subscriber::registry().with(opened.clone().with_filter(level));
    let _default = tracing::subscriber::set_default(subscriber);
    let found = SpanGuard::find(pool, tenant, 1_i64).await.unwrap().unwrap();
    assert_eq!(found.name, "Abu");
    opened.statements()
}

#[tenancy::test(
    backend = "sqlite",
    migrations = "examples/migrations/sqlite/tenant",
    fixtures("guards")
)]
async fn a_statement_span_is_there_for_debug_and_not_for_info_on_sqlite(
    tenant: Tenant,
    db: tenancy::TenantPool<sqlx::Sqlite>,
) {
    let heard = find_under(LevelFilter::DEBUG, &db, &tenant).await;
    assert_eq!(heard.len(), 1, "{heard:?}");
    let fields = &heard[0];
    for expected in [
        "db.system=\"sqlite\"",
        "db.operation.name=\"select\"",
        "db.collection.name=\"guards\"",
        &format!("tenancy.tenant={tenant}"),
        "db.query.text=\"SELECT ",
    ] {
        assert!(fields.contains(expected), "{expected} not in {fields}");
    }
    assert_eq!(
        find_under(LevelFilter::INFO, &db, &tenant).await,
        Vec::<String>::new()
    );
}
