//! Moving a tenant of a [`Fleet`] to another database. Under the tenant's fleet lock (home),
//! one operation on the source holds the tenant's lock, holds its writes back
//! ([`FleetStore::fence`]; reads go on) and streams it as an archive into an import on the
//! target (a pipe in memory: flat in the tenant's size); the target's copy commits, the two
//! digests are compared table by table, and in the same source operation the tenant is
//! dropped there, which commits; then the map names the target. The source's commit is the
//! switch: a crash before it leaves the tenant whole in the source (the target's copy is
//! dropped by [`Fleet::reconcile`]), after it whole in the target only (the map is put right
//! by `reconcile`). Writes held by the fence fail once the source's copy is gone
//! ([`Error::UnknownTenant`]): they never land there; run again, they reach the target.

use std::time::{Duration, Instant};

use tokio::io::BufReader;
use tokio::sync::oneshot;

use super::store::{Digest, FleetStore};
use super::Fleet;
use crate::backend::Backend;
use crate::error::Error;
use crate::lifecycle::operations::Expected;
use crate::lifecycle::report::Moved;
use crate::lifecycle::store::{Operation, Store};
use crate::lifecycle::Tenants;
use crate::tenant::Tenant;

/// The pipe's buffer between the export and the import of a move.
const PIPE: usize = 256 * 1024;

/// What [`Fleet::move_tenant`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TenantMoved {
    /// The tenant.
    pub tenant: Tenant,
    /// The database it was in.
    pub from: String,
    /// The database it is in now.
    pub to: String,
    /// Its tables.
    pub tables: u64,
    /// Its rows, in all tables.
    pub rows: u64,
    /// How long its writes were held back: from the fence until the source's copy was gone.
    pub held: Duration,
}

impl<B: Backend> Fleet<B> {
    /// Moves tenant `name` to database `to`: its tables and rows and migration history are
    /// copied there while its writes wait (its reads go on in the old database), the copy is
    /// checked against the original (row counts and a checksum of every table: else
    /// [`Error::Diverged`] and nothing moved), the original dropped and the map switched.
    /// Statements that waited, and those of other processes that still route to the old
    /// database ([`with_route_ttl`](Self::with_route_ttl)), fail with
    /// [`Error::UnknownTenant`] and write nothing; run again, they reach the new one.
    ///
    /// Refused, nothing moved: a name the map does not have ([`Error::NotATenant`]), `to` the
    /// tenant's database or no database of the fleet, a row-level tenant or a tenant holding
    /// row-level tenants' rows ([`Error::Unsupported`]; move their container as a whole, once
    /// it holds none).
    /// A process that stops part-way leaves the tenant whole in one of the two databases; the
    /// next [`Fleet::new`] or [`reconcile`](Self::reconcile) makes the map say which and drops
    /// the other copy.
    pub async fn move_tenant(&self, name: impl AsRef<str>, to: &str) -> Result<TenantMoved, Error> {
        self.home().store().movable()?;
        let tenant = self.parse(name)?;
        let to_i = self.index_of(to)?;
        let (from, moved, held) = self
            .holding(&[&tenant], async |op| {
                let store = self.home().store();
                let Some(from) = store.map_in(op, &tenant).await? else {
                    return Err(Error::NotATenant {
                        tenant: tenant.clone(),
                    });
                };
                let from_i = self.index_of(&from)?;
                if from_i == to_i {
                    return Err(Error::Unsupported {
                        operation: "move_tenant",
                        reason: format!("tenant \"{tenant}\" is in database \"{to}\" already"),
                    });
                }
                let (source, target) = (self.handle(from_i), self.handle(to_i));
                // A copy a move that stopped part-way left (the map names the source).
                if target.exists(tenant.as_str()).await? {
                    target.drop(tenant.as_str()).await?;
                }
                let (moved, held) = source.move_out(&tenant, target).await?;
                store.map_set(op, &tenant, Some(to)).await?;
                Ok((from, moved, held))
            })
            .await?;
        self.remember(tenant.as_str(), to_i);
        Ok(TenantMoved {
            tenant,
            from,
            to: to.to_owned(),
            tables: moved.tables,
            rows: moved.rows,
            held,
        })
    }
}

const COPY_FAILED: &str = "the copy failed";

/// What the source side of a move fails with when the copy did (replaced by the copy's error).
fn copy_failed() -> Error {
    Error::Unsupported {
        operation: "move_tenant",
        reason: COPY_FAILED.to_owned(),
    }
}

