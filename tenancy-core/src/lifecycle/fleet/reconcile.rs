//! Putting a [`Fleet`]'s map right after a process stopped part-way through an operation
//! that changes it. Each database's registry says which tenants it holds; the map says where
//! each one is. The rules, applied to each tenant whose fleet lock is free (an operation
//! holding it is still running):
//!
//! | the map says | registered in | what it means | done |
//! |---|---|---|---|
//! | `d` | `d` only | as it should be | nothing |
//! | `d` | `d` and others | a move stopped before the source's copy was dropped | the other copies dropped |
//! | `d` | `e` only | a move stopped after the source's copy was dropped, before the map switched | the map says `e` |
//! | `d` | nowhere | a drop or rename stopped before the map changed | taken out of the map |
//! | nothing | `e` only | a create (clone, import, rename) stopped before the map changed | the map says `e` |
//! | anything else | several, not `d` | two tenants of one name, made outside the fleet | reported, left alone |

use std::collections::{BTreeMap, BTreeSet};

use super::store::FleetStore;
use super::Fleet;
use crate::backend::Backend;
use crate::error::Error;
use crate::tenant::Tenant;

/// What [`Fleet::reconcile`] changed, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconciled {
    /// Tenants the map now names (or names elsewhere): `(tenant, database)`.
    pub placed: Vec<(String, String)>,
    /// Tenants taken out of the map: no database holds them.
    pub forgotten: Vec<String>,
    /// Copies dropped, of tenants the map names elsewhere: `(tenant, database)`.
    pub dropped: Vec<(String, String)>,
    /// Tenants held by an operation of another process meanwhile, left as they are.
    pub busy: Vec<String>,
    /// Tenants of one name in several databases, none of them the map's: left alone.
    pub conflicts: Vec<(String, Vec<String>)>,
}

impl Reconciled {
    /// Whether nothing was changed nor left alone.
    pub fn is_empty(&self) -> bool {
        self == &Reconciled::default()
    }
}

impl<B: Backend> Fleet<B> {
    /// Reads every database's registry and the map, and puts right what a process that
    /// stopped part-way through a create, drop, rename, clone, import or move left (the
    /// rules are in the README, "Tenants over several databases"), each tenant under its
    /// fleet lock; a tenant whose lock another operation holds is left (reported busy).
    /// [`Fleet::new`] runs it.
    pub async fn reconcile(&self) -> Result<Reconciled, Error> {
        let map: BTreeMap<String, String> =
            self.home().store().map_all().await?.into_iter().collect();
        let mut registered: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for i in 0..self.count() {
            for tenant in self.handle(i).list().await? {
                registered
                    .entry(tenant.as_str().to_owned())
                    .or_default()
                    .push(i);
            }
        }
        let names: BTreeSet<&String> = map.keys().chain(registered.keys()).collect();
        let mut done = Reconciled::default();
        for name in names {
            let here = registered.get(name).map_or(&[][..], |v| v.as_slice());
            let settled = map
                .get(name)
                .is_some_and(|d| here.len() == 1 && self.name_of(here[0]) == d);
            if !settled {
                self.settle(&Tenant::new(name.as_str())?, &mut done).await?;
            }
        }
        Ok(done)
    }

    /// Applies the rules to `tenant`, read again under its fleet lock.
    async fn settle(&self, tenant: &Tenant, done: &mut Reconciled) -> Result<(), Error> {
        let name = tenant.as_str().to_owned();
        let home = self.home();
        let outcome = home
            .operation(
                crate::lifecycle::store::Operation::Fleet,
                tenant,
                async |op| {
                    let store = home.store();
                    if !store.hold(op, tenant, false).await? {
                        return Ok(Step::Busy);
                    }
                    let mapped = store.map_in(op, tenant).await?;
                    let mut here = Vec::new();
                    for i in 0..self.count() {
                        if self.handle(i).exists(tenant.as_str()).await? {
                            here.push(i);
                        }
                    }
                    let mapped_at = mapped.as_deref().map(|d| self.index_of(d)).transpose()?;
                    let step = match (mapped_at, here.as_slice()) {
                        (Some(d), [only]) if *only == d => Step::Settled,
                        (Some(d), others) if others.contains(&d) => {
                            let mut dropped = Vec::new();
                            for &i in others.iter().filter(|&&i| i != d) {
                                self.handle(i).drop(tenant.as_str()).await?;
                                dropped.push(self.name_of(i).to_owned());
                            }
                            Step::Dropped(dropped)
                        }
                        (Some(_), []) => {
                            store.map_set(op, tenant, None).await?;
                            Step::Forgotten
                        }
                        (_, [only]) => {
                            store.map_set(op, tenant, Some(self.name_of(*only))).await?;
                            Step::Placed(self.name_of(*only).to_owned())
                        }
                        (None, []) => Step::Settled,
                        (_, several) => Step::Conflict(
                            several
                                .iter()
                                .map(|&i| self.name_of(i).to_owned())
                                .collect(),
                        ),
                    };
                    Ok(step)
                },
            )
            .await?;
        match outcome {
            Step::Settled => {}
            Step::Busy => done.busy.push(name),
            Step::Dropped(from) => done
                .dropped
                .extend(from.into_iter().map(|d| (name.clone(), d))),
            Step::Forgotten => {
                self.forget_route(tenant);
                done.forgotten.push(name);
            }
            Step::Placed(database) => {
                self.forget_route(tenant);
                done.placed.push((name, database));
            }
            Step::Conflict(databases) => done.conflicts.push((name, databases)),
        }
        Ok(())
    }
}

/// What [`Fleet::settle`] found and did.
enum Step {
    Settled,
    Busy,
    Dropped(Vec<String>),
    Forgotten,
    Placed(String),
    Conflict(Vec<String>),
}
