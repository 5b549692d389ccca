//! Executing the statements of [`sql`](crate::sql) for a model: binding, running, decoding and
//! error mapping. Generic over the model; the derive generates none of this.

use sqlx::{Arguments, Connection, Database};

use crate::backend::Backend;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};

use crate::error::{from_db, Error};
use crate::exec::{self, Executor, On, Session};
use crate::model::TenantModel;
use crate::record::Record;
use crate::sql::{self, Dialect};
use crate::tenant::Tenant;

/// PostgreSQL's limit on bound values in one statement (see [`Backend::MAX_BIND_PARAMS`] for
/// each backend's).
pub const MAX_BIND_PARAMS: usize = 65_535;

/// The backend of model `M`.
type B<M> = <M as TenantModel>::Backend;
/// The SQL dialect of model `M`'s backend.
type D<M> = <B<M> as Backend>::Dialect;
/// Arguments of a statement on model `M`'s backend.
type ArgsOf<M> = <B<M> as Database>::Arguments;

fn bind<M: TenantModel>(
    model: &M,
    columns: impl IntoIterator<Item = usize>,
    args: &mut ArgsOf<M>,
) -> Result<(), sqlx::Error> {
    for index in columns {
        model
            .bind_column(index, args)
            .map_err(sqlx::Error::Encode)?;
    }
    Ok(())
}

/// The arguments of an insert of `models`: each one's insertable columns, row after row.
pub(crate) fn insertable_args<M: TenantModel>(models: &[M]) -> Result<ArgsOf<M>, sqlx::Error> {
    let mut args = ArgsOf::<M>::default();
    for model in models {
        bind(model, insertable_indexes::<M>(), &mut args)?;
    }
    Ok(args)
}

/// Validates every model of a batch and checks that one statement can bind them all.
pub(crate) fn check_batch<M: TenantModel>(models: &[M]) -> Result<(), Error> {
    for (index, model) in models.iter().enumerate() {
        model
            .validate()
            .map_err(|errors| Error::InvalidBatchRow { index, errors })?;
    }
    let per_row = insertable_indexes::<M>().count().max(1);
    let max_rows = B::<M>::MAX_BIND_PARAMS / per_row;
    if models.len() > max_rows {
        return Err(Error::BatchTooLarge {
            table: M::TABLE.name,
            rows: models.len(),
            max_rows,
        });
    }
    Ok(())
}

pub(crate) fn args_of<M: TenantModel>(
    model: &M,
    columns: impl IntoIterator<Item = usize>,
) -> Result<ArgsOf<M>, sqlx::Error> {
    let mut args = ArgsOf::<M>::default();
    bind(model, columns, &mut args)?;
    Ok(args)
}

/// A row handler for [`exec::fetch_each`]: decodes each row as a record of `M` in `tenant` and
/// hands it to `each`.
pub(crate) fn decoder<'r, M: TenantModel>(
    tenant: &'r Tenant,
    mut each: impl FnMut(Record<M>) + Send + 'r,
) -> impl FnMut(<B<M> as Database>::Row) -> Result<(), sqlx::Error> + Send + 'r {
    move |row| {
        each(Record::loaded(tenant.clone(), M::from_row(&row)?));
        Ok(())
    }
}

/// What a statement on `M`'s table in `tenant` is about.
pub(crate) fn on<'t, M: TenantModel>(operation: &'static str, tenant: &'t Tenant) -> On<'t> {
    On {
        operation,
        tenant,
        table: M::TABLE.name,
    }
}

fn insertable_indexes<M: TenantModel>() -> impl Iterator<Item = usize> {
    M::TABLE
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_insertable())
        .map(|(i, _)| i)
}

pub(crate) async fn insert<'c, M, E>(
    executor: E,
    tenant: Tenant,
    value: M,
) -> Result<Record<M>, Error>
where
    M: TenantModel,
    E: Executor<'c, Backend = M::Backend>,
{
    let mut record = Record::new(tenant, value);
    insert_record(executor, &mut record).await?;
    Ok(record)
}

