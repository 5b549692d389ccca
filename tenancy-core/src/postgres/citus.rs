//! Citus: the PostgreSQL backend on a Citus cluster (schema-based sharding, Citus 12+). Every
//! Citus-specific statement and every Citus error text the crate looks at is here.
//!
//! On Citus each tenant schema is a *distributed schema*: its tables live whole on one worker
//! node. What changes for the lifecycle:
//!
//! - **the registry stays on the coordinator**: it is created with
//!   `citus.enable_schema_based_sharding` off for that transaction, and a registry that was
//!   distributed earlier is undistributed ([`UNDISTRIBUTE_SCHEMA`]). A statement reading a
//!   distributed table runs on a worker, so a `set_config` in it would not change the
//!   coordinator's session; the batches' checks read the registry only;
//! - **each tenant schema is distributed when it is created**, whatever the database's setting
//!   ([`SHARDING_ON`] before `CREATE SCHEMA`, for that transaction only);
//! - **migrations are sent so Citus accepts them**: Citus relays a multi-statement query string
//!   to the workers for most DDL on a distributed table, and the workers refuse it ("cannot
//!   insert multiple commands into a prepared statement", citusdata/citus#356). Each such
//!   statement is wrapped in a `DO` block of its own ([`for_citus`]), so the one-round-trip
//!   batches keep working;
//! - advisory locks are taken by statements that read no distributed table, so they are the
//!   coordinator's (locks are per node);
//! - placement: which worker holds a tenant, and `citus_schema_move` to move it.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use sqlx::migrate::Migration;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Postgres, SqlSafeStr};

use super::citus_rows;
use super::sql;
use super::args;
use crate::error::{DatabaseError, Error};
use crate::lifecycle::store::Store;
use crate::lifecycle::Tenants;
use crate::tenant::Tenant;
use crate::trace;

/// Whether the server is Citus: the extension is installed in this database.
pub(crate) const DETECT: &str =
    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')";

/// Turns schema-based sharding off for the rest of the transaction, if Citus is installed (a
/// no-op statement on plain PostgreSQL): the registry schema is created local to the
/// coordinator.
pub(crate) const SHARDING_OFF_IF_CITUS: &str =
    "SELECT set_config('citus.enable_schema_based_sharding', 'off', true) \
     FROM pg_extension WHERE extname = 'citus'";

/// Turns schema-based sharding on for the rest of the transaction: the next `CREATE SCHEMA`
/// makes a distributed schema, whatever the database's setting.
pub(crate) const SHARDING_ON: &str =
    "SELECT set_config('citus.enable_schema_based_sharding', 'on', true)";

/// Undistributes schema `$1` if it is a distributed schema: the registry (one created while
/// the database's sharding setting was on, before this library kept it local). (A container
/// whose rows are distributed by the tenant column is undistributed by
/// [`distribute_rows`](crate::Tenants::distribute_rows)'s own block.)
pub(crate) const UNDISTRIBUTE_SCHEMA: &str = "SELECT citus_schema_undistribute(schemaid) \
     FROM pg_dist_schema WHERE schemaid = to_regnamespace($1)";

/// Every active worker that can hold shards: `(host, port)`.
pub(crate) const NODES: &str = "SELECT nodename::text, nodeport FROM pg_dist_node \
     WHERE isactive AND noderole = 'primary' AND shouldhaveshards AND groupid <> 0 \
     ORDER BY nodename, nodeport";

/// Per tenant of the registry: its name and the node holding its tables (`NULL`s for a
/// tenant whose schema is not distributed or has no table yet).
pub(crate) fn placement(registry: &Tenant) -> String {
    format!(
        "SELECT t.name, p.nodename, p.nodeport FROM {}.tenants t
LEFT JOIN LATERAL ({PLACEMENT_OF}) p ON true
ORDER BY t.name",
        registry.quoted()
    )
    .replace("$1", "t.name")
}

/// The node holding tenant `$1`'s tables, `(host, port)`; no row when the schema is not
/// distributed or holds no table yet.
pub(crate) fn placement_of() -> &'static str {
    PLACEMENT_OF
}

/// Reads the catalog tables, not the `citus_shards` view (which asks every worker for sizes).
const PLACEMENT_OF: &str = "SELECT n.nodename::text AS nodename, n.nodeport AS nodeport
    FROM pg_dist_schema ds
    JOIN pg_dist_partition dp ON dp.colocationid = ds.colocationid
    JOIN pg_dist_shard sh ON sh.logicalrelid = dp.logicalrelid
    JOIN pg_dist_placement pl ON pl.shardid = sh.shardid
    JOIN pg_dist_node n ON n.groupid = pl.groupid
    WHERE ds.schemaid = to_regnamespace($1)
    ORDER BY n.nodename, n.nodeport LIMIT 1";

