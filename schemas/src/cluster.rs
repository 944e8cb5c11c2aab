//! The migrations of [`crate::ddl`] in their form for a ClickHouse cluster (shards × replicas
//! with ClickHouse Keeper), generated from the same SQL, statement by statement.
//!
//! # How the services address the cluster
//! Every table `t` of the single-node schema becomes two tables:
//! * `t_local`: the rows of one shard, `Replicated*MergeTree` with the original engine's
//!   arguments, replicated between the shard's replicas through Keeper
//!   ([`REPLICA_PATH`], macros `{shard}` and `{replica}` from each server's config);
//! * `t`: a `Distributed` table over the `t_local` of every shard, sharded by the key in
//!   [`SHARDING`].
//!
//! The services keep their table names: they read and write `t`, the `Distributed` table, on
//! any node. The cluster's `remote_servers` sets `internal_replication = true` (a write goes
//! to one replica of a shard, the replicated table copies it), and the servers' default
//! profile (`deploy/clickhouse-cluster/profiles.xml`) sets `distributed_foreground_insert = 1`
//! (an insert returns once every shard has its rows, so the aggregator's `done` manifest means
//! stored), `insert_quorum = 2` (every replica of a shard has them: a read on any replica sees
//! the writes the aggregator made before, which its reloads and moves need) and
//! `distributed_product_mode = global` (the API's `IN (SELECT ..)` over a second distributed
//! table). A sharding key is a function of the row only, never `rand()`: a retried insert with
//! the same `insert_deduplication_token` splits into the same per-shard blocks, which each
//! shard drops as duplicates, so exactly-once holds as on one node.
//!
//! Materialized views are created on every node and read the *local* table and write the
//! *local* target (`FROM events_local ... TO unique_recipients_local`): each shard aggregates the
//! rows it stores. Plain views read the `Distributed` tables. `INSERT ... SELECT` backfills run
//! once, through the `Distributed` tables. Tables placed [`Placement::EveryNode`]
//! (`schema_migrations`) are one replicated table on every node, not sharded.
//!
//! The shard count is fixed once rows exist: a `Distributed` table places a row by its key's hash
//! modulo the shard weights, so with another shard a delivery's next version would land on
//! another shard than its earlier ones and `FINAL` (per shard) would keep both. Resharding is a
//! copy into a new layout (BENCHMARKS.md §6).
//!
//! # Statements
//! `CREATE TABLE`, `CREATE [MATERIALIZED] VIEW`, `ALTER TABLE`, `DROP`, `CREATE DATABASE` get
//! `ON CLUSTER '<name>'`; column changes (`ADD/MODIFY/DROP/RENAME/COMMENT COLUMN`) go to both the
//! local and the `Distributed` table, the rest (`MODIFY ORDER BY`, indexes, TTL, settings,
//! mutations) to the local one. `SETTINGS non_replicated_deduplication_window = N` becomes
//! `replicated_deduplication_window = N`. Anything else, or a table without an entry in
//! [`SHARDING`], is an error: a new migration is translated or refused, never half-translated.

use std::fmt::Write as _;

/// Suffix of a shard's local table.
pub const LOCAL_SUFFIX: &str = "_local";

/// Keeper path of a sharded table's replicas (`{database}` and `{table}` are expanded by the
/// server at `CREATE`, `{shard}` from its macros).
pub const REPLICA_PATH: &str = "/clickhouse/tables/{shard}/{database}/{table}";

/// Keeper path of a table replicated to every node ([`Placement::EveryNode`]).
pub const EVERY_NODE_PATH: &str = "/clickhouse/tables/all/{database}/{table}";

/// The replica name: the server's `{replica}` macro.
pub const REPLICA_NAME: &str = "{replica}";

/// Where a table's rows live in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Spread over the shards by this expression of the row's columns.
    Sharded(&'static str),
    /// One replicated table on every node (small tables every node reads).
    EveryNode,
}

/// The placement of one table and why its key is correct.
#[derive(Debug, Clone, Copy)]
pub struct TablePlacement {
    pub table: &'static str,
    pub placement: Placement,
    pub why: &'static str,
}