pub(crate) async fn insert_record<'c, M, E>(
    executor: E,
    record: &mut Record<M>,
) -> Result<(), Error>
where
    M: TenantModel,
    E: Executor<'c, Backend = M::Backend>,
{
    record.validate()?;
    let row = if D::<M>::RETURNING {
        let sql = sql::insert::<D<M>>(record.tenant(), &M::TABLE, 1);
        let value = record.value();
        let args = || args_of(value, insertable_indexes::<M>());
        let on = on::<M>("insert", record.tenant());
        exec::fetch_optional(executor, on, &sql, &args)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?
    } else {
        let mut session = executor.__session(Some(record.tenant())).await?;
        insert_read_back(&mut session, record.tenant(), record.value()).await?
    };
    record.set_loaded(M::from_row(&row)?);
    Ok(())
}

/// Inserts `value` without `RETURNING`, then reads the stored row back on the same connection.
async fn insert_read_back<M: TenantModel>(
    session: &mut Session<'_, B<M>>,
    tenant: &Tenant,
    value: &M,
) -> Result<<B<M> as Database>::Row, Error> {
    let sql = sql::insert::<D<M>>(tenant, &M::TABLE, 1);
    let args = || args_of(value, insertable_indexes::<M>());
    on::<M>("insert", tenant)
        .execute(session, &sql, &args)
        .await?;
    let generated = M::TABLE.primary_key().generated;
    let row = read_back(session, tenant, value, generated).await?;
    Ok(row.ok_or(sqlx::Error::RowNotFound)?)
}

/// Reads `value`'s row back on `session`, for a backend without `RETURNING`: by
/// `LAST_INSERT_ID()` right after an insert that generated the key (`last_insert_id`), else by
/// the key the model holds.
async fn read_back<M: TenantModel>(
    session: &mut Session<'_, B<M>>,
    tenant: &Tenant,
    value: &M,
    last_insert_id: bool,
) -> Result<Option<<B<M> as Database>::Row>, Error> {
    let table = &M::TABLE;
    let (sql, key) = if last_insert_id {
        (sql::select_by_last_insert_id::<D<M>>(tenant, table), None)
    } else {
        let key = Some(table.primary_key_index());
        (sql::select_by_pk::<D<M>>(tenant, table), key)
    };
    let args = || args_of(value, key);
    on::<M>("select", tenant)
        .fetch_optional(session, &sql, &args)
        .await
}

pub(crate) async fn insert_many<'c, M, E>(
    executor: E,
    tenant: Tenant,
    models: Vec<M>,
) -> Result<Vec<Record<M>>, Error>
where
    M: TenantModel,
    E: Executor<'c, Backend = M::Backend>,
{
    if models.is_empty() {
        return Ok(Vec::new());
    }
    check_batch(&models)?;
    if !D::<M>::RETURNING {
        return insert_many_read_back(executor, tenant, models).await;
    }
    let args = || insertable_args(&models);
    let sql = sql::insert::<D<M>>(&tenant, &M::TABLE, models.len());
    let rows = exec::fetch_all(executor, on::<M>("insert", &tenant), &sql, &args).await?;
    rows.iter()
        .map(|row| Ok(Record::loaded(tenant.clone(), M::from_row(row)?)))
        .collect()
}

/// [`insert_many`] without `RETURNING`: each row inserted and read back, all inside one
/// transaction (a savepoint if the caller's connection is already in one), so all rows or none
/// are stored; dropping the future rolls it back.
async fn insert_many_read_back<'c, M, E>(
    executor: E,
    tenant: Tenant,
    models: Vec<M>,
) -> Result<Vec<Record<M>>, Error>
where
    M: TenantModel,
    E: Executor<'c, Backend = M::Backend>,
{
    let mut session = executor.__session(Some(&tenant)).await?;
    let bound = session.bound().cloned();
    let mut tx = session.conn().begin().await?;
    let mut records = Vec::with_capacity(models.len());
    {
        let mut inner = Session::borrowing(&mut *tx, bound);
        for model in &models {
            let row = insert_read_back(&mut inner, &tenant, model).await?;
            records.push(Record::loaded(tenant.clone(), M::from_row(&row)?));
        }
    }
    tx.commit().await?;
    Ok(records)
}