/// Refuses a copy whose digest is not its source's.
fn compare(tenant: &Tenant, ours: &[Digest], theirs: &[Digest]) -> Result<(), Error> {
    let diverged = |table: &str, detail: String| Error::Diverged {
        tenant: tenant.clone(),
        table: table.to_owned(),
        detail,
    };
    for d in ours {
        match theirs.iter().find(|t| t.table == d.table) {
            None => return Err(diverged(&d.table, "the copy has no such table".to_owned())),
            Some(t) if t.rows != d.rows => {
                return Err(diverged(
                    &d.table,
                    format!("{} rows in the copy, {} in the source", t.rows, d.rows),
                ))
            }
            Some(t) if t.sum != d.sum => {
                return Err(diverged(
                    &d.table,
                    "the copy's rows differ from the source's (checksum)".to_owned(),
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = theirs
        .iter()
        .find(|t| !ours.iter().any(|d| d.table == t.table))
    {
        return Err(diverged(
            &extra.table,
            "the source has no such table".to_owned(),
        ));
    }
    Ok(())
}

impl<B: Backend> Tenants<B> {
    /// Copies `tenant` (one of its own) into `target` and drops it here, its writes held from
    /// before the copy until it is gone; what the copy moved and how long writes were held.
    pub(crate) async fn move_out(
        &self,
        tenant: &Tenant,
        target: &Tenants<B>,
    ) -> Result<(Moved, Duration), Error> {
        self.refuse_row_level_source("move_tenant", "moved", tenant)
            .await?;
        let (writer, reader) = tokio::io::duplex(PIPE);
        // The copy's digest, or nothing if the copy failed (its error is the copy's result).
        let (digested, copy_digest) = oneshot::channel::<Option<Vec<Digest>>>();
        // A task of its own, so that the export and the import (each busy with its rows on the
        // client) run on two threads where the runtime has them, as a shell pipe's two ends.
        let (source, moving) = (self.clone(), tenant.clone());
        let source = tokio::spawn(async move {
            let tenant = &moving;
            source
                .locked(Operation::Move, tenant, Expected::Own, async |op| {
                    source.refuse_holding(op, tenant).await?;
                    let store = source.store();
                    store.fence(op, tenant).await?;
                    let fenced = Instant::now();
                    let moved = source.archive_into(op, tenant, writer).await?;
                    let ours = store.digest(op, tenant).await?;
                    let Ok(Some(theirs)) = copy_digest.await else {
                        return Err(copy_failed());
                    };
                    compare(tenant, &ours, &theirs)?;
                    let found = store.inspect(op, tenant).await?;
                    store.remove(op, tenant, found).await?;
                    Ok((moved, fenced))
                })
                .await
        });
        let copy = async {
            // Whether the import committed (a copy is there to drop if the move fails), and
            // the copy's digest or what failed it.
            let (imported, copied) =
                match target.import(BufReader::new(reader), tenant.as_str()).await {
                    Ok(_) => {
                        let digest = target
                            .locked(Operation::Move, tenant, Expected::Own, async |op| {
                                target.store().digest(op, tenant).await
                            })
                            .await;
                        (true, digest)
                    }
                    Err(err) => (false, Err(err)),
                };
            match copied {
                Ok(digest) => {
                    let _ = digested.send(Some(digest));
                    (imported, Ok(()))
                }
                Err(err) => {
                    let _ = digested.send(None);
                    (imported, Err(err))
                }
            }
        };
        let (imported, copied) = copy.await;
        let moved = match source.await {
            Ok(moved) => moved,
            Err(failed) => std::panic::resume_unwind(failed.into_panic()),
        };
        let err = match moved {
            Ok((moved, fenced)) => return Ok((moved, fenced.elapsed())),
            Err(err) => err,
        };
        // The source's commit may have been lost after it happened: a copy is dropped only if
        // the source still has the tenant.
        if imported && self.exists(tenant.as_str()).await.unwrap_or(false) {
            let _ = target.drop(tenant.as_str()).await;
        }
        Err(match (err, copied) {
            // Where the copy failed first, the source's error (the pipe closed, no digest)
            // follows from it; else the copy's (an archive cut short) follows from the source's.
            (Error::Io { .. }, Err(copy)) => copy,
            (Error::Unsupported { reason, .. }, Err(copy)) if reason == COPY_FAILED => copy,
            (err, _) => err,
        })
    }
}