/// Every table of the schema. A migration creating a table not listed here fails to translate:
/// where a table's rows live is a decision, made here.
///
/// Rule: rows a `Replacing`/`Summing`/`AggregatingMergeTree` merges (same ORDER BY key) must meet
/// on one shard for merges to compact them and, for `Replacing`, for `FINAL` (run per shard) to
/// be right; so the key is built from ORDER BY columns, or from a column every version of the row
/// shares. Tables read with `sum()` / `uniqExactMerge()` / `max()` are correct across shards
/// anyway (the initiator merges), their key only keeps a tenant's reads on one shard.
pub const SHARDING: &[TablePlacement] = &[
    TablePlacement {
        table: "events",
        placement: Placement::Sharded("cityHash64(delivery_key)"),
        why: "every version of an event row (a re-attributed copy, same event_id) has the same delivery key, so rows that \
              replace each other meet on one shard; a delivery's events sit with its `deliveries` row, and the aggregator's \
              `WHERE delivery_key IN` reads reach only their shards (optimize_skip_unused_shards). The delivery key is a hash \
              over tenant, provider, message id and recipient, so it spreads a big tenant evenly.",
    },
    TablePlacement {
        table: "deliveries",
        placement: Placement::Sharded("cityHash64(delivery_key)"),
        why: "ORDER BY (tenant, delivery_key): a delivery's versions meet on one shard (ReplacingMergeTree(version), read FINAL).",
    },
    TablePlacement {
        table: "delivery_order",
        placement: Placement::Sharded("cityHash64(delivery_key)"),
        why: "must equal `deliveries`' key: `delivery_order_mv` writes each shard's rows locally, and the aggregator's \
              tombstones (through the Distributed table) must land on that shard; `sort_at` is not in the key because it \
              moves, so the tombstone at the old place and the row at the new one stay together.",
    },
    TablePlacement {
        table: "delivery_latency",
        placement: Placement::Sharded("cityHash64(delivery_key)"),
        why: "as `delivery_order`, whose key it shares: `delivery_latency_mv` writes each shard's rows locally from its \
              `deliveries_local` rows, and `delivery_latency_tombstones_mv` copies the tombstones landing in that shard's \
              `delivery_order_local`, so a delivery's row and its tombstones meet on one shard for FINAL.",
    },
    TablePlacement {
        table: "delivery_send_lag",
        placement: Placement::Sharded("cityHash64(tenant)"),
        why: "filled by `delivery_send_lag_mv` per shard, read with max() over shards (a bound over every shard's \
              deliveries); the key only places the backfill.",
    },
    TablePlacement {
        table: "counters",
        placement: Placement::Sharded("cityHash64(tenant)"),
        why: "SummingMergeTree read with sum(): right on any shard split; by tenant so a dashboard query reads one shard and \
              rows with one key meet and merge.",
    },
    TablePlacement {
        table: "attributed_counters",
        placement: Placement::Sharded("cityHash64(tenant)"),
        why: "as `counters` (signed sums; a move's -1 and +1 are both summed at read).",
    },
    TablePlacement {
        table: "delivery_status_counts",
        placement: Placement::Sharded("cityHash64(tenant)"),
        why: "as `counters` (signed sums read with sum()).",
    },
    TablePlacement {
        table: "funnels",
        placement: Placement::Sharded("cityHash64(tenant)"),
        why: "as `delivery_status_counts` (signed sums read with sum(); a move's -1 and +1 meet on the tenant's shard).",
    },
    TablePlacement {
        table: "funnel_recipients",
        placement: Placement::Sharded("cityHash64(tenant)"),
        why: "signed per (id, recipient), read with sum() per recipient: a recipient's -1 and +1 rows must meet, so by tenant.",
    },
    TablePlacement {
        table: "funnel_statuses",
        placement: Placement::Sharded("cityHash64(tenant)"),
        why: "as `funnels` (signed sums read with sum(); a move's -1 and +1 meet on the tenant's shard).",
    },
    TablePlacement {
        table: "unique_recipients",
        placement: Placement::Sharded("cityHash64(tenant)"),
        why: "filled by `unique_recipients_mv` on each shard from its `events_local` rows, read with uniqExactMerge(), which \
              unions the sets of every shard; the key only places the migration's backfill.",
    },
    TablePlacement {
        table: "recipient_days",
        placement: Placement::Sharded("cityHash64(tenant)"),
        why: "filled by `recipient_days_mv` on each shard from its `events_local` rows, read with uniqExact(), which \
              unions every shard's rows, as `unique_recipients`; the key only places the migration's backfill.",
    },
    TablePlacement {
        table: "backfills",
        placement: Placement::Sharded("cityHash64(name)"),
        why: "one row per backfilled table (`recipient_days`), read through the Distributed table.",
    },
    TablePlacement {
        table: "event_times",
        placement: Placement::Sharded("cityHash64(tenant)"),
        why: "filled by `event_times_mv` per shard, read with max() over shards; the key only places the backfill.",
    },
    TablePlacement {
        table: "soft_bounces",
        placement: Placement::Sharded("cityHash64(delivery_key)"),
        why: "filled by `soft_bounces_mv` on each shard from its `events_local` rows, so it must equal `events`' key for the \
              migration's backfill (through the Distributed table) to land where the view writes: versions of one event \
              share its delivery key, so they meet on one shard and collapse under FINAL.",
    },
    TablePlacement {
        table: "failures",
        placement: Placement::Sharded("cityHash64(delivery_key)"),
        why: "filled by `failures_mv` on each shard from its `events_local` rows, so, as `soft_bounces`, it must equal \
              `events`' key for the migration's backfill to land where the view writes; versions of one event share its \
              delivery key and collapse under FINAL on that shard.",
    },
    TablePlacement {
        table: "attributed_failures",
        placement: Placement::Sharded("cityHash64(delivery_key)"),
        why: "as `failures`: filled by `attributed_failures_mv` on each shard from its `events_local` rows, so it must \
              equal `events`' key for the migration's backfill to land where the view writes; versions of one event share \
              its delivery key and collapse under FINAL on that shard.",
    },
    TablePlacement {
        table: "suppressions",
        placement: Placement::Sharded("cityHash64(tenant, address)"),
        why: "ORDER BY (tenant, address): an address's entries meet on one shard (ReplacingMergeTree(version), read FINAL).",
    },
    TablePlacement {
        table: "suppression_changes",
        placement: Placement::Sharded("cityHash64(tenant, address)"),
        why: "ORDER BY (tenant, address, at, change_id); the same key as `suppressions`, so one address's list entry and its \
              changes sit together.",
    },
    TablePlacement {
        table: "sender_health",
        placement: Placement::Sharded("cityHash64(tenant)"),
        why: "ORDER BY (tenant, provider, sending_domain, sending_account): a sender's flags meet on one shard; small.",
    },
    TablePlacement {
        table: "aggregator_offsets",
        placement: Placement::Sharded("cityHash64(consumer_group, topic, partition)"),
        why: "ORDER BY (consumer_group, topic, partition, last_offset): one partition's manifests on one shard.",
    },
    TablePlacement {
        table: "aggregator_claims",
        placement: Placement::Sharded("cityHash64(consumer_group, topic, partition)"),
        why: "ORDER BY (consumer_group, topic, partition, epoch, writer): one partition's claims on one shard, beside its \
              manifests; `insert_quorum` makes a claim visible on every replica before the claimer loads the cursor.",
    },
    TablePlacement {
        table: "schema_migrations",
        placement: Placement::EveryNode,
        why: "a handful of rows `aggregator migrate` reads on whichever node it reaches.",
    },
];