/// Moves schema `$1` to node `$2`:`$3` with shard transfer mode `$4` (see [`MoveMode`]).
pub(crate) const MOVE: &str =
    "SELECT citus_schema_move($1::regnamespace, $2, $3, $4::citus.shard_transfer_mode)";

/// The tables of schema `$1` whose row-level security policies hold the current role (neither
/// a superuser nor `BYPASSRLS`, and either not their owner or held by `FORCE`), by name, with
/// the role's name; no row if there are none. Citus copies a moved schema's rows with
/// statements of the moving role, which such policies filter (no tenant said: no row).
pub(crate) const HELD_BY_POLICIES: &str = "SELECT current_user::text, \
     array_agg(c.relname::text ORDER BY c.relname) \
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.rolname = current_user \
     WHERE c.relnamespace = to_regnamespace($1) AND c.relkind IN ('r', 'p') \
       AND c.relrowsecurity AND NOT r.rolsuper AND NOT r.rolbypassrls \
       AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE')) \
     GROUP BY 1";

/// How [`Tenants::move_to_with`](crate::Tenants::move_to_with) copies a tenant to its new node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MoveMode {
    /// Writes to the tenant wait while its tables are copied; reads go on. Works for any table.
    /// Runs in one transaction holding the tenant's lifecycle lock.
    #[default]
    BlockWrites,
    /// By logical replication: reads and writes go on while the tables are copied and wait
    /// only for the switch-over. Needs `wal_level = logical` on the nodes and a primary key (a
    /// replica identity) on every table of the tenant. Cannot run inside a transaction, so it
    /// runs on a connection of its own holding the tenant's lifecycle lock for the session,
    /// which is closed afterwards (never returned to the pool).
    Logical,
}

impl MoveMode {
    /// Citus's `shard_transfer_mode`.
    fn citus_name(self) -> &'static str {
        match self {
            MoveMode::BlockWrites => "block_writes",
            MoveMode::Logical => "force_logical",
        }
    }
}

/// A Citus worker node, `host:port` as in `pg_dist_node`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    /// Its host name, as the cluster registered it.
    pub host: String,
    /// Its port.
    pub port: u16,
}

impl Node {
    /// The node `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Node {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A node written `host:port` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a node: expected host:port, e.g. 10.0.0.5:5432")]
pub struct InvalidNode(pub String);

impl FromStr for Node {
    type Err = InvalidNode;

    /// `host:port`; the host may itself hold colons when bracketed (`[::1]:5432`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidNode(s.to_owned());
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad());
        }
        let port = port.parse().map_err(|_| bad())?;
        Ok(Node::new(host, port))
    }
}

/// Which tenant lives where: one row of [`Tenants::placement`](crate::Tenants::placement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The tenant.
    pub tenant: Tenant,
    /// The worker holding its tables; `None` while its schema holds no table (Citus places a
    /// distributed schema with its first table), or if it is not distributed.
    pub node: Option<Node>,
}

/// What kind of PostgreSQL server a [`Tenants`](crate::Tenants) handle runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flavour {
    /// PostgreSQL without Citus: tenant schemas live on this server.
    Postgres,
    /// A Citus coordinator: each tenant schema is a distributed schema, living whole on one
    /// worker node.
    Citus,
}

/// What Citus refuses in a tenant migration, recognised from its error (see
/// [`CitusError::Unsupported`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CitusRefusal {
    /// A trigger on a tenant table (a distributed table): refused unless
    /// `citus.enable_unsafe_triggers` is on.
    Trigger,
    /// A foreign key from a tenant table to a table outside the tenant: another tenant's
    /// table, or a plain table in a shared schema such as `public`.
    ForeignKeyOutsideTenant,
    /// A foreign key between a tenant's table and a plain (local) table.
    ForeignKeyToLocalTable,
    /// A foreign key that Citus cannot check where PostgreSQL checks it with a join: seen on a
    /// new partition of a partitioned table, in a container distributed by the tenant column
    /// ([`distribute_rows`](crate::Tenants::distribute_rows)), whose foreign key into another
    /// distributed table is on `varchar` columns (citusdata/citus#6543, #4483).
    ForeignKeyCheck,
}

