//! Aggregates of a [`Query`]: sum, average, minimum and maximum of a column, and the same (and
//! counts) per value of a grouping column, each decoded into a Rust type.

use std::marker::PhantomData;

use crate::crud;
use crate::error::Error;
use crate::exec::{self, Executor};
use crate::filter::Column;
use crate::model::{BackendOf, DialectOf, Model};
use crate::query::Query;
use crate::statement::{self, Aggregate, Statement};
use crate::value::{Scalars, SqlDecode};

mod sealed {
    pub trait Sealed {}
}

/// A column type that can be summed: integers sum to an `i64`, floats to an `f64`, on every
/// backend (the sum is cast to that type in SQL, so PostgreSQL's `numeric` sum of a `bigint`
/// column and MySQL's `DECIMAL` sums decode the same way; a sum beyond `i64` is an error from
/// the server, never a wrapped value).
pub trait Summable<B: sqlx::Database>: sealed::Sealed {
    /// What the sum decodes into.
    type Sum: SqlDecode<B>;
    /// Whether the sum is cast to a float (else to a 64-bit integer).
    #[doc(hidden)]
    const FLOAT: bool;
}

macro_rules! summable {
    ($sum:ty, $float:expr => $($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl sealed::Sealed for Option<$t> {}
        impl<B: sqlx::Database> Summable<B> for $t where $sum: SqlDecode<B> {
            type Sum = $sum;
            const FLOAT: bool = $float;
        }
        impl<B: sqlx::Database> Summable<B> for Option<$t> where $sum: SqlDecode<B> {
            type Sum = $sum;
            const FLOAT: bool = $float;
        }
    )*};
}
summable!(i64, false => i16, i32, i64);
summable!(f64, true => f32, f64);

fn sum_of<M: Model, T: Summable<BackendOf<M>>>() -> Aggregate {
    if T::FLOAT {
        Aggregate::SumFloat
    } else {
        Aggregate::SumInteger
    }
}

