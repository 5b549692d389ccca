//! Executing the statements of [`sql`](crate::sql) for a model: binding, running, decoding and
//! error mapping. Generic over the model; the derive generates none of this.

use sqlx::postgres::PgArguments;
use sqlx::Arguments;

use crate::error::Error;
use crate::exec::{self, Executor, On};
use crate::model::TenantModel;
use crate::record::Record;
use crate::sql::{self, Postgres as Pg};
use crate::tenant::Tenant;

/// PostgreSQL's limit on bound values in one statement.
pub const MAX_BIND_PARAMS: usize = 65_535;

fn bind<M: TenantModel>(
    model: &M,
    columns: impl IntoIterator<Item = usize>,
    args: &mut PgArguments,
) -> Result<(), sqlx::Error> {
    for index in columns {
        model
            .bind_column(index, args)
            .map_err(sqlx::Error::Encode)?;
    }
    Ok(())
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
    E: Executor<'c>,
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
    E: Executor<'c>,
{
    record.validate()?;
    let sql = sql::insert::<Pg>(record.tenant(), &M::TABLE, 1);
    let value = record.value();
    let args = || {
        let mut args = PgArguments::default();
        bind(value, insertable_indexes::<M>(), &mut args)?;
        Ok(args)
    };
    let on = on::<M>("insert", record.tenant());
    let row = exec::fetch_optional(executor, on, &sql, &args)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    record.set_loaded(M::from_row(&row)?);
    Ok(())
}

pub(crate) async fn insert_many<'c, M, E>(
    executor: E,
    tenant: Tenant,
    models: Vec<M>,
) -> Result<Vec<Record<M>>, Error>
where
    M: TenantModel,
    E: Executor<'c>,
{
    if models.is_empty() {
        return Ok(Vec::new());
    }
    for (index, model) in models.iter().enumerate() {
        model
            .validate()
            .map_err(|errors| Error::InvalidBatchRow { index, errors })?;
    }
    let per_row = insertable_indexes::<M>().count().max(1);
    let max_rows = MAX_BIND_PARAMS / per_row;
    if models.len() > max_rows {
        return Err(Error::BatchTooLarge {
            table: M::TABLE.name,
            rows: models.len(),
            max_rows,
        });
    }
    let args = || {
        let mut args = PgArguments::default();
        for model in &models {
            bind(model, insertable_indexes::<M>(), &mut args)?;
        }
        Ok(args)
    };
    let sql = sql::insert::<Pg>(&tenant, &M::TABLE, models.len());
    let rows = exec::fetch_all(executor, on::<M>("insert", &tenant), &sql, &args).await?;
    rows.iter()
        .map(|row| Ok(Record::loaded(tenant.clone(), M::from_row(row)?)))
        .collect()
}

pub(crate) async fn find<'c, M, E>(
    executor: E,
    tenant: Tenant,
    id: M::Id,
) -> Result<Option<Record<M>>, Error>
where
    M: TenantModel,
    E: Executor<'c>,
{
    let sql = sql::select_by_pk::<Pg>(&tenant, &M::TABLE);
    let args = || {
        let mut args = PgArguments::default();
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
    E: Executor<'c>,
{
    if columns.is_empty() {
        return Ok(());
    }
    let table = &M::TABLE;
    let value = record.value();
    let args = || {
        let mut args = PgArguments::default();
        bind(
            value,
            columns.iter().copied().chain([table.primary_key_index()]),
            &mut args,
        )?;
        Ok(args)
    };
    let sql = sql::update::<Pg>(record.tenant(), table, columns);
    let row = exec::fetch_optional(executor, on::<M>("update", record.tenant()), &sql, &args)
        .await?
        .ok_or_else(|| Error::NotFound {
            tenant: record.tenant().clone(),
            table: table.name,
        })?;
    record.set_loaded(M::from_row(&row)?);
    Ok(())
}

pub(crate) async fn delete<'c, M, E>(executor: E, record: &mut Record<M>) -> Result<(), Error>
where
    M: TenantModel,
    E: Executor<'c>,
{
    let table = &M::TABLE;
    let sql = sql::delete_by_pk::<Pg>(record.tenant(), table);
    let id = record.id();
    let args = || {
        let mut args = PgArguments::default();
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
