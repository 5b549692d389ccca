//! Relations between two models of the same tenant: semi-joins in filters and preloads of
//! associated rows in one query per association.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use crate::backend::Backend;
use crate::crud;
use crate::error::Error;
use crate::exec::{self, Executor};
use crate::filter::{Column, Filter};
use crate::model::Model;
use crate::query::Query;
use crate::record::Record;
use crate::statement::{Exists, Predicate};
use crate::tenant::Tenant;
use crate::value::SqlValue;

/// A column that refers to values of type `T`: a `T` column, or an `Option<T>` one (`None`
/// refers to nothing).
#[diagnostic::on_unimplemented(
    message = "a column of type `{Self}` cannot refer to a column of type `{T}`",
    label = "this column's type differs from the related column's",
    note = "a relation joins two columns of the same type (the first may be an `Option` of it)"
)]
pub trait KeyOf<T> {
    /// The value referred to, if any.
    fn key(&self) -> Option<&T>;
}

impl<T> KeyOf<T> for T {
    fn key(&self) -> Option<&T> {
        Some(self)
    }
}

impl<T> KeyOf<T> for Option<T> {
    fn key(&self) -> Option<&T> {
        self.as_ref()
    }
}

/// A key type [`Relation::preload`] can look rows up by on backend `B`: on PostgreSQL one
/// bound array (`= ANY($1)`, so the statement is the same for any number of keys and gets a
/// generic plan; the type needs an array type, as every sqlx scalar has), elsewhere
/// `IN (…)`. Implemented for every type that qualifies.
pub trait PreloadKey<B: Backend>: SqlValue<B> + Clone + Eq + Hash {
    /// The filter `column` is one of `keys`.
    #[doc(hidden)]
    fn any_of<M: Model<Backend = B>>(column: Column<M, Self>, keys: &[Self]) -> Filter<M>;
}

/// Implements [`PreloadKey`] for every key type of a backend whose statements compare with
/// `IN (…)` (each backend's folder invokes it once, or implements the trait its own way).
#[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(unused_macros))]
macro_rules! preload_with_in {
    ($backend:ty) => {
        impl<T> $crate::relation::PreloadKey<$backend> for T
        where
            T: $crate::value::SqlValue<$backend> + Clone + Eq + std::hash::Hash,
        {
            fn any_of<M: $crate::model::Model<Backend = $backend>>(
                column: $crate::filter::Column<M, Self>,
                keys: &[Self],
            ) -> $crate::filter::Filter<M> {
                column.is_in(keys.iter().cloned())
            }
        }
    };
}
#[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(unused_imports))]
pub(crate) use preload_with_in;

/// A relation from rows of model `P` to rows of model `C` **in the same tenant**: `P`'s column
/// `from` equals `C`'s column `to`. Both models must have the same backend, and the columns
/// compatible types (`T`, or `Option<T>` on the `from` side), checked at compile time.
///
/// - A *belongs to* relation goes from a foreign key to a primary key:
///   `Relation::new(Guard::SITE_ID, Site::ID)`; a *has many* the other way:
///   `Relation::new(Site::ID, Guard::SITE_ID)`.
/// - [`any`](Self::any) makes a filter on `P` of rows with a related `C` matching a filter on
///   `C` (a join used to choose rows: `EXISTS`), composable like any other filter.
/// - [`preload`](Self::preload) loads the related rows of many records in one query per
///   tenant (never one per record).
///
/// ```no_run
/// # use tenancy_core::*;
/// # async fn demo<G: TenantModel<Backend = sqlx::Postgres> + PerTenant, S: TenantModel<Backend = sqlx::Postgres> + PerTenant>(
/// #     pool: &sqlx::PgPool, tenant: &Tenant, site_id: Column<G, i64>, id: Column<S, i64>, city: Column<S, String>) -> Result<(), Error> {
/// let site = Relation::new(site_id, id);
/// // Guards at a site in Paris:
/// let guards = G::query(tenant).filter(site.any(city.eq("Paris"))).fetch_all(pool).await?;
/// // And each one's site, in one more query:
/// let sites = site.preload(pool, &guards).await?;
/// for guard in &guards {
///     let _site: Option<&Record<S>> = sites.one(guard);
/// }
/// # Ok(()) }
/// ```
pub struct Relation<P, C, K, T> {
    from: Column<P, K>,
    to: Column<C, T>,
}