impl CitusRefusal {
    /// What to do instead, in a sentence.
    pub fn advice(self) -> &'static str {
        match self {
            CitusRefusal::Trigger => {
                "Citus refuses triggers on distributed tables (every tenant table): do the \
                 work in the application or in the statement itself (e.g. `SET updated_at = \
                 now()`), or, knowing that a trigger runs on the worker and must touch only \
                 its own tenant's rows, set citus.enable_unsafe_triggers = on"
            }
            CitusRefusal::ForeignKeyOutsideTenant => {
                "on Citus a tenant's foreign keys may point only into the same tenant or to \
                 reference tables: never into another tenant, and to a shared table in \
                 `public` only after SELECT create_reference_table('public.<table>')"
            }
            CitusRefusal::ForeignKeyToLocalTable => {
                "on Citus a tenant's tables cannot have foreign keys from or to plain tables \
                 of the coordinator: make the shared table a reference table \
                 (SELECT create_reference_table('public.<table>'))"
            }
            CitusRefusal::ForeignKeyCheck => {
                "Citus cannot run the join that checks this foreign key (on a new partition, \
                 its columns compared as text): declare the tenant column and the key's other \
                 text columns `text` rather than `varchar`, or make the partitions before \
                 distribute_rows"
            }
        }
    }
}

impl fmt::Display for CitusRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CitusRefusal::Trigger => "a trigger on a tenant table",
            CitusRefusal::ForeignKeyOutsideTenant => "a foreign key out of the tenant",
            CitusRefusal::ForeignKeyToLocalTable => "a foreign key to a plain local table",
            CitusRefusal::ForeignKeyCheck => "a foreign key Citus cannot check",
        })
    }
}

/// Citus's messages for what [`CitusRefusal`] names.
const TRIGGER_REFUSED: &str = "triggers are not supported on distributed tables";
const FOREIGN_KEY_OUT: &str = "foreign keys from distributed schemas can only point to the \
     same distributed schema or reference tables in regular schemas";
const FOREIGN_KEY_LOCAL: &str = "distributed schemas cannot have foreign keys from/to local tables";
/// Citus: a foreign key between tables of different tenants (not colocated).
const NOT_COLOCATED: &str = "relations are not colocated or not referencing a reference table";
/// Citus: a foreign key from a distributed table to a plain table of the coordinator.
const REFERENCED_NOT_DISTRIBUTED: &str = "must be a distributed table or a reference table";
/// Citus: a join it cannot plan; with [`KEY_CHECK`] in the context, PostgreSQL's check of a
/// foreign key's existing rows.
const COMPLEX_JOIN: &str = "complex joins are only supported when all distributed tables";
/// PostgreSQL's query checking a new foreign key's rows (`RI_Initial_Check`), as it reads in
/// an error's context.
const KEY_CHECK: &str = " fk LEFT OUTER JOIN ONLY ";
/// Citus: `citus_schema_move` of a distributed schema without tables.
const EMPTY_SCHEMA: &str = "because it is empty";

/// What Citus refused, if `err` is one of its refusals of a tenant migration.
pub(crate) fn refusal(err: &sqlx::Error) -> Option<CitusRefusal> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    let message = db.message();
    let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
    let detail = pg.and_then(|e| e.detail()).unwrap_or("");
    let context = pg.and_then(|e| e.r#where()).unwrap_or("");
    if message.contains(TRIGGER_REFUSED) {
        Some(CitusRefusal::Trigger)
    } else if message.contains(FOREIGN_KEY_OUT) || message.contains(NOT_COLOCATED) {
        Some(CitusRefusal::ForeignKeyOutsideTenant)
    } else if message.contains(FOREIGN_KEY_LOCAL)
        || detail.contains(FOREIGN_KEY_LOCAL)
        || message.contains(REFERENCED_NOT_DISTRIBUTED)
    {
        Some(CitusRefusal::ForeignKeyToLocalTable)
    } else if message.contains(COMPLEX_JOIN) && context.contains(KEY_CHECK) {
        Some(CitusRefusal::ForeignKeyCheck)
    } else {
        None
    }
}

