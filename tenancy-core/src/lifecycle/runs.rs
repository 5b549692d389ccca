//! Runs across tenants: [`Tenants::migrate_all`], [`Tenants::rollback_all`], the dry run
//! ([`Tenants::plan`]) and [`Tenants::for_each`], on one bounded-concurrency runner.

use std::future::Future;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::plan::History;
use super::report::{
    MigrateOptions, Outcome, Planned, Progress, ProgressFn, Report, TenantResult, TenantStatus,
};
use super::store::{Direction, Store};
use super::Tenants;
use crate::backend::Backend;
use crate::context;
use crate::error::Error;
use crate::tenant::Tenant;
use crate::trace;

/// Runs `run(item)` for every item, at most `concurrency` at once, each in a task of its own (a
/// `JoinSet`, so dropping the returned future aborts them all), and hands each output to
/// `finished` with the item's index, in the order they finish. A panic in a task is resumed
/// here.
///
/// Each item runs in its own task so that building statements and reading replies spreads over
/// the runtime's threads instead of queueing behind one task's.
pub(crate) async fn run_bounded<I, T, Fut>(
    items: Vec<I>,
    concurrency: usize,
    mut run: impl FnMut(I) -> Fut,
    mut finished: impl FnMut(usize, T),
) where
    T: Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut items = items.into_iter().enumerate();
    let mut running = JoinSet::new();
    let mut spawn = |running: &mut JoinSet<(usize, T)>, (index, item): (usize, I)| {
        let task = run(item);
        running.spawn(async move { (index, task.await) });
    };
    for item in items.by_ref().take(concurrency.max(1)) {
        spawn(&mut running, item);
    }
    while let Some(joined) = running.join_next().await {
        let (index, output) = match joined {
            Ok(finished) => finished,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only the runtime shutting down cancels them, and that drops this future too.
            Err(e) => panic!("tenancy: a task of a run across tenants was cancelled: {e}"),
        };
        if let Some(item) = items.next() {
            spawn(&mut running, item);
        }
        finished(index, output);
    }
}

/// Every tenant of `rows` as up to date, and those with work (`Some`), with their positions.
#[allow(clippy::type_complexity)]
fn split<W>(
    rows: impl Iterator<Item = (Tenant, Option<W>)>,
) -> (Vec<TenantResult>, Vec<(usize, Tenant, W)>) {
    let mut tenants = Vec::new();
    let mut work = Vec::new();
    for (index, (tenant, needs)) in rows.enumerate() {
        if let Some(needs) = needs {
            work.push((index, tenant.clone(), needs));
        }
        tenants.push(TenantResult {
            tenant,
            result: Ok(Outcome::UpToDate),
        });
    }
    (tenants, work)
}

/// Runs `run(tenant, what it needs)` for each tenant of `work` (with its position in
/// `tenants`), at most `concurrency` at once, each in a task of its own; reports progress after
/// each and puts its result at its position. The tenants without work keep the result they
/// came with (up to date).
async fn run_report<W, Fut>(
    mut tenants: Vec<TenantResult>,
    work: Vec<(usize, Tenant, W)>,
    concurrency: usize,
    on_progress: Option<&ProgressFn>,
    mut run: impl FnMut(Tenant, W) -> Fut,
) -> Report
where
    Fut: Future<Output = Result<Outcome, Error>> + Send + 'static,
{
    let total = work.len();
    let mut done = 0;
    let task = |(index, tenant, needs): (usize, Tenant, W)| {
        let result = run(tenant.clone(), needs);
        async move { (index, tenant, result.await) }
    };
    run_bounded(work, concurrency, task, |_, (index, tenant, result)| {
        done += 1;
        if let Some(progress) = on_progress {
            progress(&Progress {
                done,
                total,
                tenant: &tenant,
                result: &result,
            });
        }
        tenants[index].result = result;
    })
    .await;
    Report { tenants }
}

/// A progress callback of [`Tenants::for_each`].
pub type EachProgressFn<T, E> = Arc<dyn Fn(&Progress<'_, T, E>) + Send + Sync>;

/// Options of [`Tenants::for_each`]: which tenants, how many at once, progress.
pub struct EachOptions<T, E> {
    /// How many tenants run at once; default: the pool's maximum size.
    pub concurrency: Option<usize>,
    /// The tenants to run for, in this order; default: every tenant ([`Tenants::list`]).
    pub tenants: Option<Vec<Tenant>>,
    /// Called after each tenant.
    pub on_progress: Option<EachProgressFn<T, E>>,
}

impl<T, E> Default for EachOptions<T, E> {
    fn default() -> Self {
        EachOptions {
            concurrency: None,
            tenants: None,
            on_progress: None,
        }
    }
}

impl<T, E> Clone for EachOptions<T, E> {
    fn clone(&self) -> Self {
        EachOptions {
            concurrency: self.concurrency,
            tenants: self.tenants.clone(),
            on_progress: self.on_progress.clone(),
        }
    }
}

impl<T, E> std::fmt::Debug for EachOptions<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EachOptions")
            .field("concurrency", &self.concurrency)
            .field("tenants", &self.tenants)
            .field("on_progress", &self.on_progress.is_some())
            .finish()
    }
}