impl<P, C, K, T> Clone for Relation<P, C, K, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P, C, K, T> Copy for Relation<P, C, K, T> {}

debug_fields!(Relation<P, C, K, T> { from(from.name()), to(to.name()) });

impl<P, C, K, T> Relation<P, C, K, T>
where
    P: Model,
    C: Model<Backend = P::Backend>,
    K: KeyOf<T>,
    T: SqlValue<P::Backend> + Clone + Eq + Hash,
{
    /// `from` (a column of `P`) refers to `to` (a column of `C`). A `const fn`, so an
    /// association can be declared once as a constant next to its model, e.g.
    /// `impl Guard { const SITE: Relation<Guard, Site, Option<i64>, i64> =
    /// Relation::new(Guard::SITE_ID, Site::ID); }` (the README shows it compiled).
    pub const fn new(from: Column<P, K>, to: Column<C, T>) -> Self {
        Relation { from, to }
    }

    /// Rows of `P` with at least one related row of `C` that matches `filter` (use
    /// `Filter::all([])` for any related row; `!relation.any(…)` for none).
    pub fn any(self, filter: Filter<C>) -> Filter<P> {
        Filter::from_predicate(Predicate::Exists(Box::new(Exists {
            table: &C::TABLE,
            column: self.to.name(),
            outer_column: self.from.name(),
            predicate: filter.into_predicate(),
        })))
    }

    /// Loads the rows of `C` related to each of `records`: one query per tenant among the
    /// records (`WHERE to IN (…)`), each in that tenant, so a record is only ever matched with
    /// rows of its own tenant. Look them up with [`Preloaded::one`] and [`Preloaded::many`].
    /// Keys are sent in batches of at most 10,000 per statement: on PostgreSQL as one array
    /// (`= ANY($1)`), elsewhere as `IN (…)` (see [`PreloadKey`]).
    pub async fn preload<'c, E>(
        self,
        executor: E,
        records: &[Record<P>],
    ) -> Result<Preloaded<P, C, K, T>, Error>
    where
        E: Executor<'c, Backend = P::Backend>,
        T: PreloadKey<P::Backend>,
    {
        // Each tenant's distinct keys, in first-seen order (a set per tenant: checking the
        // list instead is quadratic, 0.4 ms for 1,000 keys).
        let mut keys: Vec<(&Tenant, Vec<T>)> = Vec::new();
        let mut seen: Vec<HashSet<&T>> = Vec::new();
        for record in records {
            let Some(key) = self.from.get(record.value()).key() else {
                continue;
            };
            let at = match keys.iter().position(|(t, _)| *t == record.tenant()) {
                Some(at) => at,
                None => {
                    // Sized for the usual case, one tenant (a set that grows moves its
                    // entries each time).
                    let capacity = if keys.is_empty() { records.len() } else { 0 };
                    keys.push((record.tenant(), Vec::with_capacity(capacity)));
                    seen.push(HashSet::with_capacity(capacity));
                    keys.len() - 1
                }
            };
            if seen[at].insert(key) {
                keys[at].1.push(key.clone());
            }
        }
        let mut rows: Vec<(Tenant, ByKey<T, C>)> = Vec::new();
        if let [(first, _), rest @ ..] = keys.as_slice() {
            // One connection for every statement: records of one tenant (the usual case) use a
            // session for that tenant; of several, one that serves any (a shared pool).
            let mut session = if rest.is_empty() {
                exec::session(executor, crud::about::<C>("select", first)).await?
            } else {
                executor.__session(None).await?
            };
            for (tenant, keys) in &keys {
                let mut of_tenant: ByKey<T, C> = HashMap::new();
                for batch in keys.chunks(PRELOAD_KEYS_PER_STATEMENT) {
                    // Each row goes into the map as it is decoded (no list of them first).
                    of_tenant.reserve(batch.len());
                    let to = self.to;
                    Query::<C>::new((*tenant).clone())
                        .filter(T::any_of(to, batch))
                        .for_each_on(&mut session, |record| {
                            match of_tenant.entry(to.get(record.value()).clone()) {
                                Entry::Occupied(mut group) => group.get_mut().push(record),
                                Entry::Vacant(slot) => {
                                    slot.insert(Group::One(record));
                                }
                            }
                        })
                        .await?;
                }
                rows.push(((*tenant).clone(), of_tenant));
            }
        }
        Ok(Preloaded {
            rows,
            from: self.from,
        })
    }
}

