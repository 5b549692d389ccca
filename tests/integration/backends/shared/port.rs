//! Export and import of a tenant on one backend: an imported tenant holds exactly the exported
//! rows (read from the stored tables) and history, nothing of another tenant travels, keys
//! continue after the imported ones, and an archive that is cut, changed, from other
//! migrations, or unfit for the target is refused with a typed error, leaving nothing.

/// The tests of this concern, for the backend module whose `mod` they expand in.
macro_rules! behaviours {
    () => {
        use std::sync::{Arc, Mutex};

        use sqlx::migrate::{Migration, MigrationType};
        use tenancy::{Error, Tenant, TenantEvent, TenantModel};

        use super::{
            container_exists, copy_fault, exec, pool, q, raw_assignments, raw_guards,
            registry_rows, v1, Guard, Lifecycle, ASSIGNMENTS,
        };
        use crate::assert_err;
        use crate::lifecycle_support::migration;

        fn name(prefix: &str) -> String {
            tenancy_testdb::unique_name(prefix)
        }

        /// v1 (`guards`), then `assignments` referencing it and a seed guard.
        fn migrations() -> Vec<Migration> {
            let mut all = v1();
            all.push(migration(2, MigrationType::Simple, ASSIGNMENTS));
            all
        }

        /// A tenant of `l` holding Abu and Bea (the seed guard deleted), an assignment each,
        /// and text that JSON must escape.
        async fn source(pool: &super::Pool, l: &Lifecycle) -> Tenant {
            let t = l.tenants.create(name("src")).await.unwrap();
            exec(pool, format!("DELETE FROM {}.guards", q(&t))).await;
            for (n, p) in [("Abu", "Gate \"north\"\n✓"), ("Bea", "Captain")] {
                Guard::new(n, p).insert(&l.tenants, &t).await.unwrap();
            }
            let t_ = q(&t);
            exec(
                pool,
                format!("INSERT INTO {t_}.assignments (guard_id, body) SELECT id, name FROM {t_}.guards"),
            )
            .await;
            t
        }

        async fn export(l: &Lifecycle, t: &Tenant) -> String {
            let mut bytes = Vec::new();
            let moved = l.tenants.export(t, &mut bytes).await.unwrap();
            assert_eq!((moved.tables, moved.rows), (2, 4));
            String::from_utf8(bytes).unwrap()
        }

        /// Nothing of `to` anywhere: no container (file), no registry row, not listed.
        async fn assert_absent(pool: &super::Pool, l: &Lifecycle, to: &str) {
            assert!(!container_exists(pool, to).await, "{to}'s container is left");
            assert_eq!(registry_rows(pool, &l.registry, to).await, 0, "{to} is in the registry");
            assert!(!l.tenants.exists(to).await.unwrap());
        }

        #[tokio::test]
        async fn an_imported_tenant_has_exactly_the_exported_rows_and_keys_continue() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let src = source(&pool, &l).await;
            let other = l.tenants.create(name("other")).await.unwrap();
            Guard::new("Zed", "Elsewhere")
                .insert(&l.tenants, &other)
                .await
                .unwrap();
            let (guards, assignments) = (
                raw_guards(&pool, &src).await,
                raw_assignments(&pool, &src).await,
            );
            let archive = export(&l, &src).await;
            assert!(!archive.contains("Zed"), "{archive}");
            assert!(!archive.contains("Seed"), "{archive}");
            let events = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::clone(&events);
            l.tenants
                .subscribe(move |e: &TenantEvent| seen.lock().unwrap().push(e.clone()));

            let copy = l
                .tenants
                .import(archive.as_bytes(), name("copy"))
                .await
                .unwrap();

            // The stored tables, read directly: the same rows with the same keys (the seed
            // guard the migration wrote replaced), the generated column computed again.
            assert_eq!(raw_guards(&pool, &copy).await, guards);
            assert_eq!(raw_assignments(&pool, &copy).await, assignments);
            assert_eq!(*events.lock().unwrap(), [TenantEvent::Created(copy.clone())]);
            let status = l.tenants.status_of(copy.as_str()).await.unwrap();
            assert_eq!(status.applied, [1, 2]);
            assert!(status.pending.is_empty());

            // Generated keys continue after the imported ones.
            Guard::new("Cy", "Guard")
                .insert(&l.tenants, &copy)
                .await
                .unwrap();
            let c = q(&copy);
            exec(
                &pool,
                format!(
                    "INSERT INTO {c}.assignments (guard_id, body) \
                     SELECT id, name FROM {c}.guards WHERE name = 'Cy'"
                ),
            )
            .await;
            let after = raw_assignments(&pool, &copy).await;
            assert_eq!(after.len(), 3);
            assert!(after[2].0 > assignments[1].0, "{after:?}");
            assert!(after[2].1 > assignments.iter().map(|r| r.1).max().unwrap(), "{after:?}");

            // Exported again, the copy reads as the source did (its new rows aside).
            exec(&pool, format!("DELETE FROM {c}.assignments WHERE body = 'Cy'")).await;
            exec(&pool, format!("DELETE FROM {c}.guards WHERE name = 'Cy'")).await;
            let again = export(&l, &copy).await;
            let rows = |a: &str| a.lines().filter(|l| l.starts_with('[')).map(str::to_owned).collect::<Vec<_>>();
            assert_eq!(rows(&again), rows(&archive));
            // The source is unchanged.
            assert_eq!(raw_guards(&pool, &src).await, guards);
        }

        #[tokio::test]
        async fn a_cut_changed_or_foreign_archive_is_refused_and_nothing_is_created() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let src = source(&pool, &l).await;
            let archive = export(&l, &src).await;
            let to = name("to");

            // Cut short after the rows of the first table were written.
            let lines: Vec<&str> = archive.lines().collect();
            let cut: String = lines[..lines.len() - 3].iter().map(|l| format!("{l}\n")).collect();
            assert_err!(
                l.tenants.import(cut.as_bytes(), &to).await,
                Error::Archive { line, .. } if line as usize == lines.len() - 2
            );
            assert_absent(&pool, &l, &to).await;
            // Cut in the middle of a line.
            let half = &archive[..archive.len() / 2];
            assert_err!(l.tenants.import(half.as_bytes(), &to).await, Error::Archive { .. });
            assert_absent(&pool, &l, &to).await;
            // A value changed: the table's hash differs.
            let changed = archive.replacen("\"Bea\"", "\"Bex\"", 1);
            assert_ne!(changed, archive);
            assert_err!(l.tenants.import(changed.as_bytes(), &to).await, Error::Archive { .. });
            assert_absent(&pool, &l, &to).await;
            // The header changed.
            let header = archive.replacen("\"tables\":[", "\"tables\": [", 1);
            assert_ne!(header, archive);
            assert_err!(l.tenants.import(header.as_bytes(), &to).await, Error::Archive { .. });
            assert_absent(&pool, &l, &to).await;
            // Not an archive at all.
            assert_err!(
                l.tenants.import(&b"id,name\n1,Abu\n"[..], &to).await,
                Error::Archive { line: 1, .. }
            );
            assert_absent(&pool, &l, &to).await;
            // A handle with other migrations (only v1).
            let older = l.with_migrations(&pool, v1());
            assert_err!(older.import(archive.as_bytes(), &to).await, Error::Archive { line: 1, .. });
            assert_absent(&pool, &l, &to).await;
            // A taken name: refused, the tenant unchanged.
            let before = raw_guards(&pool, &src).await;
            assert_err!(
                l.tenants.import(archive.as_bytes(), &src).await,
                Error::TenantExists { ref tenant } if *tenant == src
            );
            assert_eq!(raw_guards(&pool, &src).await, before);
            assert_err!(
                l.tenants.import(archive.as_bytes(), "Not A Name").await,
                Error::InvalidTenantName(_)
            );
            // A column whose kind cannot map (the archive says `position` holds bytes).
            let unfit = crate::backends::shared::port::edit_header(&archive, |header| {
                let guards = header["tables"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|t| t["name"] == "guards")
                    .unwrap();
                for column in guards["columns"].as_array_mut().unwrap() {
                    if column["name"] == "position" {
                        column["kind"] = "bytes".into();
                    }
                }
            });
            assert_err!(
                l.tenants.import(unfit.as_bytes(), &to).await,
                Error::Unmappable(ref u) if u.table == "guards" && u.column == "position"
            );
            assert_absent(&pool, &l, &to).await;

            // And the whole archive imports.
            let copy = l.tenants.import(archive.as_bytes(), &to).await.unwrap();
            assert_eq!(raw_guards(&pool, &copy).await, before);
        }

        #[tokio::test]
        async fn an_import_failing_part_way_leaves_no_trace() {
            // The server refuses the second table's rows (a key twice), after the first
            // table's were written.
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let src = source(&pool, &l).await;
            let archive = export(&l, &src).await;
            let twice = crate::backends::shared::port::edit_rows(&archive, "assignments", |rows| {
                let first = rows[0].clone();
                rows.push(first);
            });
            let to = name("to");

            let err = l.tenants.import(twice.as_bytes(), &to).await.unwrap_err();
            assert!(
                matches!(err, Error::Database { tenant: Some(ref t), .. } if t.as_str() == to),
                "{err:?}"
            );
            assert_absent(&pool, &l, &to).await;
            let _ = copy_fault;
        }

        #[tokio::test]
        async fn exporting_what_is_no_tenant_is_refused() {
            let pool = pool().await;
            let l = Lifecycle::new(&pool, migrations()).await;
            let mut out = Vec::new();
            let missing = name("missing");
            assert_err!(
                l.tenants.export(&missing, &mut out).await,
                Error::NotATenant { ref tenant } if tenant.as_str() == missing
            );
            assert!(out.is_empty());
        }
    };
}
pub(crate) use behaviours;