/// The cluster a statement is generated for.
#[derive(Debug, Clone, Copy)]
pub struct Cluster<'a> {
    /// The cluster's name in the servers' `remote_servers` (or `{cluster}`, the macro).
    pub name: &'a str,
    /// The database the tables live in (the `Distributed` tables name it).
    pub database: &'a str,
}

/// A statement the generator cannot translate.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("table `{0}` has no placement in schemas::cluster::SHARDING: decide its sharding key there")]
    UnknownTable(String),
    #[error("statement not supported in the cluster form ({0}); extend schemas::cluster")]
    Unsupported(String),
    #[error("cannot read the statement: {0}")]
    Malformed(String),
    #[error("invalid cluster or database name `{0}`")]
    InvalidName(String),
}

impl ClusterError {
    /// A short, bounded code.
    pub fn code(&self) -> &'static str {
        match self {
            ClusterError::UnknownTable(_) => "unknown_table",
            ClusterError::Unsupported(_) => "unsupported",
            ClusterError::Malformed(_) => "malformed",
            ClusterError::InvalidName(_) => "invalid_name",
        }
    }
}

/// The placement of `table`, if it is a table of the schema.
pub fn placement(table: &str) -> Option<Placement> {
    SHARDING.iter().find(|t| t.table == table).map(|t| t.placement)
}

/// The cluster form of one single-node migration statement (placeholders already filled): one
/// or more statements, to run in order on any node.
pub fn statements(stmt: &str, cluster: &Cluster) -> Result<Vec<String>, ClusterError> {
    check_name(cluster.name)?;
    check_name(cluster.database)?;
    let toks = lex(stmt)?;
    let words: Vec<String> = toks.iter().take(6).map(|t| t.upper(stmt)).collect();
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match (w(0), w(1), w(2)) {
        ("CREATE", "TABLE", _) => create_table(stmt, &toks, cluster),
        ("CREATE", "MATERIALIZED", "VIEW") => create_materialized_view(stmt, &toks, cluster),
        ("CREATE", "VIEW", _) | ("CREATE", "OR", "REPLACE") => {
            let name = object_name(stmt, &toks, if w(1) == "OR" { 4 } else { 2 })?;
            Ok(vec![insert_on_cluster(stmt, &name, cluster)])
        }
        ("CREATE", "DATABASE", _) => {
            let name = object_name(stmt, &toks, 2)?;
            Ok(vec![insert_on_cluster(stmt, &name, cluster)])
        }
        ("ALTER", "TABLE", _) => alter_table(stmt, &toks, cluster),
        ("INSERT", "INTO", _) => {
            let name = object_name(stmt, &toks, 2)?;
            known_table(&name.text)?;
            Ok(vec![stmt.to_string()])
        }
        ("DROP", "TABLE" | "VIEW", _) => drop(stmt, &toks, cluster),
        _ => Err(ClusterError::Unsupported(first_words(stmt))),
    }
}