/// What Citus refused or could not do: the `source` of an
/// [`Error::Refused`](crate::Error::Refused) on a Citus coordinator (or on a server asked for
/// Citus operations that is not one).
///
/// ```
/// # use tenancy_core::{postgres::CitusError, Error};
/// fn advice(err: &Error) -> Option<&'static str> {
///     let Error::Refused { source, .. } = err else { return None };
///     match source.downcast_ref::<CitusError>()? {
///         CitusError::Unsupported { refusal, .. } => Some(refusal.advice()),
///         _ => None,
///     }
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CitusError {
    /// Citus refused a tenant migration for a reason it always will (a trigger, a foreign key
    /// out of the tenant): the tenant's transaction was rolled back. [`CitusRefusal::advice`]
    /// says what to write instead; the README's "Migrations for Citus" section has examples.
    #[error("migration {version} uses {refusal}, which Citus refuses: {}", refusal.advice())]
    Unsupported {
        /// The migration's version.
        version: i64,
        /// What Citus refused.
        refusal: CitusRefusal,
        /// Citus's error.
        #[source]
        source: DatabaseError,
    },

    /// A Citus operation (placement, moving a tenant) was asked of a server that is not a
    /// Citus coordinator (the `citus` extension is not installed in the database).
    #[error("this server is not a Citus coordinator (no `citus` extension in this database)")]
    NotCitus,

    /// Citus refused to distribute a container's tables by the tenant column
    /// ([`distribute_rows`](crate::Tenants::distribute_rows)); nothing was changed. Its message
    /// names the table: typically a primary key, unique index or foreign key without the
    /// tenant column.
    #[error(
        "Citus cannot distribute the container's tables by the tenant column (every primary \
         key, unique index and foreign key between them must include it)"
    )]
    RowSharding {
        /// Citus's error.
        #[source]
        source: DatabaseError,
    },

    /// A tenant was to be moved ([`move_to`](crate::Tenants::move_to)) by a role that the
    /// row-level security policies of its tables hold (one without `SUPERUSER` and `BYPASSRLS`,
    /// and, for its own tables, under `FORCE`): Citus copies the rows with that role's
    /// statements, which the policies would filter down to none, losing every row of those
    /// tables. Nothing was moved; move it as a superuser or a role with `BYPASSRLS`.
    #[error(
        "Citus would move tenant tables {} as role \"{role}\", which their row-level security \
         policies hold, and copy none of their rows: move the tenant as a superuser or a role \
         with BYPASSRLS",
        tables.join(", ")
    )]
    HeldByRowSecurity {
        /// The moving role.
        role: String,
        /// The tables whose policies hold it, by name.
        tables: Vec<String>,
    },

    /// A tenant was to be moved to a node that is not an active Citus worker of the cluster.
    #[error(
        "{node} is not an active worker node of this Citus cluster (workers: {})",
        Nodes(known)
    )]
    UnknownNode {
        /// The node asked for.
        node: Node,
        /// The cluster's active workers.
        known: Vec<Node>,
    },
}

impl CitusError {
    /// This error as the [`Error::Refused`] of `operation` on `tenant`.
    pub(super) fn refusing(self, operation: &'static str, tenant: Option<&Tenant>) -> Error {
        Error::Refused {
            operation,
            tenant: tenant.cloned(),
            source: Box::new(self),
        }
    }
}

struct Nodes<'a>(&'a [Node]);

impl fmt::Display for Nodes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, node) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{node}")?;
        }
        Ok(())
    }
}

/// The error of a migration Citus refused for a reason it always will.
pub(crate) fn refused(
    tenant: &Tenant,
    version: i64,
    refusal: CitusRefusal,
    source: sqlx::Error,
) -> Error {
    CitusError::Unsupported {
        version,
        refusal,
        source: source.into(),
    }
    .refusing("migrate", Some(tenant))
}

/// Whether `err` is Citus refusing to move a schema that holds no table.
pub(crate) fn is_empty_schema(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.message().contains(EMPTY_SCHEMA))
}

/// `migrations` as Citus accepts them in one query string: each statement that Citus would
/// relay to the workers as part of a multi-statement string (see [`needs_own_command`]) wrapped
/// in a `DO` block of its own. Versions, descriptions and checksums stay the original's.
///
/// Each is sent in sequential mode ([`citus_rows::SEQUENTIAL`]) and followed by
/// [`citus_rows::after_migration`], which distributes the tables it added to a container
/// distributed by the tenant column, in the same transaction.
pub(crate) fn for_citus(tenant: &Tenant, migrations: &[&Migration]) -> Vec<Migration> {
    migrations
        .iter()
        .map(|m| {
            let mut m = (*m).clone();
            let sql = format!(
                "{};\n{}\n;\n{};\n",
                citus_rows::SEQUENTIAL,
                citus_sql(m.sql.as_str()),
                citus_rows::after_migration(tenant)
            );
            m.sql = sqlx::AssertSqlSafe(sql).into_sql_str();
            m
        })
        .collect()
}