/// The archive format's hash (64-bit FNV-1a) of `lines`, each with its `\n`.
fn fnv1a64<'a>(lines: impl IntoIterator<Item = &'a String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for line in lines {
        for b in line.bytes().chain([b'\n']) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

fn joined(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// `archive` with its header (first line) changed by `edit`, and the trailer's hash of the
/// header made to match, so only the change itself can be refused.
pub fn edit_header(archive: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut lines: Vec<String> = archive.lines().map(str::to_owned).collect();
    let mut header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    edit(&mut header);
    lines[0] = header.to_string();
    let last = lines.len() - 1;
    let mut trailer: serde_json::Value = serde_json::from_str(&lines[last]).unwrap();
    trailer["header_fnv1a64"] = fnv1a64(&lines[..1]).into();
    lines[last] = trailer.to_string();
    joined(&lines)
}

/// `archive` with the row lines of `table` changed by `edit`, and the table's end line and the
/// trailer made to match (row counts, hash), so only the change itself can be refused.
pub fn edit_rows(archive: &str, table: &str, edit: impl FnOnce(&mut Vec<String>)) -> String {
    let lines: Vec<String> = archive.lines().map(str::to_owned).collect();
    let opening = serde_json::json!({ "table": table }).to_string();
    let start = lines.iter().position(|l| *l == opening).unwrap();
    let end = start
        + 1
        + lines[start + 1..]
            .iter()
            .position(|l| !l.starts_with('['))
            .unwrap();
    let mut rows = lines[start + 1..end].to_vec();
    let before = rows.len() as i64;
    edit(&mut rows);
    let mut end_line: serde_json::Value = serde_json::from_str(&lines[end]).unwrap();
    end_line["rows"] = rows.len().into();
    end_line["fnv1a64"] = fnv1a64(&rows).into();
    let last = lines.len() - 1;
    let mut trailer: serde_json::Value = serde_json::from_str(&lines[last]).unwrap();
    trailer["rows"] = (trailer["rows"].as_i64().unwrap() + rows.len() as i64 - before).into();
    let mut out = lines[..=start].to_vec();
    out.extend(rows);
    out.push(end_line.to_string());
    out.extend(lines[end + 1..last].iter().cloned());
    out.push(trailer.to_string());
    joined(&out)
}