/// Every statement of a migration's statements in cluster form, in order.
pub fn migration(stmts: &[String], cluster: &Cluster) -> Result<Vec<String>, ClusterError> {
    let mut out = Vec::new();
    for s in stmts {
        out.extend(statements(s, cluster)?);
    }
    Ok(out)
}

fn check_name(name: &str) -> Result<(), ClusterError> {
    let ok = !name.is_empty() && name.len() <= 128 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-{}".contains(c));
    if ok { Ok(()) } else { Err(ClusterError::InvalidName(name.to_string())) }
}

fn first_words(stmt: &str) -> String {
    stmt.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

// ---- a small lexer: enough to find names, parentheses and clauses outside string literals ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Quoted,
    Str,
    Punct,
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
}

impl Tok {
    fn text<'a>(&self, s: &'a str) -> &'a str {
        &s[self.start..self.end]
    }
    fn upper(&self, s: &str) -> String {
        if self.kind == Kind::Word { self.text(s).to_ascii_uppercase() } else { String::new() }
    }
    fn is_word(&self, s: &str, w: &str) -> bool {
        self.kind == Kind::Word && self.text(s).eq_ignore_ascii_case(w)
    }
    fn is_punct(&self, s: &str, p: &str) -> bool {
        self.kind == Kind::Punct && self.text(s) == p
    }
}

fn lex(s: &str) -> Result<Vec<Tok>, ClusterError> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let end = s[i + 2..].find("*/").ok_or_else(|| ClusterError::Malformed("unclosed comment".into()))?;
            i += 2 + end + 2;
            continue;
        }
        let kind = if c == b'\'' || c == b'`' || c == b'"' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(ClusterError::Malformed("unclosed quote".into())),
                    Some(b'\\') => i += 2,
                    Some(&q) if q == c => {
                        i += 1;
                        if b.get(i) == Some(&c) {
                            i += 1; // doubled quote
                        } else {
                            break;
                        }
                    }
                    Some(_) => i += 1,
                }
            }
            if c == b'\'' { Kind::Str } else { Kind::Quoted }
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            Kind::Word
        } else {
            // one UTF-8 character of punctuation
            i += s[i..].chars().next().map(char::len_utf8).unwrap_or(1);
            Kind::Punct
        };
        toks.push(Tok { kind, start, end: i });
    }
    Ok(toks)
}

/// The index of the token closing the parenthesis opened at `open`.
fn closing(s: &str, toks: &[Tok], open: usize) -> Result<usize, ClusterError> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.is_punct(s, "(") {
            depth += 1;
        } else if t.is_punct(s, ")") {
            depth -= 1;
            if depth == 0 {
                return Ok(i);
            }
        }
    }
    Err(ClusterError::Malformed("unbalanced parentheses".into()))
}

/// A named object in a statement: its (unquoted, database-less) name, where the name ends in the
/// text, and the index of the token after it.
struct Name {
    text: String,
    end: usize,
    next: usize,
}

/// The object name at token `at`, after an optional `IF [NOT] EXISTS`; `db.name` keeps `name`.
fn object_name(s: &str, toks: &[Tok], mut at: usize) -> Result<Name, ClusterError> {
    if toks.get(at).is_some_and(|t| t.is_word(s, "IF")) {
        at += if toks.get(at + 1).is_some_and(|t| t.is_word(s, "NOT")) { 3 } else { 2 };
    }
    let mut i = at;
    let mut last = *toks.get(i).ok_or_else(|| ClusterError::Malformed("no object name".into()))?;
    while toks.get(i + 1).is_some_and(|t| t.is_punct(s, ".")) && toks.get(i + 2).is_some() {
        i += 2;
        last = toks[i];
    }
    if !matches!(last.kind, Kind::Word | Kind::Quoted) {
        return Err(ClusterError::Malformed(format!("no object name at `{}`", last.text(s))));
    }
    Ok(Name { text: unquote(last.text(s)), end: last.end, next: i + 1 })
}

fn unquote(name: &str) -> String {
    name.trim_matches(|c| c == '`' || c == '"').to_string()
}

fn known_table(table: &str) -> Result<Placement, ClusterError> {
    placement(table).ok_or_else(|| ClusterError::UnknownTable(table.to_string()))
}