/// `sql` with each statement that [`needs_own_command`] wrapped in a `DO` block; `sql` as it is
/// when nothing needs it or when [`statements`] cannot split it with confidence.
pub(crate) fn citus_sql(sql: &str) -> Cow<'_, str> {
    let Some(statements) = statements(sql) else {
        return Cow::Borrowed(sql);
    };
    if !statements.iter().any(|s| needs_own_command(s)) {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 64 * statements.len());
    for statement in statements {
        if needs_own_command(statement) {
            let tag = dollar_tag(statement);
            out.push_str(&format!("DO {tag} BEGIN\n{statement};\nEND {tag};\n"));
        } else {
            out.push_str(statement);
            out.push_str("\n;\n");
        }
    }
    Cow::Owned(out)
}

/// A dollar-quote tag that does not occur in `body`.
fn dollar_tag(body: &str) -> String {
    let mut tag = String::from("$tenancy_citus$");
    let mut n = 0;
    while body.contains(&tag[..tag.len() - 1]) {
        n += 1;
        tag = format!("$tenancy_citus{n}$");
    }
    tag
}

/// Whether Citus refuses `statement` inside a multi-statement query string on a distributed
/// table: index DDL, `ALTER TABLE` (renames, constraints, types, row-level security, …),
/// triggers, policies (Citus 13 refuses `DROP POLICY` there; `CREATE` and `ALTER POLICY` go
/// along as they reach the workers the same way), and the like. Run as the only statement of
/// a `DO` block, its query string is itself.
fn needs_own_command(statement: &str) -> bool {
    let words: Vec<String> = leading_words(statement, 4);
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match w(0) {
        "alter" => matches!(w(1), "table" | "index" | "policy"),
        "create" => {
            let rest: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
            let rest = match rest.as_slice() {
                ["or", "replace", tail @ ..] => tail,
                other => other,
            };
            matches!(
                rest,
                ["index", ..]
                    | ["unique", "index", ..]
                    | ["trigger", ..]
                    | ["constraint", "trigger", ..]
                    | ["policy", ..]
            )
        }
        "drop" => matches!(w(1), "index" | "trigger" | "policy"),
        "comment" => true,
        _ => false,
    }
}

/// What follows `statement`'s leading blanks and comments; `None` where a block comment there
/// does not close.
fn after_comments(statement: &str) -> Option<&str> {
    let mut rest = statement;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if rest.starts_with("/*") {
            rest = &rest[skip_block_comment(rest.as_bytes(), 0)?..];
        } else {
            return Some(rest);
        }
    }
}

