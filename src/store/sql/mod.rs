//! The SQL both backends share, as plain code: one file per concern (`alerts.rs`,
//! `incidents.rs`, `paging.rs`, `runs.rs`, `tickets.rs`, `keys.rs`, and `writes.rs`
//! for the group commit) implements the store traits for [`SqlStore`] over any
//! [`Backend`]. Queries are written once with `?` placeholders into a [`Sql`]; what
//! differs lives in the backend: numbering placeholders, executing a batch, taking
//! the write turn, how a claim locks its rows, and opening the database.

mod alerts;
mod channels;
mod console;
mod flaps;
mod incidents;
mod keys;
mod paging;
mod rows;
mod runs;
mod slices;
mod tickets;
mod writes;

pub(super) use rows::Columns;

use super::StoreError;
use sqlx::encode::Encode;
use sqlx::error::BoxDynError;
use sqlx::types::Type;
use std::future::Future;

/// Identities or ids per query (`IN (…)`), well under any engine's bound parameters.
const CHUNK: usize = 500;
/// Rows per multi-row INSERT, kept under SQLite's 32,766 bound parameters.
const INSERT_CHUNK: usize = 1000;

/// Which connections a query runs on: the writer's (it sees the latest commit) or the
/// readers' (API reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum On {
    Writer,
    Readers,
}

