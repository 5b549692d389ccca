//! The rows of a tenant copied into its clone on the server, in the clone's transaction: what
//! the catalog says of the source's tables and sequences, and the one batch that copies them.

use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;

use super::port::{deferrable, qualified, Deferred};
use super::{schema_rows, sql};
use crate::error::Error;
use crate::ident::double_quoted;
use crate::lifecycle::copy::referenced_first;
use crate::tenant::Tenant;

/// Each ordinary table of a schema (partitions included, their parents hold no rows): its
/// columns a copy writes (generated ones are computed again) and, for each of them, the name
/// of its type if the type belongs to the schema (an enum, a domain, a composite or an array
/// of one; `NULL` otherwise), both from one walk of the columns so they stay aligned; the
/// tables of the schema it references, and whether it has triggers of its own (not counting
/// the placement guard's, which a copy's target does not have: on Citus turning triggers off
/// is refused).
const TABLES: &str = "SELECT c.relname::text, \
     COALESCE(cols.names, '{}'), COALESCE(cols.own_types, '{}'), \
     ARRAY(SELECT p.relname::text FROM pg_constraint f JOIN pg_class p ON p.oid = f.confrelid \
           WHERE f.conrelid = c.oid AND f.contype = 'f' AND p.relnamespace = c.relnamespace), \
     EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal \
             AND t.tgname <> 'tenancy_placed') \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     CROSS JOIN LATERAL (SELECT array_agg(a.attname::text ORDER BY a.attnum) AS names, \
           array_agg(CASE WHEN ty.typnamespace = c.relnamespace THEN ty.typname::text END \
                     ORDER BY a.attnum) AS own_types \
           FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid WHERE a.attrelid = c.oid \
           AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') cols \
     WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1";

/// The sequences of a schema (those of `serial` and identity columns included).
pub(super) const SEQUENCES: &str = "SELECT c.relname::text FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relkind = 'S' ORDER BY 1";

/// The ordinary tables of a schema that hold pages (`pg_relation_size` of the main fork): in a
/// schema the transaction has just made, those some statement wrote rows into. The others never
/// held a row, and emptying them would cost a `TRUNCATE` each (which flushes the WAL and scans
/// the shared buffers) for nothing.
const WRITTEN: &str = "SELECT c.relname::text FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relkind = 'r' AND pg_relation_size(c.oid) > 0 ORDER BY 1";

/// A table as the copy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    pub(crate) name: String,
    pub(crate) columns: Vec<String>,
    /// Per column, its type's name where the type is the source schema's own: the copy reads
    /// it as text and casts it to the clone's type of that name (two schemas' enums of one
    /// name are two types, with no cast between them).
    pub(crate) own_types: Vec<Option<String>>,
    pub(crate) references: Vec<String>,
    pub(crate) triggers: bool,
}

/// Every ordinary table of `schema` as a copy sees it ([`TABLES`]), by name.
pub(super) async fn tables_of(
    conn: &mut PgConnection,
    persistent: bool,
    schema: &Tenant,
) -> Result<Vec<Table>, sqlx::Error> {
    type Row = (String, Vec<String>, Vec<Option<String>>, Vec<String>, bool);
    let rows: Vec<Row> = schema_rows(conn, persistent, TABLES, schema).await?;
    Ok(rows
        .into_iter()
        .map(|(name, columns, own_types, references, triggers)| Table {
            name,
            columns,
            own_types,
            references,
            triggers,
        })
        .collect())
}

/// Copies every row of `from`'s tables into `to`'s, on `conn` inside the operation's
/// transaction (`to` made and migrated in it), and sets `to`'s sequences to `from`'s.
///
/// With `defer`, `to`'s indexes, keys and foreign keys are dropped before the rows are copied
/// and made again after, in the same batch (built once over all the rows instead of maintained
/// row by row, as an import does; the caller leaves it off on Citus). The drops go at the head
/// of that batch: after the migrations' statements and three catalog reads, the copy is one
/// round trip. Also only with `defer` (plain PostgreSQL), only the tables of `to` the
/// migrations wrote rows into are emptied first ([`WRITTEN`]); on Citus, whose distributed
/// tables keep their rows in shards, all of them are.
pub(crate) async fn copy_rows(
    conn: &mut PgConnection,
    persistent: bool,
    from: &Tenant,
    to: &Tenant,
    defer: bool,
) -> Result<(), Error> {
    let tables = tables_of(conn, persistent, from).await?;
    let sequences: Vec<(String,)> = schema_rows(conn, persistent, SEQUENCES, from).await?;
    let sequences: Vec<String> = sequences.into_iter().map(|(s,)| s).collect();
    let (deferred, written): (Deferred, Vec<String>) = match defer {
        true => {
            let written: Vec<(String,)> = schema_rows(conn, persistent, WRITTEN, to).await?;
            let written = written.into_iter().map(|(t,)| t).collect();
            (deferrable(conn, persistent, to).await?, written)
        }
        false => {
            let all = tables.iter().map(|t| t.name.clone()).collect();
            (Deferred::default(), all)
        }
    };
    let batch = copy_batch(from, to, tables, &written, &deferred, &sequences);
    sqlx::raw_sql(AssertSqlSafe(batch)).execute(conn).await?;
    Ok(())
}