/// The first `n` words of `statement` in lower case, after leading comments and blanks.
fn leading_words(statement: &str, n: usize) -> Vec<String> {
    let Some(rest) = after_comments(statement) else {
        return Vec::new();
    };
    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .take(n)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The index just past the (possibly nested) block comment starting at `at`.
fn skip_block_comment(b: &[u8], at: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = at;
    while i + 1 < b.len() {
        if b[i] == b'/' && b[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return Some(i);
            }
        } else {
            i += 1;
        }
    }
    None
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// The statements of `sql` (trimmed, without their `;`, empty ones left out), or `None` when
/// it holds something this splitter does not follow: an unterminated quote or comment, or a
/// SQL-standard function body (`BEGIN ATOMIC … END`), whose `;` do not end the statement.
fn statements(sql: &str) -> Option<Vec<&str>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' => {
                // E'…' strings take backslash escapes.
                let escapes =
                    i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !is_ident_byte(b[i - 2]));
                i += 1;
                loop {
                    match b.get(i)? {
                        b'\\' if escapes => i += 2,
                        b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
                        b'\'' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'"' => {
                i += 1;
                loop {
                    match b.get(i)? {
                        b'"' if b.get(i + 1) == Some(&b'"') => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i)?,
            b'$' if i == 0 || !is_ident_byte(b[i - 1]) => {
                // $tag$ … $tag$ (the tag may be empty; `$1` is a parameter, not a quote).
                let tag_end = b[i + 1..]
                    .iter()
                    .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80))
                    .map(|p| i + 1 + p);
                match tag_end {
                    Some(end)
                        if b[end] == b'$' && b.get(i + 1).is_none_or(|c| !c.is_ascii_digit()) =>
                    {
                        let tag = &sql[i..=end];
                        let body = end + 1;
                        let close = sql[body..].find(tag)?;
                        i = body + close + tag.len();
                    }
                    _ => i += 1,
                }
            }
            b';' => {
                push_statement(&mut out, &sql[start..i]);
                i += 1;
                start = i;
            }
            c if c.is_ascii_alphabetic() && (i == 0 || !is_ident_byte(b[i - 1])) => {
                let end = b[i..]
                    .iter()
                    .position(|&c| !is_ident_byte(c))
                    .map_or(b.len(), |p| i + p);
                if sql[i..end].eq_ignore_ascii_case("atomic") {
                    return None;
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    push_statement(&mut out, &sql[start..]);
    Some(out)
}

/// Adds `statement` trimmed, unless it holds only blanks and comments.
fn push_statement<'a>(out: &mut Vec<&'a str>, statement: &'a str) {
    let statement = statement.trim();
    if !leading_words(statement, 1).is_empty() || statement_has_code(statement) {
        out.push(statement);
    }
}

/// Whether `statement` holds anything but comments (e.g. `(SELECT 1)` starts with no word).
fn statement_has_code(statement: &str) -> bool {
    // An unclosed block comment is left for the server to refuse.
    !after_comments(statement).is_some_and(str::is_empty)
}

impl Tenants<Postgres> {
    /// Fails with [`CitusError::NotCitus`] unless the handle runs on Citus.
    pub(super) async fn require_citus(&self, operation: &'static str) -> Result<(), Error> {
        self.pg().ensure_registry().await?;
        if self.pg().on_citus() {
            Ok(())
        } else {
            Err(CitusError::NotCitus.refusing(operation, None))
        }
    }

    /// Which worker node holds each tenant, sorted by tenant. Citus only
    /// ([`CitusError::NotCitus`] otherwise).
    ///
    /// ```no_run
    /// # async fn demo(tenants: tenancy_core::Tenants) -> Result<(), tenancy_core::Error> {
    /// for p in tenants.placement().await? {
    ///     match p.node {
    ///         Some(node) => println!("{} on {node}", p.tenant),
    ///         None => println!("{} has no table yet", p.tenant),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn placement(&self) -> Result<Vec<Placement>, Error> {
        self.require_citus("placement").await?;
        let rows: Vec<(String, Option<String>, Option<i32>)> =
            self.pg().rows(&placement(self.registry()), args!()).await?;
        rows.into_iter()
            .map(|(name, host, port)| {
                Ok(Placement {
                    tenant: Tenant::new(name)?,
                    node: node_of(host, port),
                })
            })
            .collect()
    }

    /// The worker node holding tenant `name`'s tables (`None` while its schema holds no
    /// table). [`Error::NotATenant`] if `name` is not registered; Citus only
    /// ([`CitusError::NotCitus`] otherwise).
    pub async fn placement_of(&self, name: impl AsRef<str>) -> Result<Option<Node>, Error> {
        let tenant = self.parse(name)?;
        self.require_citus("placement").await?;
        if !self.pg().exists(&tenant).await? {
            return Err(Error::NotATenant { tenant });
        }
        let rows: Vec<(String, i32)> = self
            .pg()
            .rows(placement_of(), args!(tenant.as_str()))
            .await
            .map_err(|e| e.about(&tenant))?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|(host, port)| node_of(Some(host), Some(port))))
    }

    /// The cluster's active worker nodes that hold shards, sorted. Citus only
    /// ([`CitusError::NotCitus`] otherwise).
    pub async fn nodes(&self) -> Result<Vec<Node>, Error> {
        self.require_citus("nodes").await?;
        let rows: Vec<(String, i32)> = self.pg().rows(NODES, args!()).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(host, port)| node_of(Some(host), Some(port)))
            .collect())
    }

    /// Moves tenant `name` with all its data to worker `node` (`citus_schema_move`, blocking
    /// writes to the tenant while its tables are copied), under the tenant's lifecycle lock, so
    /// no create, drop, rename or migration of the tenant runs meanwhile. Reads keep being
    /// served; the tenant's name and every query stay the same. Nothing happens if the tenant
    /// is on `node` already. [`move_to_with`](Self::move_to_with) with [`MoveMode::Logical`]
    /// keeps writes going too.
    ///
    /// [`CitusError::UnknownNode`] if `node` is not an active worker, [`Error::NotATenant`] if
    /// `name` is not registered, [`Error::ContainerMissing`] if its schema is gone,
    /// [`Error::Unsupported`] if its schema holds no table yet (Citus places a schema with its
    /// first table), [`CitusError::HeldByRowSecurity`] if the handle's role is held by the
    /// row-level security policies of a table of the tenant (a container under
    /// [`enable_row_security`](Self::enable_row_security), moved by its owner without
    /// `SUPERUSER` or `BYPASSRLS`: Citus would copy none of its rows); Citus only
    /// ([`CitusError::NotCitus`] otherwise).
    pub async fn move_to(&self, name: impl AsRef<str>, node: &Node) -> Result<(), Error> {
        self.move_to_with(name, node, MoveMode::BlockWrites).await
    }

    /// [`move_to`](Self::move_to), copying the tenant as `mode` says.
    pub async fn move_to_with(
        &self,
        name: impl AsRef<str>,
        node: &Node,
        mode: MoveMode,
    ) -> Result<(), Error> {
        let tenant = self.parse(name)?;
        self.require_citus("move").await?;
        let span = trace::lifecycle::<Postgres>("move", &tenant);
        match trace::within(span, self.move_checked(&tenant, node, mode)).await {
            Ok(()) => Ok(()),
            Err(err) => Err(self.pg().explain(&tenant, err).await),
        }
    }

    async fn move_checked(
        &self,
        tenant: &Tenant,
        node: &Node,
        mode: MoveMode,
    ) -> Result<(), Error> {
        let known = self.nodes().await?;
        if !known.contains(node) {
            return Err(CitusError::UnknownNode {
                node: node.clone(),
                known,
            }
            .refusing("move", Some(tenant)));
        }
        match mode {
            MoveMode::BlockWrites => {
                let mut tx = self.pool().begin().await?;
                let result = async {
                    sqlx::raw_sql(AssertSqlSafe(self.pg().lock_sql(tenant)))
                        .execute(&mut *tx)
                        .await?;
                    self.move_locked(&mut tx, tenant, node, mode).await
                }
                .await;
                match result {
                    Ok(()) => Ok(tx.commit().await?),
                    Err(err) => {
                        let _ = tx.rollback().await;
                        Err(err)
                    }
                }
            }
            MoveMode::Logical => {
                // Detached: whatever happens (an error, the future dropped), this connection
                // and the session lock it holds are closed, never pooled.
                let mut conn = self.pool().acquire().await?.detach();
                let result = async {
                    if let Some(timeout) = self.pg().batch().lock_timeout {
                        sqlx::query("SELECT set_config('lock_timeout', $1, false)")
                            .persistent(false)
                            .bind(format!("{}ms", timeout.as_millis().max(1)))
                            .execute(&mut conn)
                            .await?;
                    }
                    sqlx::raw_sql(AssertSqlSafe(sql::lock_tenant_session_named(
                        self.registry(),
                        tenant,
                    )))
                    .execute(&mut conn)
                    .await?;
                    self.move_locked(&mut conn, tenant, node, mode).await
                }
                .await;
                let _ = sqlx::Connection::close(conn).await;
                result
            }
        }
    }

    /// The checks and the move, on `conn` holding the tenant's lock.
    async fn move_locked(
        &self,
        conn: &mut PgConnection,
        tenant: &Tenant,
        node: &Node,
        mode: MoveMode,
    ) -> Result<(), Error> {
        let found = self.pg().found(&mut *conn, tenant).await?;
        if !found.registered {
            return Err(Error::NotATenant {
                tenant: tenant.clone(),
            });
        }
        if !found.container {
            return Err(crate::backend::container_missing::<sqlx::Postgres>(tenant));
        }
        let now: Option<(String, i32)> = sqlx::query_as(placement_of())
            .persistent(false)
            .bind(tenant.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        let unplaced = || Error::Unsupported {
            operation: "move",
            reason: format!(
                "tenant \"{tenant}\" is not placed on one node: its schema holds no table yet, \
                 or its tables are distributed by the tenant column (distribute_rows), whose \
                 shards Citus's rebalancer moves"
            ),
        };
        match now.and_then(|(host, port)| node_of(Some(host), Some(port))) {
            Some(ref at) if at == node => return Ok(()),
            Some(_) => {}
            None => return Err(unplaced()),
        }
        let held: Option<(String, Vec<String>)> = sqlx::query_as(HELD_BY_POLICIES)
            .persistent(false)
            .bind(tenant.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        if let Some((role, tables)) = held {
            return Err(CitusError::HeldByRowSecurity { role, tables }.refusing("move", Some(tenant)));
        }
        sqlx::query(MOVE)
            .persistent(false)
            .bind(tenant.as_str())
            .bind(&node.host)
            .bind(i32::from(node.port))
            .bind(mode.citus_name())
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                if is_empty_schema(&e) {
                    unplaced()
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }
}

/// A node from a catalog row (no node for `NULL`s or a port out of range).
fn node_of(host: Option<String>, port: Option<i32>) -> Option<Node> {
    Some(Node::new(host?, u16::try_from(port?).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_on_semicolons_outside_quotes_and_comments() {
        let sql = "CREATE TABLE a (s text DEFAULT 'x;y', \"we;ird\" int); -- c;omment\n\
                   /* b; /* nested; */ */ CREATE INDEX i ON a (s);\n\
                   CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $f$ SELECT 1; $f$;\n\
                   SELECT E'it\\'s;', $1;  \n  -- only a comment\n";
        let got = statements(sql).unwrap();
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[0].starts_with("CREATE TABLE a") && got[0].ends_with("int)"));
        assert!(got[1].ends_with("CREATE INDEX i ON a (s)"));
        assert!(got[2].ends_with("$f$ SELECT 1; $f$"));
        assert_eq!(got[3], "SELECT E'it\\'s;', $1");
    }

    #[test]
    fn what_the_splitter_cannot_follow_is_left_alone() {
        assert_eq!(statements("SELECT 'open"), None);
        assert_eq!(statements("/* open"), None);
        assert_eq!(statements("SELECT $x$ open"), None);
        let atomic = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n\
                      CREATE INDEX i ON t (x)";
        assert_eq!(statements(atomic), None);
        assert!(matches!(citus_sql(atomic), Cow::Borrowed(_)));
    }

    #[test]
    fn only_statements_citus_refuses_in_a_batch_are_wrapped() {
        let sql = "CREATE TABLE guards (id bigserial PRIMARY KEY, name text);\n\
                   CREATE INDEX guards_name ON guards (name);\n\
                   ALTER TABLE guards RENAME COLUMN name TO full_name;\n\
                   INSERT INTO guards (full_name) VALUES ('a; b')";
        let out = citus_sql(sql);
        assert_eq!(
            out,
            "CREATE TABLE guards (id bigserial PRIMARY KEY, name text)\n;\n\
             DO $tenancy_citus$ BEGIN\nCREATE INDEX guards_name ON guards (name);\nEND $tenancy_citus$;\n\
             DO $tenancy_citus$ BEGIN\nALTER TABLE guards RENAME COLUMN name TO full_name;\nEND $tenancy_citus$;\n\
             INSERT INTO guards (full_name) VALUES ('a; b')\n;\n"
        );
        assert!(matches!(
            citus_sql("CREATE TABLE t (id int); INSERT INTO t VALUES (1)"),
            Cow::Borrowed(_)
        ));
        for yes in [
            "create unique index u on t (x)",
            "-- why\nCREATE OR REPLACE TRIGGER x BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f()",
            "/* c */ DROP INDEX i",
            "alter index i rename to j",
            "COMMENT ON TABLE t IS 'x'",
            "DROP POLICY IF EXISTS p ON t",
            "create policy p on t using (true)",
            "ALTER POLICY p ON t USING (false)",
        ] {
            assert!(needs_own_command(yes), "{yes}");
        }
        for no in [
            "CREATE TABLE t (id int)",
            "REINDEX TABLE t",
            "SELECT 1",
            "CREATE VIEW v AS SELECT 1",
            "DROP TABLE t",
            "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        ] {
            assert!(!needs_own_command(no), "{no}");
        }
    }

    #[test]
    fn the_do_tag_never_occurs_in_the_statement() {
        assert_eq!(dollar_tag("CREATE INDEX i ON t (x)"), "$tenancy_citus$");
        assert_eq!(
            dollar_tag("COMMENT ON TABLE t IS $tenancy_citus$x$tenancy_citus$"),
            "$tenancy_citus1$"
        );
    }

    #[test]
    fn nodes_read_as_host_colon_port() {
        assert_eq!("10.0.0.5:5432".parse(), Ok(Node::new("10.0.0.5", 5432)));
        assert_eq!("[::1]:9701".parse(), Ok(Node::new("::1", 9701)));
        assert_eq!(Node::new("w1", 9701).to_string(), "w1:9701");
        for bad in ["w1", "w1:", ":5432", "w1:port", "w1:70000", "a b:1"] {
            assert!(bad.parse::<Node>().is_err(), "{bad}");
        }
    }
}