fn on_cluster(cluster: &Cluster) -> String {
    format!(" ON CLUSTER '{}'", cluster.name)
}

fn insert_on_cluster(stmt: &str, name: &Name, cluster: &Cluster) -> String {
    format!("{}{}{}", &stmt[..name.end], on_cluster(cluster), &stmt[name.end..])
}

/// `stmt` with the object name ending at `name.end` renamed to its local table.
fn renamed_local(stmt: &str, toks: &[Tok], name: &Name, cluster: &Cluster) -> String {
    let last = toks[name.next - 1];
    format!("{}`{}{}`{}{}", &stmt[..last.start], name.text, LOCAL_SUFFIX, on_cluster(cluster), &stmt[name.end..])
}

fn create_table(stmt: &str, toks: &[Tok], cluster: &Cluster) -> Result<Vec<String>, ClusterError> {
    let name = object_name(stmt, toks, 2)?;
    let place = known_table(&name.text)?;
    if !toks.get(name.next).is_some_and(|t| t.is_punct(stmt, "(")) {
        return Err(ClusterError::Unsupported(format!("CREATE TABLE {} without a column list", name.text)));
    }
    let cols_end = closing(stmt, toks, name.next)?;
    let eng = toks
        .iter()
        .enumerate()
        .skip(cols_end + 1)
        .find(|(_, t)| t.is_word(stmt, "ENGINE"))
        .map(|(i, _)| i)
        .ok_or_else(|| ClusterError::Malformed(format!("{}: no ENGINE", name.text)))?;
    let mut e = eng + 1;
    if toks.get(e).is_some_and(|t| t.is_punct(stmt, "=")) {
        e += 1;
    }
    let engine_tok = *toks.get(e).ok_or_else(|| ClusterError::Malformed("no engine name".into()))?;
    let engine = engine_tok.text(stmt);
    if !engine.ends_with("MergeTree") || engine.starts_with("Replicated") || engine.starts_with("Shared") {
        return Err(ClusterError::Unsupported(format!("{}: engine {engine}", name.text)));
    }
    let (args, engine_end) = match toks.get(e + 1) {
        Some(t) if t.is_punct(stmt, "(") => {
            let close = closing(stmt, toks, e + 1)?;
            (stmt[t.end..toks[close].start].trim().to_string(), toks[close].end)
        }
        _ => (String::new(), engine_tok.end),
    };
    let path = match place {
        Placement::Sharded(_) => REPLICA_PATH,
        Placement::EveryNode => EVERY_NODE_PATH,
    };
    let mut engine_sql = format!("Replicated{engine}('{path}', '{REPLICA_NAME}'");
    if !args.is_empty() {
        let _ = write!(engine_sql, ", {args}");
    }
    engine_sql.push(')');
    let rest = replicated_settings(stmt, &toks[e..], engine_end);
    let head = match place {
        Placement::Sharded(_) => renamed_local(&stmt[..engine_tok.start], toks, &name, cluster),
        Placement::EveryNode => insert_on_cluster(&stmt[..engine_tok.start], &name, cluster),
    };
    let local = format!("{head}{engine_sql}{rest}");
    match place {
        Placement::EveryNode => Ok(vec![local]),
        Placement::Sharded(key) => {
            let if_not_exists = if toks[2].is_word(stmt, "IF") { "IF NOT EXISTS " } else { "" };
            let dist = format!(
                "CREATE TABLE {if_not_exists}`{t}`{on} AS `{db}`.`{t}{sfx}`\nENGINE = Distributed('{c}', '{db}', '{t}{sfx}', {key})",
                t = name.text,
                on = on_cluster(cluster),
                db = cluster.database,
                sfx = LOCAL_SUFFIX,
                c = cluster.name,
            );
            Ok(vec![local, dist])
        }
    }
}

/// The text after the engine, with the non-replicated dedup window setting renamed (the
/// replicated tables' own setting keeps the same window).
fn replicated_settings(stmt: &str, toks: &[Tok], from: usize) -> String {
    let mut out = String::new();
    let mut at = from;
    for t in toks.iter().filter(|t| t.start >= from && t.is_word(stmt, "non_replicated_deduplication_window")) {
        out.push_str(&stmt[at..t.start]);
        out.push_str("replicated_deduplication_window");
        at = t.end;
    }
    out.push_str(&stmt[at..]);
    out
}