/// What a database engine does its own way. Everything else is in this module's files.
pub(super) trait Backend: Send + Sync + 'static {
    /// A fetched row.
    type Row: Columns + Send + Sync;
    /// Appended to the sub-select that picks rows to claim.
    const CLAIM_LOCK: &'static str;
    /// True when one process owns the database, so what it finds half-done at start
    /// (running runs, claimed rows) is its own.
    const ONE_PROCESS: bool;
    /// True for a server, where every statement of a batch is a round trip.
    const ROUND_TRIPS: bool;

    fn fetch_all(
        &self,
        on: On,
        sql: Sql,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
    fn fetch_optional(
        &self,
        on: On,
        sql: Sql,
    ) -> impl Future<Output = Result<Option<Self::Row>, StoreError>> + Send;
    /// Runs one statement; returns the rows it changed.
    fn execute(&self, on: On, sql: Sql) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Runs the statements of a group commit in one transaction, and ends the turn.
    fn execute_batch(
        &self,
        statements: Vec<Sql>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Runs statements in one transaction, beside the pipeline's batches (never in
    /// its turn): all of them, or none. Nobody waits on it to answer a client, so it
    /// may wait a few milliseconds to share a commit.
    fn execute_together(
        &self,
        statements: Vec<Sql>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// See [`super::WriteStore::begin_turn`].
    fn take_turn(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn give_up_turn(&self) -> impl Future<Output = ()> + Send;
    /// See [`super::SharedWrites::begin_keyed`].
    fn begin_keyed(&self, keys: &[i64]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// See [`super::SharedWrites::lock_keys`].
    fn lock_keys(&self, keys: &[i64]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// See [`super::SharedWrites::relay_commits`].
    fn relay_commits(
        &self,
        to: &tokio::sync::broadcast::Sender<()>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The first id of a block of [`ID_BLOCK`] ids of `table` no other caller gets.
    fn id_block(
        &self,
        table: super::IdTable,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
}

/// Ids per block a replica reserves (the sequences of migration 0020 step by it).
pub(super) const ID_BLOCK: i64 = 1000;

/// The store traits, implemented once over a backend.
#[derive(Debug)]
pub(super) struct SqlStore<B> {
    db: B,
}

impl<B: Backend> SqlStore<B> {
    pub(super) fn new(db: B) -> Self {
        Self { db }
    }

    /// Every row `sql` fetches, each read into a value by `read`.
    async fn fetch_map<T>(
        &self,
        on: On,
        sql: Sql,
        read: impl Fn(&B::Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.db.fetch_all(on, sql).await?.iter().map(read).collect()
    }

    async fn fetch_one(&self, on: On, sql: Sql) -> Result<B::Row, StoreError> {
        self.db
            .fetch_optional(on, sql)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }
}

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Arg {
    Int(i64),
    OptInt(Option<i64>),
    OptInt32(Option<i32>),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
    /// Texts as one PostgreSQL array (`= ANY(?)`): the statement's text stays the same
    /// whatever the number of values, so it is prepared (parsed) once. SQLite
    /// binds no lists.
    Texts(Vec<String>),
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}
impl From<Option<i64>> for Arg {
    fn from(value: Option<i64>) -> Self {
        Self::OptInt(value)
    }
}
impl From<Option<i32>> for Arg {
    fn from(value: Option<i32>) -> Self {
        Self::OptInt32(value)
    }
}
impl From<String> for Arg {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}
impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Self::Text(value.to_string())
    }
}
impl From<&String> for Arg {
    fn from(value: &String) -> Self {
        Self::Text(value.clone())
    }
}
impl From<Option<String>> for Arg {
    fn from(value: Option<String>) -> Self {
        Self::OptText(value)
    }
}
impl From<&Option<String>> for Arg {
    fn from(value: &Option<String>) -> Self {
        Self::OptText(value.clone())
    }
}
impl From<bool> for Arg {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

/// One SQL statement with `?` placeholders and the values bound to them, in order.
/// Our dynamic SQL is built only from constants and column lists, never from input:
/// every value goes through [`Sql::bind`].
#[derive(Debug)]
pub(super) struct Sql {
    text: String,
    args: Vec<Arg>,
    /// Whether the backend may keep the prepared statement for reuse; off for
    /// statements whose text changes with their row count.
    persistent: bool,
}

impl Sql {
    /// A statement whose `?` placeholders are bound with [`Sql::arg`].
    pub(super) fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            args: Vec::new(),
            persistent: true,
        }
    }

    /// A statement not worth preparing for reuse (a batch's, sized by its rows).
    pub(super) fn once(text: impl Into<String>) -> Self {
        Self {
            persistent: false,
            ..Self::new(text)
        }
    }

    /// Binds the next `?` already in the text.
    pub(super) fn arg(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(super) fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.text.push('?');
        self.args.push(value.into());
        self
    }

    /// Appends `?, ?, …`, one per value.
    pub(super) fn list<A: Into<Arg>>(&mut self, values: impl IntoIterator<Item = A>) -> &mut Self {
        for (index, value) in values.into_iter().enumerate() {
            if index > 0 {
                self.text.push_str(", ");
            }
            self.bind(value);
        }
        self
    }

    /// Appends `VALUES (?, …), (?, …)`: one tuple per item, bound by `tuple`.
    pub(super) fn values<T>(
        &mut self,
        items: &[T],
        tuple: impl Fn(&mut Tuple<'_>, &T),
    ) -> &mut Self {
        self.text.push_str("VALUES ");
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                self.text.push_str(", ");
            }
            self.text.push('(');
            tuple(
                &mut Tuple {
                    sql: self,
                    first: true,
                },
                item,
            );
            self.text.push(')');
        }
        self
    }

    /// Appends `(?, …)` bound by `tuple`.
    pub(super) fn tuple(&mut self, tuple: impl FnOnce(&mut Tuple<'_>)) -> &mut Self {
        self.text.push('(');
        tuple(&mut Tuple {
            sql: self,
            first: true,
        });
        self.text.push(')');
        self
    }

    /// Appends ` AND column IN (?, …)` when there are values.
    pub(super) fn and_in(
        &mut self,
        column: &str,
        values: impl Iterator<Item = String>,
    ) -> &mut Self {
        let values: Vec<String> = values.collect();
        if !values.is_empty() {
            self.push(&format!(" AND {column} IN ("));
            self.list(values);
            self.push(")");
        }
        self
    }

    /// The text with its `?` placeholders.
    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// The values bound to the placeholders, in order.
    pub(super) fn args(&self) -> &[Arg] {
        &self.args
    }

    /// The text with `?` placeholders, the values and whether to keep it prepared.
    pub(super) fn into_parts(self) -> (String, Vec<Arg>, bool) {
        (self.text, self.args, self.persistent)
    }
}

/// The values of one parenthesised tuple, separated by commas.
pub(super) struct Tuple<'a> {
    sql: &'a mut Sql,
    first: bool,
}

impl Tuple<'_> {
    pub(super) fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        if !self.first {
            self.sql.text.push_str(", ");
        }
        self.first = false;
        self.sql.bind(value);
        self
    }
}

/// Arguments that take a list of texts as one value: PostgreSQL's arrays.
pub(super) trait TextList {
    fn add_texts(&mut self, values: Vec<String>) -> Result<(), BoxDynError>;
}

impl TextList for sqlx::postgres::PgArguments {
    fn add_texts(&mut self, values: Vec<String>) -> Result<(), BoxDynError> {
        sqlx::Arguments::add(self, values)
    }
}

/// Why SQLite's binders refuse [`Arg::Texts`].
pub(super) const NO_TEXT_LISTS: &str =
    "SQLite binds no list of texts: write the list out with `Sql::list`";

impl TextList for sqlx::sqlite::SqliteArguments {
    fn add_texts(&mut self, _values: Vec<String>) -> Result<(), BoxDynError> {
        Err(NO_TEXT_LISTS.into())
    }
}

/// The bound values as a backend's arguments.
pub(super) fn arguments<A>(args: Vec<Arg>) -> Result<A, BoxDynError>
where
    A: sqlx::Arguments + TextList,
    for<'q> i64: Encode<'q, A::Database> + Type<A::Database>,
    for<'q> Option<i64>: Encode<'q, A::Database> + Type<A::Database>,
    for<'q> Option<i32>: Encode<'q, A::Database> + Type<A::Database>,
    for<'q> String: Encode<'q, A::Database> + Type<A::Database>,
    for<'q> Option<String>: Encode<'q, A::Database> + Type<A::Database>,
    for<'q> bool: Encode<'q, A::Database> + Type<A::Database>,
{
    let mut arguments = A::default();
    for arg in args {
        match arg {
            Arg::Int(value) => arguments.add(value)?,
            Arg::OptInt(value) => arguments.add(value)?,
            Arg::OptInt32(value) => arguments.add(value)?,
            Arg::Text(value) => arguments.add(value)?,
            Arg::OptText(value) => arguments.add(value)?,
            Arg::Bool(value) => arguments.add(value)?,
            Arg::Texts(values) => arguments.add_texts(values)?,
        }
    }
    Ok(arguments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_lists_get_one_placeholder_per_value() {
        let mut sql = Sql::once("INSERT INTO t (a, b) ");
        sql.values(&[(1_i64, "x"), (2, "y")], |tuple, (a, b)| {
            tuple.bind(*a).bind(*b);
        });
        sql.push(" WHERE c IN (").list([3_i64, 4]).push(")");
        let (text, args, persistent) = sql.into_parts();
        assert_eq!(
            text,
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) WHERE c IN (?, ?)"
        );
        assert_eq!(args.len(), 6);
        assert!(!persistent);
    }
}