pub(crate) async fn find<'c, M, E>(
    executor: E,
    tenant: Tenant,
    id: M::Id,
) -> Result<Option<Record<M>>, Error>
where
    M: TenantModel,
    E: Executor<'c, Backend = M::Backend>,
{
    let sql = sql::select_by_pk::<D<M>>(&tenant, &M::TABLE);
    let args = || {
        let mut args = ArgsOf::<M>::default();
        args.add(&id).map_err(sqlx::Error::Encode)?;
        Ok(args)
    };
    let row = exec::fetch_optional(executor, on::<M>("select", &tenant), &sql, &args).await?;
    row.map(|row| Ok(Record::loaded(tenant, M::from_row(&row)?)))
        .transpose()
}

/// Writes `columns` of a loaded record (already checked and validated by the caller) and
/// refreshes it from the returned row.
pub(crate) async fn update_columns<'c, M, E>(
    executor: E,
    record: &mut Record<M>,
    columns: &[usize],
) -> Result<(), Error>
where
    M: TenantModel,
    E: Executor<'c, Backend = M::Backend>,
{
    if columns.is_empty() {
        return Ok(());
    }
    let table = &M::TABLE;
    let value = record.value();
    let key = table.primary_key_index();
    let args = || args_of(value, columns.iter().copied().chain([key]));
    let sql = sql::update::<D<M>>(record.tenant(), table, columns);
    let on_update = on::<M>("update", record.tenant());
    let row = if D::<M>::RETURNING {
        exec::fetch_optional(executor, on_update, &sql, &args).await?
    } else {
        let mut session = executor.__session(Some(record.tenant())).await?;
        on_update.execute(&mut session, &sql, &args).await?;
        read_back(&mut session, record.tenant(), value, false).await?
    };
    let row = row.ok_or_else(|| Error::NotFound {
        tenant: record.tenant().clone(),
        table: table.name,
    })?;
    record.set_loaded(M::from_row(&row)?);
    Ok(())
}

pub(crate) async fn delete<'c, M, E>(executor: E, record: &mut Record<M>) -> Result<(), Error>
where
    M: TenantModel,
    E: Executor<'c, Backend = M::Backend>,
{
    let table = &M::TABLE;
    let sql = sql::delete_by_pk::<D<M>>(record.tenant(), table);
    let id = record.id();
    let args = || {
        let mut args = ArgsOf::<M>::default();
        args.add(&id).map_err(sqlx::Error::Encode)?;
        Ok(args)
    };
    let affected = exec::execute(executor, on::<M>("delete", record.tenant()), &sql, &args).await?;
    if affected == 0 {
        return Err(Error::NotFound {
            tenant: record.tenant().clone(),
            table: table.name,
        });
    }
    record.set_deleted();
    Ok(())
}

/// Runs `statement` (its SQL and arguments, or the error building them) on `tenant` as a stream
/// of records of `M`: the session is taken when the stream is first polled, and rows are
/// decoded as they arrive. `operation` and `table` name the statement in errors.
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
    statement: Result<(String, ArgsOf<M>), Error>,
) -> BoxStream<'c, Result<Record<M>, Error>>
where
    M: TenantModel,
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
        let on = On { operation, tenant: &tenant, table };
        let mut session = match on.session(executor).await {
            Ok(session) => session,
            Err(err) => {
                yield vec![Err(err)];
                return;
            }
        };
        let mut rows = B::<M>::stream(&mut session, &sql, args);
        let decode = |row: Result<<B<M> as Database>::Row, sqlx::Error>| {
            let row = row.map_err(|e| from_db::<B<M>>(e, &tenant, table))?;
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