/// The sum, average, minimum and maximum of a column, as methods of [`Query`] (one value) and
/// [`Grouped`] (one per group): `$run` runs one aggregate (of the statement's [`Aggregate`],
/// the column, the executor); each method's value is of the type after its `->`.
macro_rules! aggregate_methods {
    (
        $run:ident;
        $(#[$sum_doc:meta])* sum -> $sum:ty;
        $(#[$avg_doc:meta])* avg -> $avg:ty;
        $($(#[$doc:meta])* $extreme:ident($function:ident) -> $out:ty;)*
    ) => {
        $(#[$sum_doc])*
        pub async fn sum<'c, T, E>(self, column: Column<M, T>, executor: E) -> Result<$sum, Error>
        where
            T: Summable<BackendOf<M>>,
            E: Executor<'c, Backend = BackendOf<M>>,
        {
            self.$run(sum_of::<M, T>(), column.name(), executor).await
        }

        $(#[$avg_doc])*
        pub async fn avg<'c, T, E>(self, column: Column<M, T>, executor: E) -> Result<$avg, Error>
        where
            T: Summable<BackendOf<M>>,
            f64: SqlDecode<BackendOf<M>>,
            E: Executor<'c, Backend = BackendOf<M>>,
        {
            self.$run(Aggregate::Avg, column.name(), executor).await
        }

        $(
            $(#[$doc])*
            pub async fn $extreme<'c, T, E>(
                self,
                column: Column<M, T>,
                executor: E,
            ) -> Result<$out, Error>
            where
                T: SqlDecode<BackendOf<M>>,
                E: Executor<'c, Backend = BackendOf<M>>,
            {
                self.$run(Aggregate::$function, column.name(), executor).await
            }
        )*
    };
}

impl<M: Model> Query<M> {
    /// The statement of one aggregate over the rows the query selects, per group of
    /// `group_by` if given.
    fn aggregate_statement(
        &self,
        function: Aggregate,
        column: &str,
        group_by: Option<&str>,
    ) -> Statement<'_, BackendOf<M>> {
        statement::aggregate::<DialectOf<M>, BackendOf<M>>(
            &self.tenant,
            &M::TABLE,
            function,
            column,
            group_by,
            self.conditions(),
            &self.window(),
        )
    }

    /// Runs one aggregate over the rows the query selects; `NULL` (no row, or only `NULL`s)
    /// is `None`.
    async fn aggregate<'c, V, E>(
        self,
        function: Aggregate,
        column: &'static str,
        executor: E,
    ) -> Result<Option<V>, Error>
    where
        V: SqlDecode<BackendOf<M>>,
        E: Executor<'c, Backend = BackendOf<M>>,
    {
        let about = crud::about::<M>("aggregate", &self.tenant);
        let statement = self.aggregate_statement(function, column, None);
        let row = exec::session(executor, about)
            .await?
            .fetch_optional(about, &statement)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        Ok(<BackendOf<M> as Scalars>::get::<Option<V>>(&row, 0)?)
    }

    aggregate_methods! {
        aggregate;
        /// The sum of `column` over the matching rows (within the limit and offset, if given);
        /// `None` when no row matches or every value is `NULL`.
        ///
        /// ```no_run
        /// # use tenancy_core::*;
        /// # async fn demo<M: TenantModel<Backend = sqlx::Postgres> + PerTenant>(pool: &sqlx::PgPool, tenant: &Tenant, hours: Column<M, i32>, rate: Column<M, f64>) -> Result<(), Error> {
        /// let total: Option<i64> = M::query(tenant).sum(hours, pool).await?;
        /// let mean: Option<f64> = M::query(tenant).filter(hours.gt(0)).avg(rate, pool).await?;
        /// # Ok(()) }
        /// ```
        sum -> Option<T::Sum>;
        /// The average of `column` over the matching rows, as an `f64`; `None` when no row
        /// matches or every value is `NULL`.
        avg -> Option<f64>;
        /// The smallest value of `column` among the matching rows; `None` when none matches (on
        /// an `Option` column, `Option<Option<T>>` whose inner value is never `None`: `.flatten()`
        /// it).
        min(Min) -> Option<T>;
        /// The largest value of `column` among the matching rows; `None` when none matches (on an
        /// `Option` column, see [`min`](Self::min)).
        max(Max) -> Option<T>;
    }

    /// Groups the matching rows by the value of `key` (SQL `GROUP BY`); the
    /// [`Grouped`] query's aggregates return one `(key, value)` per group, in the key's order.
    ///
    /// ```no_run
    /// # use tenancy_core::*;
    /// # async fn demo<M: TenantModel<Backend = sqlx::Postgres> + PerTenant>(pool: &sqlx::PgPool, tenant: &Tenant, position: Column<M, String>, hours: Column<M, i32>) -> Result<(), Error> {
    /// let per_position: Vec<(String, i64)> = M::query(tenant).group_by(position).count(pool).await?;
    /// let hours: Vec<(String, Option<i64>)> = M::query(tenant).group_by(position).sum(hours, pool).await?;
    /// # Ok(()) }
    /// ```
    pub fn group_by<K: SqlDecode<BackendOf<M>>>(self, key: Column<M, K>) -> Grouped<M, K> {
        Grouped {
            query: self,
            key: key.name(),
            key_type: PhantomData,
        }
    }
}

/// A [`Query`] grouped by the values of one column (see [`Query::group_by`]): each aggregate
/// returns one `(key, value)` pair per group, ordered by key. The query's filters choose the
/// rows grouped; with a limit or offset, the rows the query would return are grouped.
#[must_use = "a grouped query does nothing until one of its aggregates is run"]
pub struct Grouped<M: Model, K> {
    query: Query<M>,
    key: &'static str,
    key_type: PhantomData<fn() -> K>,
}

debug_fields!(Grouped<M: Model, K> { query, key });

impl<M: Model, K: SqlDecode<BackendOf<M>>> Grouped<M, K> {
    async fn run<'c, V, E>(
        self,
        function: Aggregate,
        column: &'static str,
        executor: E,
    ) -> Result<Vec<(K, V)>, Error>
    where
        V: SqlDecode<BackendOf<M>>,
        E: Executor<'c, Backend = BackendOf<M>>,
    {
        let query = &self.query;
        let about = crud::about::<M>("aggregate", &query.tenant);
        let statement = query.aggregate_statement(function, column, Some(self.key));
        let rows = exec::session(executor, about)
            .await?
            .fetch_all(about, &statement)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    <BackendOf<M> as Scalars>::get::<K>(row, 0)?,
                    <BackendOf<M> as Scalars>::get::<V>(row, 1)?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Error::from)
    }

    /// How many rows each group has.
    pub async fn count<'c, E>(self, executor: E) -> Result<Vec<(K, i64)>, Error>
    where
        i64: SqlDecode<BackendOf<M>>,
        E: Executor<'c, Backend = BackendOf<M>>,
    {
        self.run(Aggregate::Count, "", executor).await
    }

    aggregate_methods! {
        run;
        /// The sum of `column` in each group (`None`: only `NULL`s).
        sum -> Vec<(K, Option<T::Sum>)>;
        /// The average of `column` in each group (`None`: only `NULL`s).
        avg -> Vec<(K, Option<f64>)>;
        /// The smallest value of `column` in each group (`None`: only `NULL`s).
        min(Min) -> Vec<(K, Option<T>)>;
        /// The largest value of `column` in each group (`None`: only `NULL`s).
        max(Max) -> Vec<(K, Option<T>)>;
    }
}