fn create_materialized_view(stmt: &str, toks: &[Tok], cluster: &Cluster) -> Result<Vec<String>, ClusterError> {
    let name = object_name(stmt, toks, 3)?;
    if !toks.get(name.next).is_some_and(|t| t.is_word(stmt, "TO")) {
        return Err(ClusterError::Unsupported(format!("materialized view {} without TO <table>", name.text)));
    }
    // `TO target` and every `FROM t` / `JOIN t` of a sharded table read and write the local tables
    let mut edits: Vec<(Tok, String)> = Vec::new();
    let target = object_name(stmt, toks, name.next + 1)?;
    if !matches!(known_table(&target.text)?, Placement::Sharded(_)) {
        return Err(ClusterError::Unsupported(format!("{} writes a table on every node", name.text)));
    }
    edits.push((toks[target.next - 1], format!("`{}{LOCAL_SUFFIX}`", target.text)));
    for i in target.next..toks.len() {
        if toks[i].is_word(stmt, "FROM") || toks[i].is_word(stmt, "JOIN") {
            if let Ok(src) = object_name(stmt, toks, i + 1) {
                if matches!(placement(&src.text), Some(Placement::Sharded(_))) {
                    edits.push((toks[src.next - 1], format!("`{}{LOCAL_SUFFIX}`", src.text)));
                }
            }
        }
    }
    let mut out = String::new();
    let mut at = 0;
    for (tok, with) in &edits {
        out.push_str(&stmt[at..tok.start]);
        out.push_str(with);
        at = tok.end;
    }
    out.push_str(&stmt[at..]);
    let shift = on_cluster(cluster);
    out.insert_str(name.end, &shift);
    Ok(vec![out])
}

/// The ALTER commands that change columns: the Distributed table must follow them.
fn is_column_command(words: &[String]) -> bool {
    matches!(words.first().map(String::as_str), Some("ADD" | "MODIFY" | "DROP" | "RENAME" | "COMMENT"))
        && words.get(1).map(String::as_str) == Some("COLUMN")
}

fn alter_table(stmt: &str, toks: &[Tok], cluster: &Cluster) -> Result<Vec<String>, ClusterError> {
    let name = object_name(stmt, toks, 2)?;
    let place = known_table(&name.text)?;
    if toks.get(name.next).is_some_and(|t| t.is_word(stmt, "ON")) {
        return Err(ClusterError::Unsupported("ALTER already ON CLUSTER".into()));
    }
    // commands: split at commas outside parentheses
    let mut commands: Vec<(usize, usize)> = Vec::new();
    let (mut depth, mut from) = (0i32, name.next);
    for (i, t) in toks.iter().enumerate().skip(name.next) {
        if t.is_punct(stmt, "(") {
            depth += 1;
        } else if t.is_punct(stmt, ")") {
            depth -= 1;
        } else if depth == 0 && t.is_punct(stmt, ",") {
            commands.push((from, i));
            from = i + 1;
        }
    }
    commands.push((from, toks.len()));
    if commands.iter().any(|(a, b)| a >= b) {
        return Err(ClusterError::Malformed(format!("ALTER TABLE {}: empty command", name.text)));
    }
    let text = |(a, b): (usize, usize)| stmt[toks[a].start..toks[b - 1].end].to_string();
    let column_cmds: Vec<String> = commands
        .iter()
        .filter(|(a, b)| is_column_command(&toks[*a..*b].iter().take(2).map(|t| t.upper(stmt)).collect::<Vec<_>>()))
        .map(|c| text(*c))
        .collect();
    let all: Vec<String> = commands.iter().map(|c| text(*c)).collect();
    match place {
        Placement::EveryNode => Ok(vec![insert_on_cluster(stmt, &name, cluster)]),
        Placement::Sharded(_) => {
            let mut out = vec![format!("ALTER TABLE `{}{LOCAL_SUFFIX}`{}\n    {}", name.text, on_cluster(cluster), all.join(",\n    "))];
            if !column_cmds.is_empty() {
                out.push(format!("ALTER TABLE `{}`{}\n    {}", name.text, on_cluster(cluster), column_cmds.join(",\n    ")));
            }
            Ok(out)
        }
    }
}

