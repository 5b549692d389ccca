//! The operations on records of a model: insert (one or many), find, update, partial update
//! and delete, and the stream of a query's records. Generic over the model; the derive
//! generates none of this. How a write returns the stored row is the backend's
//! ([`Backend::insert_rows`]); the helpers for backends that have `RETURNING` are here.

use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use smallvec::SmallVec;
use sqlx::Database;

use crate::backend::{from_db, About, Backend, Conflict};
use crate::changeset::Changeset;
use crate::error::Error;
use crate::exec::{self, Executor};
use crate::model::{BackendOf, DialectOf, Model};
use crate::record::{Record, State};
use crate::statement::{self, Value};
use crate::tenant::Tenant;
use crate::value::BindColumn;

/// What a statement on `M`'s table in `tenant` is about.
pub(crate) fn about<'t, M: Model>(operation: &'static str, tenant: &'t Tenant) -> About<'t> {
    About::new(operation, tenant, M::TABLE.name)
}

/// `models` as the rows a statement binds.
fn rows<M: Model>(models: &[M]) -> Vec<&dyn BindColumn<BackendOf<M>>> {
    models
        .iter()
        .map(|m| m as &dyn BindColumn<BackendOf<M>>)
        .collect()
}

/// Validates every model of a batch and checks that one statement can bind them all.
pub(crate) fn check_batch<M: Model>(models: &[M]) -> Result<(), Error> {
    for (index, model) in models.iter().enumerate() {
        model
            .validate()
            .map_err(|errors| Error::InvalidBatchRow { index, errors })?;
    }
    let per_row = M::TABLE.insertable().count().max(1);
    let max_rows = BackendOf::<M>::MAX_BIND_PARAMS / per_row;
    if models.len() > max_rows {
        return Err(Error::BatchTooLarge {
            table: M::TABLE.name,
            rows: models.len(),
            max_rows,
            max_values: BackendOf::<M>::MAX_BIND_PARAMS,
        });
    }
    Ok(())
}

/// Decodes `rows` as loaded records of `tenant`.
pub(crate) fn decode_all<M: Model>(
    tenant: &Tenant,
    rows: Vec<<BackendOf<M> as Database>::Row>,
) -> Result<Vec<Record<M>>, Error> {
    rows.iter()
        .map(|row| Ok(Record::loaded(tenant.clone(), M::from_row(row)?)))
        .collect()
}

/// A row handler for [`Backend::fetch_each`]: decodes each row as a record of `M` in `tenant`
/// and hands it to `each`.
pub(crate) fn decoder<'r, M: Model>(
    tenant: &'r Tenant,
    mut each: impl FnMut(Record<M>) + Send + 'r,
) -> impl FnMut(<BackendOf<M> as Database>::Row) -> Result<(), sqlx::Error> + Send + 'r {
    move |row| {
        each(Record::loaded(tenant.clone(), M::from_row(&row)?));
        Ok(())
    }
}

pub(crate) async fn insert<'c, M, E>(
    executor: E,
    tenant: Tenant,
    value: M,
) -> Result<Record<M>, Error>
where
    M: Model,
    E: Executor<'c, Backend = M::Backend>,
{
    let mut record = Record::new(tenant, value);
    insert_record(executor, &mut record).await?;
    Ok(record)
}

async fn insert_record<'c, M, E>(executor: E, record: &mut Record<M>) -> Result<(), Error>
where
    M: Model,
    E: Executor<'c, Backend = M::Backend>,
{
    record.validate()?;
    let about = about::<M>("insert", record.tenant());
    let mut session = exec::session(executor, about).await?;
    let row: [&dyn BindColumn<M::Backend>; 1] = [record.value()];
    let stored = M::Backend::insert_one(&mut session, about, &M::TABLE, &row).await?;
    let row = stored.ok_or(sqlx::Error::RowNotFound)?;
    record.set_loaded(M::from_row(&row)?);
    Ok(())
}

pub(crate) async fn insert_many<'c, M, E>(
    executor: E,
    tenant: Tenant,
    models: Vec<M>,
) -> Result<Vec<Record<M>>, Error>
where
    M: Model,
    E: Executor<'c, Backend = M::Backend>,
{
    if models.is_empty() {
        return Ok(Vec::new());
    }
    check_batch(&models)?;
    let about = about::<M>("insert", &tenant);
    let mut session = exec::session(executor, about).await?;
    let rows = rows(&models);
    let stored = M::Backend::insert_rows(&mut session, about, &M::TABLE, &rows).await?;
    decode_all(&tenant, stored)
}