/// The copy as one batch, run in a `REPEATABLE READ` transaction (so every table of `from` is
/// read as of one moment): `deferred`'s drops first (`to`'s indexes and keys, see
/// [`deferrable`]), those of `to`'s tables listed in `written` emptied of what the migrations
/// wrote (the others hold no row), each table filled by
/// `INSERT … SELECT` with the table's own triggers off, referenced tables first, then
/// `deferred`'s statements that make the indexes and keys again, then each sequence set to
/// where `from`'s is.
pub(crate) fn copy_batch(
    from: &Tenant,
    to: &Tenant,
    tables: Vec<Table>,
    written: &[String],
    deferred: &Deferred,
    sequences: &[String],
) -> String {
    let mut batch = deferred.drop.clone();
    let tables: Vec<Table> = tables.into_iter().filter(|t| !t.columns.is_empty()).collect();
    let names: Vec<String> = tables
        .iter()
        .filter(|t| written.contains(&t.name))
        .map(|t| qualified(to, &t.name))
        .collect();
    if !names.is_empty() {
        batch.push_str(&format!("TRUNCATE {};\n", names.join(", ")));
    }
    let graph = tables
        .iter()
        .map(|t| (t.name.clone(), t.references.clone()))
        .collect();
    for name in referenced_first(graph) {
        let Some(table) = tables.iter().find(|t| t.name == name) else {
            continue;
        };
        let target = qualified(to, &table.name);
        let columns: Vec<String> = table.columns.iter().map(|c| double_quoted(c)).collect();
        let selected: Vec<String> = columns
            .iter()
            .zip(&table.own_types)
            .map(|(column, own)| match own {
                Some(ty) => format!("{column}::text::{}", qualified(to, ty)),
                None => column.clone(),
            })
            .collect();
        let (columns, selected) = (columns.join(", "), selected.join(", "));
        if table.triggers {
            batch.push_str(&format!("ALTER TABLE {target} DISABLE TRIGGER USER;\n"));
        }
        batch.push_str(&format!(
            "INSERT INTO {target} ({columns}) OVERRIDING SYSTEM VALUE SELECT {selected} FROM ONLY {};\n",
            qualified(from, &table.name)
        ));
        if table.triggers {
            batch.push_str(&format!("ALTER TABLE {target} ENABLE TRIGGER USER;\n"));
        }
    }
    for statement in &deferred.remake {
        batch.push_str(statement);
        batch.push_str(";\n");
    }
    for sequence in sequences {
        batch.push_str(&format!(
            "SELECT setval({}::regclass, last_value, is_called) FROM {};\n",
            sql::literal(&qualified(to, sequence)),
            qualified(from, sequence)
        ));
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, columns: &[&str], references: &[&str], triggers: bool) -> Table {
        Table {
            name: name.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            own_types: columns
                .iter()
                .map(|c| (*c == "mood").then(|| "mo\"od".to_string()))
                .collect(),
            references: references.iter().map(|r| r.to_string()).collect(),
            triggers,
        }
    }

    #[test]
    fn the_batch_drops_keys_empties_written_tables_copies_referenced_first_remakes_keys_sets_sequences() {
        let (from, to) = (Tenant::new("tpl").unwrap(), Tenant::new("acme").unwrap());
        let batch = copy_batch(
            &from,
            &to,
            vec![
                table("badges", &["id", "guard_id", "mood"], &["guards"], false),
                table("guards", &["id", "na\"me"], &[], true),
                table("only_generated", &[], &[], false),
            ],
            // Of the tables copied into, only guards was written to (badges never held a row).
            &["guards".into(), "only_generated".into()],
            &Deferred {
                drop: "ALTER TABLE \"acme\".\"guards\" DROP CONSTRAINT \"guards_pkey\";\n".into(),
                remake: vec![
                    "ALTER TABLE \"acme\".\"guards\" ADD CONSTRAINT \"guards_pkey\" PRIMARY KEY (id)".into(),
                ],
            },
            &["guards_id_seq".into(), "o'dd".into()],
        );
        assert_eq!(
            batch,
            "ALTER TABLE \"acme\".\"guards\" DROP CONSTRAINT \"guards_pkey\";\n\
             TRUNCATE \"acme\".\"guards\";\n\
             ALTER TABLE \"acme\".\"guards\" DISABLE TRIGGER USER;\n\
             INSERT INTO \"acme\".\"guards\" (\"id\", \"na\"\"me\") OVERRIDING SYSTEM VALUE SELECT \"id\", \"na\"\"me\" FROM ONLY \"tpl\".\"guards\";\n\
             ALTER TABLE \"acme\".\"guards\" ENABLE TRIGGER USER;\n\
             INSERT INTO \"acme\".\"badges\" (\"id\", \"guard_id\", \"mood\") OVERRIDING SYSTEM VALUE SELECT \"id\", \"guard_id\", \"mood\"::text::\"acme\".\"mo\"\"od\" FROM ONLY \"tpl\".\"badges\";\n\
             ALTER TABLE \"acme\".\"guards\" ADD CONSTRAINT \"guards_pkey\" PRIMARY KEY (id);\n\
             SELECT setval('\"acme\".\"guards_id_seq\"'::regclass, last_value, is_called) FROM \"tpl\".\"guards_id_seq\";\n\
             SELECT setval('\"acme\".\"o''dd\"'::regclass, last_value, is_called) FROM \"tpl\".\"o'dd\";\n"
        );
    }
}