fn drop(stmt: &str, toks: &[Tok], cluster: &Cluster) -> Result<Vec<String>, ClusterError> {
    let name = object_name(stmt, toks, 2)?;
    let mut out = vec![insert_on_cluster(stmt, &name, cluster)];
    if toks[1].is_word(stmt, "TABLE") && matches!(placement(&name.text), Some(Placement::Sharded(_))) {
        out.push(renamed_local(stmt, toks, &name, cluster));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddl::{statements as split, MIGRATIONS};

    const C: Cluster = Cluster { name: "sendtrace", database: "sendtrace" };

    fn one(sql: &str) -> Vec<String> {
        statements(sql, &C).unwrap_or_else(|e| panic!("{e}: {sql}"))
    }

    #[test]
    fn every_engine_gets_its_replicated_form_with_its_arguments() {
        let cases = [
            ("MergeTree", "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')"),
            ("ReplacingMergeTree", "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')"),
            ("ReplacingMergeTree(version)", "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version)"),
            (
                "ReplacingMergeTree(version, is_deleted)",
                "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version, is_deleted)",
            ),
            (
                "SummingMergeTree((events, cost_amount))",
                "ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', (events, cost_amount))",
            ),
            ("AggregatingMergeTree", "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')"),
            ("CollapsingMergeTree(sign)", "ReplicatedCollapsingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', sign)"),
            (
                "VersionedCollapsingMergeTree(sign, version)",
                "ReplicatedVersionedCollapsingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', sign, version)",
            ),
        ];
        for (engine, replicated) in cases {
            let out = one(&format!("CREATE TABLE IF NOT EXISTS counters\n(\n    tenant String,\n    sign Int8\n)\nENGINE = {engine}\nORDER BY tenant"));
            assert_eq!(out.len(), 2, "{out:?}");
            assert!(out[0].starts_with("CREATE TABLE IF NOT EXISTS `counters_local` ON CLUSTER 'sendtrace'\n(\n    tenant String,"), "{}", out[0]);
            assert!(out[0].contains(&format!("ENGINE = {replicated}\nORDER BY tenant")), "{engine}: {}", out[0]);
            assert_eq!(
                out[1],
                "CREATE TABLE IF NOT EXISTS `counters` ON CLUSTER 'sendtrace' AS `sendtrace`.`counters_local`\n\
                 ENGINE = Distributed('sendtrace', 'sendtrace', 'counters_local', cityHash64(tenant))"
            );
        }
        for engine in ["Memory", "Log", "ReplicatedMergeTree('/p', 'r')", "Null"] {
            let err = statements(&format!("CREATE TABLE counters (a String) ENGINE = {engine}"), &C).unwrap_err();
            assert_eq!(err.code(), "unsupported", "{engine}: {err}");
        }
    }

    #[test]
    fn the_dedup_window_becomes_the_replicated_one() {
        let out = one("CREATE TABLE deliveries (tenant String, delivery_key String, version UInt64) ENGINE = ReplacingMergeTree(version) \
                       ORDER BY (tenant, delivery_key) SETTINGS non_replicated_deduplication_window = 10000");
        assert!(out[0].ends_with("ORDER BY (tenant, delivery_key) SETTINGS replicated_deduplication_window = 10000"), "{}", out[0]);
        assert!(out[1].ends_with("'deliveries_local', cityHash64(delivery_key))"), "{}", out[1]);
    }

    #[test]
    fn column_changes_reach_the_distributed_table_and_the_rest_only_the_local_one() {
        let out = one("ALTER TABLE counters\n    ADD COLUMN IF NOT EXISTS machine LowCardinality(String),\n    MODIFY ORDER BY (tenant, period, machine)");
        assert_eq!(
            out,
            vec![
                "ALTER TABLE `counters_local` ON CLUSTER 'sendtrace'\n    ADD COLUMN IF NOT EXISTS machine LowCardinality(String),\n    MODIFY ORDER BY (tenant, period, machine)",
                "ALTER TABLE `counters` ON CLUSTER 'sendtrace'\n    ADD COLUMN IF NOT EXISTS machine LowCardinality(String)",
            ]
        );
        let idx = one("ALTER TABLE events ADD INDEX IF NOT EXISTS delivery_key_bf delivery_key TYPE bloom_filter(0.01) GRANULARITY 1");
        assert_eq!(idx, vec!["ALTER TABLE `events_local` ON CLUSTER 'sendtrace'\n    ADD INDEX IF NOT EXISTS delivery_key_bf delivery_key TYPE bloom_filter(0.01) GRANULARITY 1"]);
        assert_eq!(statements("ALTER TABLE nobody ADD COLUMN x UInt8", &C).unwrap_err(), ClusterError::UnknownTable("nobody".into()));
    }

    #[test]
    fn materialized_views_read_and_write_the_local_tables() {
        let out = one("CREATE MATERIALIZED VIEW IF NOT EXISTS event_times_mv TO event_times AS\nSELECT tenant, max(occurred_at) AS newest FROM events GROUP BY tenant");
        assert_eq!(
            out,
            vec!["CREATE MATERIALIZED VIEW IF NOT EXISTS event_times_mv ON CLUSTER 'sendtrace' TO `event_times_local` AS\nSELECT tenant, max(occurred_at) AS newest FROM `events_local` GROUP BY tenant"]
        );
        let err = statements("CREATE MATERIALIZED VIEW v ENGINE = MergeTree ORDER BY a AS SELECT a FROM events", &C).unwrap_err();
        assert_eq!(err.code(), "unsupported");
    }

    #[test]
    fn views_inserts_and_drops() {
        assert_eq!(one("CREATE OR REPLACE VIEW broadcast_stats AS\nSELECT 1 FROM deliveries FINAL"), vec![
            "CREATE OR REPLACE VIEW broadcast_stats ON CLUSTER 'sendtrace' AS\nSELECT 1 FROM deliveries FINAL"
        ]);
        assert_eq!(one("INSERT INTO event_times SELECT tenant, max(occurred_at) FROM events GROUP BY tenant").len(), 1);
        assert_eq!(statements("INSERT INTO elsewhere SELECT 1", &C).unwrap_err().code(), "unknown_table");
        assert_eq!(one("DROP TABLE IF EXISTS counters SYNC"), vec![
            "DROP TABLE IF EXISTS counters ON CLUSTER 'sendtrace' SYNC",
            "DROP TABLE IF EXISTS `counters_local` ON CLUSTER 'sendtrace' SYNC"
        ]);
        assert_eq!(one("CREATE DATABASE IF NOT EXISTS `sendtrace`"), vec!["CREATE DATABASE IF NOT EXISTS `sendtrace` ON CLUSTER 'sendtrace'"]);
        assert_eq!(statements("OPTIMIZE TABLE counters FINAL", &C).unwrap_err().code(), "unsupported");
        let bad = Cluster { name: "x' ; DROP", database: "sendtrace" };
        assert_eq!(statements("CREATE DATABASE d", &bad).unwrap_err().code(), "invalid_name");
    }

    #[test]
    fn strings_and_comments_do_not_confuse_it() {
        let out = one("CREATE TABLE IF NOT EXISTS sender_health (tenant String COMMENT 'ENGINE = Memory, (', x UInt8) ENGINE = ReplacingMergeTree(x) ORDER BY tenant");
        assert!(out[0].contains("COMMENT 'ENGINE = Memory, ('") && out[0].contains("ENGINE = ReplicatedReplacingMergeTree("), "{}", out[0]);
    }

    #[test]
    fn every_migration_translates_and_every_table_is_placed() {
        let mut created = Vec::new();
        for (version, _, sql) in MIGRATIONS {
            for stmt in split(sql) {
                let out = statements(&stmt, &C).unwrap_or_else(|e| panic!("migration {version}: {e}\n{stmt}"));
                assert!(!out.is_empty());
                for s in &out {
                    let insert = s.starts_with("INSERT");
                    assert_eq!(s.contains(" ON CLUSTER 'sendtrace'"), !insert, "migration {version}: {s}");
                    assert!(!s.contains("non_replicated_deduplication_window"), "{s}");
                    if s.starts_with("CREATE TABLE") && !s.contains("Distributed(") {
                        assert!(s.contains("ENGINE = Replicated"), "{s}");
                        created.push(s.split('`').nth(1).unwrap().trim_end_matches(LOCAL_SUFFIX).to_string());
                    }
                }
            }
        }
        for t in SHARDING.iter().filter(|t| t.table != "schema_migrations") {
            assert!(created.contains(&t.table.to_string()), "SHARDING lists {} that no migration creates", t.table);
        }
    }

    #[test]
    fn merging_tables_shard_by_their_key() {
        // the columns of each sharding key are ORDER BY columns of the table, except `events`,
        // whose delivery key every version of a row shares, and `soft_bounces` and the failures, filled from
        // `events`' rows on their shard by the same key (see SHARDING)
        for (_, _, sql) in MIGRATIONS {
            for stmt in split(sql).iter().filter(|s| s.starts_with("CREATE TABLE")) {
                let out = one(stmt);
                let name = out[0].split('`').nth(1).unwrap().trim_end_matches(LOCAL_SUFFIX).to_string();
                let Some(Placement::Sharded(key)) = placement(&name) else { continue };
                let order = stmt.split("ORDER BY").nth(1).unwrap().lines().next().unwrap();
                let cols = key.trim_start_matches("cityHash64(").trim_end_matches(')');
                for col in cols.split(',').map(str::trim) {
                    assert!(order.contains(col) || ["events", "soft_bounces", "failures", "attributed_failures"].contains(&name.as_str()), "{name}: {col} not in ORDER BY {order}");
                }
            }
        }
        assert_eq!(placement("delivery_order"), placement("deliveries"), "the view's rows and the tombstones meet");
        assert_eq!(placement("events"), placement("deliveries"), "a delivery's rows on one shard");
        assert_eq!(placement("soft_bounces"), placement("events"), "the view's rows and the backfill meet");
        assert_eq!(placement("failures"), placement("events"), "the view's rows and the backfill meet");
        assert_eq!(placement("attributed_failures"), placement("events"), "the view's rows and the backfill meet");
    }
}