pub(crate) async fn find<'c, M, E>(
    executor: E,
    tenant: Tenant,
    id: M::Id,
) -> Result<Option<Record<M>>, Error>
where
    M: Model,
    E: Executor<'c, Backend = M::Backend>,
{
    let row = {
        let about = about::<M>("select", &tenant);
        let key = Value::Bound(&id);
        let statement =
            statement::select_by_pk::<DialectOf<M>, M::Backend>(&tenant, &M::TABLE, key);
        let mut session = exec::session(executor, about).await?;
        session.fetch_optional(about, &statement).await?
    };
    // The record takes the tenant this call owns (no second clone of its names).
    row.map(|row| Ok(Record::loaded(tenant, M::from_row(&row)?)))
        .transpose()
}

/// Upserts `models` into `tenant` (see [`TenantModel::upsert_many`](crate::TenantModel)).
pub(crate) async fn upsert_many<'c, M, E>(
    executor: E,
    tenant: Tenant,
    models: Vec<M>,
    conflict: Conflict<'_>,
) -> Result<Vec<Record<M>>, Error>
where
    M: Model,
    E: Executor<'c, Backend = M::Backend>,
{
    check_batch(&models)?;
    if models.is_empty() {
        return Ok(Vec::new());
    }
    let about = about::<M>("insert", &tenant);
    let mut session = exec::session(executor, about).await?;
    let rows = rows(&models);
    let stored = M::Backend::upsert_rows(&mut session, about, &M::TABLE, &rows, conflict).await?;
    decode_all(&tenant, stored)
}

impl<M: Model> Record<M> {
    /// Refuses a write to any tenant but the record's own, and any state but `expected`.
    fn check(&self, tenant: &Tenant, expected: State) -> Result<(), Error> {
        if tenant != self.tenant() {
            return Err(Error::TenantMismatch {
                table: M::TABLE.name,
                record: self.tenant().clone(),
                requested: tenant.clone(),
            });
        }
        self.check_state(expected)
    }

    /// Refuses any state but `expected`.
    fn check_state(&self, expected: State) -> Result<(), Error> {
        if self.state() != expected {
            return Err(Error::InvalidState {
                table: M::TABLE.name,
                tenant: self.tenant().clone(),
                expected,
                found: self.state(),
            });
        }
        Ok(())
    }

    /// Writes `columns` of the loaded record (already checked and validated) and refreshes it
    /// from the stored row.
    async fn write_columns<'c, E>(&mut self, executor: E, columns: &[usize]) -> Result<(), Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        if columns.is_empty() {
            return Ok(());
        }
        let about = about::<M>("update", self.tenant());
        let mut session = exec::session(executor, about).await?;
        let row = M::Backend::update_row(&mut session, about, &M::TABLE, self.value(), columns)
            .await?
            .ok_or_else(|| Error::NotFound {
                tenant: self.tenant().clone(),
                table: M::TABLE.name,
            })?;
        self.set_loaded(M::from_row(&row)?);
        Ok(())
    }

    /// Inserts a [`Built`](State::Built) record into its tenant (which `tenant` must be) and
    /// refreshes it from the stored row.
    pub async fn insert<'c, E>(&mut self, executor: E, tenant: &Tenant) -> Result<(), Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        self.check(tenant, State::Built)?;
        insert_record(executor, self).await
    }

    /// Validates, then writes every column (except the primary key and generated columns) to the
    /// record's row in its own tenant, and refreshes the record from the stored row.
    ///
    /// Fails with [`Error::TenantMismatch`] if `tenant` is not the record's,
    /// [`Error::InvalidState`] unless the record is loaded, and [`Error::NotFound`] if the row is
    /// gone. [`save`](Self::save) does the same without naming the tenant.
    pub async fn update<'c, E>(&mut self, executor: E, tenant: &Tenant) -> Result<(), Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        self.check(tenant, State::Loaded)?;
        self.save(executor).await
    }

    /// [`update`](Self::update) of the tenant the record came from: a loaded record knows its
    /// tenant, so nothing else can be named (Ecto's `Repo.update` of a record with its
    /// prefix). `guard.save(&pool)` after `Guard::find(&pool, &acme, id)` writes to `acme`'s
    /// table.
    ///
    /// Fails with [`Error::InvalidState`] unless the record is loaded (one made with
    /// [`Record::new`] and never inserted, or deleted), before anything is sent, and with
    /// [`Error::NotFound`] if the row is gone.
    pub async fn save<'c, E>(&mut self, executor: E) -> Result<(), Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        self.check_state(State::Loaded)?;
        self.value().validate()?;
        let columns: SmallVec<[usize; 32]> = M::TABLE.updatable_indexes().collect();
        self.write_columns(executor, &columns).await
    }

    /// Applies a [`Changeset`]: validates the record as it would be with the changes, writes only
    /// the changed columns, and refreshes the record from the stored row. If validation or the
    /// write fails, the record is left exactly as it was.
    pub async fn apply<'c, E>(
        &mut self,
        executor: E,
        tenant: &Tenant,
        mut changes: Changeset<M>,
    ) -> Result<(), Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        self.check(tenant, State::Loaded)?;
        if let Some(column) = changes
            .columns()
            .map(|c| &M::TABLE.columns[c])
            .find(|c| !c.is_updatable())
        {
            return Err(Error::ReadOnlyColumn {
                table: M::TABLE.name,
                column: column.name,
            });
        }
        if changes.is_empty() {
            return Ok(());
        }
        changes.swap_into(self.value_mut());
        let result = match self.value().validate() {
            Ok(()) => {
                let columns: Vec<usize> = changes.columns().collect();
                self.write_columns(executor, &columns).await
            }
            Err(errors) => Err(Error::Validation(errors)),
        };
        if result.is_err() {
            // Swapping again puts the old values back.
            changes.swap_into(self.value_mut());
        }
        result
    }

    /// Deletes the record's row from its own tenant; the record becomes
    /// [`Deleted`](State::Deleted). [`Error::NotFound`] if the row was already gone.
    pub async fn delete<'c, E>(&mut self, executor: E, tenant: &Tenant) -> Result<(), Error>
    where
        E: Executor<'c, Backend = M::Backend>,
    {
        self.check(tenant, State::Loaded)?;
        let id = self.id();
        let about = about::<M>("delete", self.tenant());
        let statement = statement::delete_by_pk::<DialectOf<M>, M::Backend>(
            self.tenant(),
            &M::TABLE,
            Value::Bound(&id),
        );
        let affected = exec::session(executor, about)
            .await?
            .execute(about, &statement)
            .await?;
        if affected == 0 {
            return Err(Error::NotFound {
                tenant: self.tenant().clone(),
                table: M::TABLE.name,
            });
        }
        self.set_deleted();
        Ok(())
    }
}