impl<T, E> EachOptions<T, E> {
    /// Sets the number of tenants run at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = Some(n.max(1));
        self
    }

    /// Runs for these tenants only, in this order, instead of every registered tenant.
    pub fn only(mut self, tenants: impl IntoIterator<Item = Tenant>) -> Self {
        self.tenants = Some(tenants.into_iter().collect());
        self
    }

    /// Sets the progress callback.
    pub fn on_progress(mut self, f: impl Fn(&Progress<'_, T, E>) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }
}

impl<B: Backend> Tenants<B> {
    /// Migrates every tenant that is behind, up to `options.concurrency` at once (default: the
    /// pool's size), each in a task of its own, under its own lock, in its own transaction
    /// where the backend has transactional DDL. A failing tenant does not stop the others: the
    /// [`Report`] lists every tenant, in name order, with its outcome or error.
    ///
    /// Who is behind is found first: on PostgreSQL and MySQL with one registry query (a no-op
    /// run is that one query); on SQLite, whose records are in each tenant's file, every tenant
    /// is run (a tenant with nothing pending is reported up to date after opening its file
    /// once). On PostgreSQL each tenant's pending migrations go in one round trip and commit
    /// without waiting for the disk; one ordinary commit at the end makes them all durable, so
    /// what the report says holds after a crash. A run aborted midway (future dropped,
    /// process killed) leaves every tenant at its old or its new version.
    ///
    /// Fails as a whole only if finding who is behind fails, or the run's last commit does, or
    /// the server restarted during the run ([`Error::ServerRestarted`]: a rerun applies what
    /// was lost and reports the rest up to date).
    pub async fn migrate_all(&self, options: MigrateOptions) -> Result<Report, Error> {
        let span = trace::run::<B>("migrate_all", self.latest_version());
        trace::within(span, async {
            let store = self.store();
            let (tenants, work) = self.migrate_work().await?;
            if work.is_empty() {
                return Ok(Report { tenants });
            }
            // Before any tenant commits; only when there is work (a no-op run stays one query).
            let started = store.run_started().await?;
            let target = self.latest_version();
            let report = self
                .run_report(
                    tenants,
                    work,
                    &options,
                    move |this, tenant, read| async move {
                        let span = trace::migration::<B>("migrate", &tenant, target);
                        trace::within(span, this.migrate_one(&tenant, read))
                            .await
                            .map(|(outcome, _)| outcome)
                    },
                )
                .await;
            let changed = report.changed().count();
            if changed > 0 {
                store.run_finished(&started, changed, "migrate_all").await?;
            }
            Ok(report)
        })
        .await
    }

    /// Every tenant as up to date, and the tenants `migrate_all` has work for, each with its
    /// position and, where the store read it, its history.
    #[allow(clippy::type_complexity)]
    async fn migrate_work(
        &self,
    ) -> Result<(Vec<TenantResult>, Vec<(usize, Tenant, Option<History>)>), Error> {
        let store = self.store();
        if let Some(behind) = store.behind(self.migrations()).await? {
            return Ok(split(behind.into_iter().map(|(tenant, read)| {
                let work = read.map(Some);
                (tenant, work)
            })));
        }
        // A dirty tenant is run too, so the report names it (`Error::Dirty`).
        let has_work = |s: &TenantStatus| {
            !s.pending.is_empty() || !s.changed.is_empty() || !s.dirty.is_empty()
        };
        self.work_by_status(has_work).await
    }

    /// Every tenant as up to date, and those with work by their status (`has_work`), or every
    /// tenant where the store reads each tenant's own container to know (reading it costs what
    /// running the operation on it costs, which reads the same under the tenant's lock).
    #[allow(clippy::type_complexity)]
    async fn work_by_status<W>(
        &self,
        has_work: impl Fn(&TenantStatus) -> bool,
    ) -> Result<(Vec<TenantResult>, Vec<(usize, Tenant, Option<W>)>), Error> {
        if self.store().reads_every_tenant() {
            let tenants = self.store().list().await?;
            return Ok(split(tenants.into_iter().map(|t| (t, Some(None)))));
        }
        let statuses = self.container_status().await?;
        Ok(split(statuses.into_iter().map(|status| {
            let work = has_work(&status).then_some(None);
            (status.tenant, work)
        })))
    }

    /// Rolls every tenant back to `target` (see [`rollback`](Self::rollback)), like
    /// [`migrate_all`](Self::migrate_all): the tenants with a migration above `target`, up to
    /// `options.concurrency` at once, a failing tenant reported and the rest carried on.
    pub async fn rollback_all(
        &self,
        target: i64,
        options: MigrateOptions,
    ) -> Result<Report, Error> {
        let span = trace::run::<B>("rollback_all", Some(target));
        trace::within(span, async {
            let above = |versions: &[i64]| versions.iter().any(|v| *v > target);
            let has_work = |s: &TenantStatus| above(&s.applied) || above(&s.dirty);
            let (tenants, work) = self.work_by_status::<()>(has_work).await?;
            Ok(self
                .run_report(tenants, work, &options, move |this, tenant, _| async move {
                    let span = trace::migration::<B>("rollback", &tenant, Some(target));
                    trace::within(span, this.migrate_locked(&tenant, Direction::Down, target)).await
                })
                .await)
        })
        .await
    }

    /// Runs `run(handle, tenant, what it needs)` for each tenant of `work` (with its position
    /// in `tenants`), up to `options.concurrency` at once (default: the store's), each in a
    /// task of its own; reports progress after each and puts its result at its position. The
    /// tenants without work keep the result they came with (up to date).
    async fn run_report<W, Fut>(
        &self,
        tenants: Vec<TenantResult>,
        work: Vec<(usize, Tenant, W)>,
        options: &MigrateOptions,
        run: impl Fn(Self, Tenant, W) -> Fut,
    ) -> Report
    where
        Fut: Future<Output = Result<Outcome, Error>> + Send + 'static,
    {
        let concurrency = options
            .concurrency
            .unwrap_or_else(|| self.store().default_concurrency());
        run_report(
            tenants,
            work,
            concurrency,
            options.on_progress.as_ref(),
            |tenant, needs| run(self.clone(), tenant, needs),
        )
        .await
    }

    /// What [`migrate_all`](Self::migrate_all) would do to each tenant, from one status query,
    /// changing nothing (a dry run): [`Planned::Apply`] with the versions it would apply, or
    /// the error the run would stop that tenant with ([`Error::ChecksumMismatch`],
    /// [`Error::UnknownMigration`]). The same checks as the run, in the same order.
    pub async fn plan(&self) -> Result<Report<Planned>, Error> {
        let statuses = self.container_status().await?;
        let migrations = self.migrations();
        let tenants = statuses
            .into_iter()
            .map(|status| {
                let result = migrations.plan(&status).map(|pending| {
                    if pending.is_empty() {
                        Planned::UpToDate
                    } else {
                        Planned::Apply(pending)
                    }
                });
                TenantResult {
                    tenant: status.tenant,
                    result,
                }
            })
            .collect();
        Ok(Report { tenants })
    }

    /// Runs `f` for every tenant (or the tenants of [`EachOptions::only`]), up to
    /// `options.concurrency` at once, and reports each tenant's result. A failing tenant does
    /// not stop the others: the [`Report`] lists every tenant, in the order run, with what `f`
    /// returned for it. Like [`migrate_all`](Self::migrate_all), each tenant runs in a task of
    /// its own; dropping the returned future aborts them.
    ///
    /// Inside `f`, the tenant is also the [current tenant](crate::context) (and, with the
    /// `tracing` feature, in a `tenancy.lifecycle` span). `f` returns a `'static` future: clone
    /// what it needs (a pool is cheap to clone). A panic in `f` is resumed here.
    ///
    /// Fails as a whole only if listing the tenants fails.
    ///
    /// ```no_run
    /// # use tenancy_core::*;
    /// # async fn demo<M: TenantModel<Backend = sqlx::Postgres> + PerTenant>(tenants: Tenants, pool: sqlx::PgPool) -> Result<(), Error> {
    /// let report = tenants
    ///     .for_each(EachOptions::default().concurrency(8), move |tenant| {
    ///         let pool = pool.clone();
    ///         async move { M::query(&tenant).count(&pool).await }
    ///     })
    ///     .await?;
    /// for (tenant, error) in report.failed() {
    ///     eprintln!("{tenant}: {error}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn for_each<T, E, F, Fut>(
        &self,
        options: EachOptions<T, E>,
        f: F,
    ) -> Result<Report<T, E>, Error>
    where
        F: Fn(Tenant) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let span = trace::run::<B>("for_each", None);
        trace::within(span, async {
            let tenants = match options.tenants {
                Some(tenants) => tenants,
                None => self.list().await?,
            };
            let concurrency = options
                .concurrency
                .unwrap_or_else(|| self.pool().options().get_max_connections() as usize);
            let total = tenants.len();
            let mut results: Vec<Option<Result<T, E>>> = (0..total).map(|_| None).collect();
            let mut done = 0;
            run_bounded(
                tenants.clone(),
                concurrency,
                |tenant: Tenant| {
                    let span = trace::lifecycle::<B>("for_each", &tenant);
                    let work = context::with_tenant(tenant.clone(), f(tenant));
                    trace::within(span, work)
                },
                |index, result| {
                    done += 1;
                    if let Some(progress) = &options.on_progress {
                        progress(&Progress {
                            done,
                            total,
                            tenant: &tenants[index],
                            result: &result,
                        });
                    }
                    results[index] = Some(result);
                },
            )
            .await;
            let tenants = tenants
                .into_iter()
                .zip(results)
                .map(|(tenant, result)| TenantResult {
                    tenant,
                    result: result.expect("every tenant ran to completion"),
                })
                .collect();
            Ok(Report { tenants })
        })
        .await
    }
}
