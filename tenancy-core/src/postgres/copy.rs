//! The rows of a tenant copied into its clone on the server, in the clone's transaction: what
//! the catalog says of the source's tables and sequences, and the one batch that copies them.

use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;

use super::sql;
use crate::error::Error;
use crate::ident::double_quoted;
use crate::lifecycle::copy::referenced_first;
use crate::tenant::Tenant;

/// Each ordinary table of a schema (partitions included, their parents hold no rows): its
/// columns a copy writes (generated ones are computed again), the tables of the schema it
/// references, and whether it has triggers of its own.
const TABLES: &str = "SELECT c.relname::text, \
     ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid \
           AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum), \
     ARRAY(SELECT p.relname::text FROM pg_constraint f JOIN pg_class p ON p.oid = f.confrelid \
           WHERE f.conrelid = c.oid AND f.contype = 'f' AND p.relnamespace = c.relnamespace), \
     EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1";

/// The sequences of a schema (those of `serial` and identity columns included).
const SEQUENCES: &str = "SELECT c.relname::text FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relkind = 'S' ORDER BY 1";

/// A table as the copy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    pub(crate) name: String,
    pub(crate) columns: Vec<String>,
    pub(crate) references: Vec<String>,
    pub(crate) triggers: bool,
}

/// Copies every row of `from`'s tables into `to`'s, on `conn` inside the operation's
/// transaction (`to` made and migrated in it), and sets `to`'s sequences to `from`'s.
pub(crate) async fn copy_rows(
    conn: &mut PgConnection,
    persistent: bool,
    from: &Tenant,
    to: &Tenant,
) -> Result<(), Error> {
    let rows: Vec<(String, Vec<String>, Vec<String>, bool)> = sqlx::query_as(TABLES)
        .persistent(persistent)
        .bind(from.as_str())
        .fetch_all(&mut *conn)
        .await?;
    let tables = rows
        .into_iter()
        .map(|(name, columns, references, triggers)| Table {
            name,
            columns,
            references,
            triggers,
        })
        .collect();
    let sequences: Vec<String> = sqlx::query_scalar(SEQUENCES)
        .persistent(persistent)
        .bind(from.as_str())
        .fetch_all(&mut *conn)
        .await?;
    let batch = copy_batch(from, to, tables, &sequences);
    sqlx::raw_sql(AssertSqlSafe(batch)).execute(conn).await?;
    Ok(())
}

/// The copy as one batch, run in a `REPEATABLE READ` transaction (so every table of `from` is
/// read as of one moment): `to`'s tables emptied of what the migrations wrote, each filled by
/// `INSERT … SELECT` with the table's own triggers off, referenced tables first, then each
/// sequence set to where `from`'s is.
pub(crate) fn copy_batch(
    from: &Tenant,
    to: &Tenant,
    tables: Vec<Table>,
    sequences: &[String],
) -> String {
    let qualified = |schema: &Tenant, name: &str| format!("{}.{}", schema.quoted(), double_quoted(name));
    let mut batch = String::new();
    let tables: Vec<Table> = tables.into_iter().filter(|t| !t.columns.is_empty()).collect();
    if !tables.is_empty() {
        let names: Vec<String> = tables.iter().map(|t| qualified(to, &t.name)).collect();
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
        let columns = columns.join(", ");
        if table.triggers {
            batch.push_str(&format!("ALTER TABLE {target} DISABLE TRIGGER USER;\n"));
        }
        batch.push_str(&format!(
            "INSERT INTO {target} ({columns}) OVERRIDING SYSTEM VALUE SELECT {columns} FROM ONLY {};\n",
            qualified(from, &table.name)
        ));
        if table.triggers {
            batch.push_str(&format!("ALTER TABLE {target} ENABLE TRIGGER USER;\n"));
        }
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
            references: references.iter().map(|r| r.to_string()).collect(),
            triggers,
        }
    }

    #[test]
    fn the_batch_empties_copies_referenced_tables_first_and_sets_sequences() {
        let (from, to) = (Tenant::new("tpl").unwrap(), Tenant::new("acme").unwrap());
        let batch = copy_batch(
            &from,
            &to,
            vec![
                table("badges", &["id", "guard_id"], &["guards"], false),
                table("guards", &["id", "na\"me"], &[], true),
                table("only_generated", &[], &[], false),
            ],
            &["guards_id_seq".into(), "o'dd".into()],
        );
        assert_eq!(
            batch,
            "TRUNCATE \"acme\".\"badges\", \"acme\".\"guards\";\n\
             ALTER TABLE \"acme\".\"guards\" DISABLE TRIGGER USER;\n\
             INSERT INTO \"acme\".\"guards\" (\"id\", \"na\"\"me\") OVERRIDING SYSTEM VALUE SELECT \"id\", \"na\"\"me\" FROM ONLY \"tpl\".\"guards\";\n\
             ALTER TABLE \"acme\".\"guards\" ENABLE TRIGGER USER;\n\
             INSERT INTO \"acme\".\"badges\" (\"id\", \"guard_id\") OVERRIDING SYSTEM VALUE SELECT \"id\", \"guard_id\" FROM ONLY \"tpl\".\"badges\";\n\
             SELECT setval('\"acme\".\"guards_id_seq\"'::regclass, last_value, is_called) FROM \"tpl\".\"guards_id_seq\";\n\
             SELECT setval('\"acme\".\"o''dd\"'::regclass, last_value, is_called) FROM \"tpl\".\"o'dd\";\n"
        );
    }
}