/// Runs a statement (its SQL and arguments, or the error building them) about `about`'s tenant
/// as a stream of records of `M`: the session is taken when the stream is first polled, and
/// rows are decoded as they arrive.
///
/// The generator that owns the session hands rows on in batches: after each row it waits for,
/// it also takes the rows sqlx has already read (no waiting), up to [`STREAM_BATCH`]; resuming
/// a generator per row cost about 4 % of a 1,000,000-row stream (BENCHMARKS.md, 23). Memory
/// holds at most one batch beyond sqlx's own buffer.
pub(crate) fn stream<'c, M, E>(
    executor: E,
    tenant: Tenant,
    operation: &'static str,
    table: &'static str,
    statement: Result<(String, <M::Backend as Database>::Arguments), Error>,
) -> BoxStream<'c, Result<Record<M>, Error>>
where
    M: Model,
    E: Executor<'c, Backend = M::Backend> + 'c,
{
    let batches = async_stream::stream! {
        let (sql, args) = match statement {
            Ok(statement) => statement,
            Err(err) => {
                yield vec![Err(err)];
                return;
            }
        };
        let about = About::new(operation, &tenant, table);
        let mut session = match exec::session(executor, about).await {
            Ok(session) => session,
            Err(err) => {
                yield vec![Err(err)];
                return;
            }
        };
        let rows_of = tenant.is_row_level().then_some(&tenant);
        let mut rows = M::Backend::stream(&mut session, &sql, args, rows_of);
        let decode = |row: Result<<M::Backend as Database>::Row, sqlx::Error>| {
            let row = row.map_err(|e| from_db::<M::Backend>(e, &tenant, table))?;
            Ok::<_, Error>(Record::loaded(tenant.clone(), M::from_row(&row)?))
        };
        while let Some(first) = rows.next().await {
            let mut batch = Vec::new();
            let mut next = Some(first);
            // An error (the rows before it are in the batch) or the last row ends the stream.
            let mut stop = false;
            while let Some(row) = next {
                let record = decode(row);
                stop = record.is_err();
                batch.push(record);
                if stop || batch.len() == STREAM_BATCH {
                    break;
                }
                next = match rows.next().now_or_never() {
                    Some(None) => {
                        stop = true;
                        None
                    }
                    Some(row) => row,
                    None => None,
                };
            }
            yield batch;
            if stop {
                break;
            }
        }
    };
    Box::pin(batches.flat_map(futures_util::stream::iter))
}

/// The most rows [`stream`] decodes before handing them on.
const STREAM_BATCH: usize = 256;