/// How many keys one statement of [`Relation::preload`] sends (each is a bound value).
pub const PRELOAD_KEYS_PER_STATEMENT: usize = 10_000;

/// One tenant's related rows, by key.
type ByKey<T, C> = HashMap<T, Group<C>>;

/// The rows related to one key: one (every key of a *belongs to*) needs no allocation of its
/// own.
enum Group<C> {
    One(Record<C>),
    Many(Vec<Record<C>>),
}

impl<C> Group<C> {
    fn push(&mut self, record: Record<C>) {
        // `Vec::new()` does not allocate.
        *self = match std::mem::replace(self, Group::Many(Vec::new())) {
            Group::One(first) => {
                // Room for four, as a `Vec`'s first push gives: one allocation for a key's
                // first few rows, not one for two and another for the third.
                let mut records = Vec::with_capacity(4);
                records.extend([first, record]);
                Group::Many(records)
            }
            Group::Many(mut records) => {
                records.push(record);
                Group::Many(records)
            }
        };
    }

    fn as_slice(&self) -> &[Record<C>] {
        match self {
            Group::One(record) => std::slice::from_ref(record),
            Group::Many(records) => records,
        }
    }
}

/// The rows [`Relation::preload`] loaded, by the record of `P` they are related to.
pub struct Preloaded<P, C: Model, K, T> {
    /// Per tenant (few: a linear search), the related rows by key.
    rows: Vec<(Tenant, ByKey<T, C>)>,
    from: Column<P, K>,
}

debug_fields!(Preloaded<P, C: Model, K, T> { from(from.name()), keys(rows.len()), .. });

impl<P, C, K, T> Preloaded<P, C, K, T>
where
    P: Model,
    C: Model,
    K: KeyOf<T>,
    T: Clone + Eq + Hash,
{
    /// The related rows of `record` (of its tenant), in no particular order; empty if none.
    pub fn many(&self, record: &Record<P>) -> &[Record<C>] {
        let Some(key) = self.from.get(record.value()).key() else {
            return &[];
        };
        self.rows
            .iter()
            .find(|(tenant, _)| tenant == record.tenant())
            .and_then(|(_, rows)| rows.get(key))
            .map_or(&[], Group::as_slice)
    }

    /// The related row of `record` (a *belongs to* relation has at most one), or `None`.
    pub fn one(&self, record: &Record<P>) -> Option<&Record<C>> {
        self.many(record).first()
    }

    /// How many related rows were loaded in all.
    pub fn len(&self) -> usize {
        self.rows
            .iter()
            .flat_map(|(_, rows)| rows.values())
            .map(|group| group.as_slice().len())
            .sum()
    }

    /// Whether no related row was loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<M: Model> Query<M> {
    /// Keeps the rows with a related row of `C` (by `relation`) that matches `filter`: a join
    /// used to choose rows, in the same tenant (see [`Relation::any`]).
    pub fn join<C, K, T>(self, relation: Relation<M, C, K, T>, filter: Filter<C>) -> Self
    where
        C: Model<Backend = M::Backend>,
        K: KeyOf<T>,
        T: SqlValue<M::Backend> + Clone + Eq + std::hash::Hash,
    {
        self.filter(relation.any(filter))
    }
}
