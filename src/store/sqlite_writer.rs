//! SQLite's write connection on a thread of its own (rusqlite, called synchronously,
//! statements prepared once and kept). Every write and every read that must see the
//! latest commit reaches it through one channel; the thread takes everything
//! waiting, runs it in one transaction — each request in a savepoint of its own, so
//! one that fails changes nothing and leaves the others — commits once (one fsync,
//! `synchronous=FULL`) and only then answers each request with one wake. Urgent
//! requests (the pipeline's batch, reads) go first; patient ones (the outbox's
//! settlements) fill the rest of a group, and wait a moment for a batch to share a
//! commit with rather than start one alone.
//!
//! Why not sqlx for this connection: each of its calls is a hand-off to its worker
//! thread and back, and a whole batch sent as one multi-statement string is parsed
//! afresh every time; both cost more than SQLite's own work under ingest load
//! (BENCHMARKS.md). The group commit here also takes in the outbox's small writes
//! (a message settled, a timeline line), which otherwise cost an fsync each.

use super::StoreError;
use super::sql::{Arg, Columns, Sql};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Most requests committed together.
const MAX_GROUP: usize = 256;
/// Most patient requests in one group: each is a savepoint of its own, and a batch
/// that arrives meanwhile waits for the whole group.
const MAX_PATIENT: usize = 32;
/// How long a group of patient requests alone waits for another request to share
/// its commit: under ingest load a batch comes within a commit's time, and the outbox's
/// settlements then cost no fsync of their own (they took half the commits of a P1
/// storm, each one the pipeline's next batch waited behind).
const PATIENCE: Duration = Duration::from_millis(2);
/// Prepared statements kept, least recently used dropped first: the fixed ones,
/// and the multi-row inserts of a batch, whose text depends on their row count (a
/// big one's program is tens of kilobytes). 64 keep the row counts a steady load
/// repeats; 512 measured no faster.
const STATEMENTS_KEPT: usize = 64;

/// What a request asks of the write connection.
enum Work {
    /// A group commit's statements, all or none.
    Batch(Vec<Sql>),
    /// One statement; answers the rows it changed.
    Execute(Sql),
    /// One statement returning rows (a read, or an `UPDATE … RETURNING`).
    Fetch(Sql),
}

enum Done {
    Batch,
    Execute(u64),
    Fetch(Vec<WrittenRow>),
}

struct Job {
    work: Work,
    /// Whether it may wait [`PATIENCE`] for company before its commit starts.
    patient: bool,
    reply: oneshot::Sender<Result<Done, StoreError>>,
}

/// The handle to the writer thread; dropping it lets the thread finish what it holds
/// and close the connection.
#[derive(Debug)]
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Opens the write connection to an existing database (migrated already) and
    /// starts its thread.
    pub(super) fn start(path: &Path) -> Result<Self, StoreError> {
        let connection = open(path).map_err(|error| {
            StoreError::Open(format!(
                "cannot open {} for writing: {error}",
                path.display()
            ))
        })?;
        let (jobs, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || serve(connection, queue))
            .map_err(|error| {
                StoreError::Open(format!("cannot start the SQLite writer thread: {error}"))
            })?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    async fn ask(&self, work: Work, patient: bool) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .as_ref()
            .ok_or(StoreError::WriterStopped)?
            .send(Job {
                work,
                patient,
                reply,
            })
            .map_err(|_| StoreError::WriterStopped)?;
        // A dropped reply means the thread died with the request.
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    pub(super) async fn batch(&self, statements: Vec<Sql>) -> Result<(), StoreError> {
        self.ask(Work::Batch(statements), false).await.map(|_| ())
    }

    /// A batch nobody waits on to answer a client (an outbox settlement): it may
    /// wait [`PATIENCE`] to ride in another request's commit rather than start one.
    pub(super) async fn patient_batch(&self, statements: Vec<Sql>) -> Result<(), StoreError> {
        self.ask(Work::Batch(statements), true).await.map(|_| ())
    }

    pub(super) async fn execute(&self, sql: Sql) -> Result<u64, StoreError> {
        match self.ask(Work::Execute(sql), false).await? {
            Done::Execute(changed) => Ok(changed),
            _ => Ok(0),
        }
    }

    pub(super) async fn fetch(&self, sql: Sql) -> Result<Vec<WrittenRow>, StoreError> {
        match self.ask(Work::Fetch(sql), false).await? {
            Done::Fetch(rows) => Ok(rows),
            _ => Ok(Vec::new()),
        }
    }
}

impl Drop for Writer {
    /// Waits for the thread to commit what it holds and close the file, so the
    /// database is free (and its lock can be taken again) once the store is gone.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the SQLite writer thread had panicked");
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // As the migrations' connection had them: WAL, every commit on disk before it
    // is answered, foreign keys enforced.
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
    Ok(connection)
}

/// The thread: one group commit per round of waiting requests, until every handle
/// is gone and nothing waits.
fn serve(mut connection: Connection, queue: mpsc::Receiver<Job>) {
    let mut waiting = Waiting::default();
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        if waiting.is_empty() {
            match queue.recv() {
                Ok(job) => waiting.push(job),
                Err(_) => return,
            }
        }
        waiting.take_all(&queue);
        if waiting.urgent.is_empty()
            && let Ok(job) = queue.recv_timeout(PATIENCE)
        {
            waiting.push(job);
            waiting.take_all(&queue);
        }
        waiting.next_group(&mut group);
        let results = commit_group(&mut connection, group.iter().map(|job| &job.work));
        for (job, result) in group.drain(..).zip(results) {
            // The asker may have given up; nothing to tell then.
            let _ = job.reply.send(result);
        }
    }
}

/// The requests received and not yet committed. Every urgent one goes into the next
/// group, ahead of patient ones however many wait: a burst of settlements (a flush
/// of thousands of pages) must not hold the pipeline's batch, and its 202s, behind
/// it.
#[derive(Default)]
struct Waiting {
    urgent: VecDeque<Job>,
    patient: VecDeque<Job>,
}

impl Waiting {
    fn is_empty(&self) -> bool {
        self.urgent.is_empty() && self.patient.is_empty()
    }

    fn push(&mut self, job: Job) {
        if job.patient {
            self.patient.push_back(job);
        } else {
            self.urgent.push_back(job);
        }
    }

    fn take_all(&mut self, queue: &mpsc::Receiver<Job>) {
        while let Ok(job) = queue.try_recv() {
            self.push(job);
        }
    }

    /// The oldest urgent requests, then the oldest patient ones: up to [`MAX_GROUP`]
    /// in all, [`MAX_PATIENT`] of them patient.
    fn next_group(&mut self, group: &mut Vec<Job>) {
        let urgent = MAX_GROUP.min(self.urgent.len());
        group.extend(self.urgent.drain(..urgent));
        let room = MAX_PATIENT.min(MAX_GROUP.saturating_sub(group.len()));
        let patient = room.min(self.patient.len());
        group.extend(self.patient.drain(..patient));
    }
}

/// Runs the requests in one transaction, each in a savepoint when there are several,
/// and commits; a failed commit (or savepoint) fails them all.
fn commit_group<'a>(
    connection: &mut Connection,
    works: impl ExactSizeIterator<Item = &'a Work>,
) -> Vec<Result<Done, StoreError>> {
    let count = works.len();
    if let Err(error) = run_fixed(connection, "BEGIN IMMEDIATE") {
        return (0..count).map(|_| Err(write_error(&error))).collect();
    }
    let alone = count == 1;
    let mut results = Vec::with_capacity(count);
    for work in works {
        let result = if alone {
            Ok(run(connection, work))
        } else {
            in_savepoint(connection, work)
        };
        match result {
            Ok(result) => results.push(result.map_err(|error| write_error(&error))),
            Err(error) => {
                rollback(connection);
                return (0..count).map(|_| Err(write_error(&error))).collect();
            }
        }
    }
    if alone && results.first().is_some_and(Result::is_err) {
        rollback(connection);
        return results;
    }
    match run_fixed(connection, "COMMIT") {
        Ok(()) => results,
        Err(error) => {
            rollback(connection);
            (0..count).map(|_| Err(write_error(&error))).collect()
        }
    }
}

/// Runs one request in a savepoint. Its own failure is rolled back to the savepoint
/// and returned inside; a failure of the savepoint itself leaves the transaction in
/// a state nobody knows (a failed request's rows might still be in it), so it is
/// returned outside, and the whole group is rolled back and answered with it.
fn in_savepoint(connection: &Connection, work: &Work) -> rusqlite::Result<rusqlite::Result<Done>> {
    run_fixed(connection, "SAVEPOINT request")?;
    let result = run(connection, work);
    if result.is_err() {
        run_fixed(connection, "ROLLBACK TO request")?;
    }
    run_fixed(connection, "RELEASE request")?;
    Ok(result)
}

fn rollback(connection: &Connection) {
    if let Err(error) = run_fixed(connection, "ROLLBACK") {
        tracing::warn!(%error, "rollback after a failed write failed");
    }
}

fn run_fixed(connection: &Connection, text: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(text)?.execute([])?;
    Ok(())
}

fn run(connection: &Connection, work: &Work) -> rusqlite::Result<Done> {
    match work {
        Work::Batch(statements) => {
            for sql in statements {
                execute(connection, sql)?;
            }
            Ok(Done::Batch)
        }
        Work::Execute(sql) => execute(connection, sql).map(Done::Execute),
        Work::Fetch(sql) => fetch(connection, sql).map(Done::Fetch),
    }
}

/// The statement's text as SQLite prepares it: one statement, no trailing `;`.
fn text(sql: &Sql) -> &str {
    sql.text().trim_end().trim_end_matches(';')
}

fn execute(connection: &Connection, sql: &Sql) -> rusqlite::Result<u64> {
    let mut statement = connection.prepare_cached(text(sql))?;
    bind(&mut statement, sql.args())?;
    Ok(statement.raw_execute()? as u64)
}

fn fetch(connection: &Connection, sql: &Sql) -> rusqlite::Result<Vec<WrittenRow>> {
    let mut statement = connection.prepare_cached(text(sql))?;
    bind(&mut statement, sql.args())?;
    let names: Arc<[String]> = statement
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let width = names.len();
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..width)
            .map(|index| row.get::<_, Value>(index))
            .collect::<rusqlite::Result<Vec<Value>>>()?;
        out.push(WrittenRow {
            names: Arc::clone(&names),
            values,
        });
    }
    Ok(out)
}

fn bind(statement: &mut rusqlite::CachedStatement<'_>, args: &[Arg]) -> rusqlite::Result<()> {
    for (index, arg) in args.iter().enumerate() {
        let value: &dyn ToSql = match arg {
            Arg::Int(value) => value,
            Arg::OptInt(value) => value,
            Arg::OptInt32(value) => value,
            Arg::Text(value) => value,
            Arg::OptText(value) => value,
            Arg::Bool(value) => value,
            Arg::Texts(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    super::sql::NO_TEXT_LISTS.into(),
                ));
            }
        };
        statement.raw_bind_parameter(index + 1, value)?;
    }
    Ok(())
}

fn write_error(error: &rusqlite::Error) -> StoreError {
    StoreError::Write(error.to_string())
}

/// A row read on the write connection, owned (it crosses back from the thread).
#[derive(Debug)]
pub(super) struct WrittenRow {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl WrittenRow {
    fn value(&self, column: &str) -> Result<ValueRef<'_>, StoreError> {
        self.names
            .iter()
            .position(|name| name == column)
            .and_then(|index| self.values.get(index))
            .map(ValueRef::from)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {column}")))
    }

    fn first(&self) -> Result<ValueRef<'_>, StoreError> {
        self.values
            .first()
            .map(ValueRef::from)
            .ok_or_else(|| StoreError::Corrupt("a row without columns".into()))
    }
}

fn unexpected(column: &str, value: ValueRef<'_>) -> StoreError {
    StoreError::Corrupt(format!(
        "column {column} holds {:?}, not the expected type",
        value.data_type()
    ))
}

fn int(column: &str, value: ValueRef<'_>) -> Result<i64, StoreError> {
    match value {
        ValueRef::Integer(value) => Ok(value),
        other => Err(unexpected(column, other)),
    }
}

fn opt_int(column: &str, value: ValueRef<'_>) -> Result<Option<i64>, StoreError> {
    match value {
        ValueRef::Null => Ok(None),
        other => int(column, other).map(Some),
    }
}

fn text_of(column: &str, value: ValueRef<'_>) -> Result<String, StoreError> {
    match value {
        ValueRef::Text(bytes) => String::from_utf8(bytes.to_vec())
            .map_err(|_| StoreError::Corrupt(format!("column {column} is not UTF-8"))),
        other => Err(unexpected(column, other)),
    }
}

impl Columns for WrittenRow {
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        int(column, self.value(column)?)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        opt_int(column, self.value(column)?)
    }
    fn opt_int32(&self, column: &str) -> Result<Option<i32>, StoreError> {
        opt_int(column, self.value(column)?)?
            .map(|value| {
                i32::try_from(value)
                    .map_err(|_| StoreError::Corrupt(format!("column {column} is out of range")))
            })
            .transpose()
    }
    fn text(&self, column: &str) -> Result<String, StoreError> {
        text_of(column, self.value(column)?)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self.value(column)? {
            ValueRef::Null => Ok(None),
            other => text_of(column, other).map(Some),
        }
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Ok(self.int(column)? != 0)
    }
    fn first_int(&self) -> Result<i64, StoreError> {
        int("1", self.first()?)
    }
    fn first_text(&self) -> Result<String, StoreError> {
        text_of("1", self.first()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn store() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, at INTEGER, flag BOOLEAN NOT NULL DEFAULT 0);")
            .unwrap();
        drop(connection);
        let writer = Writer::start(&path).unwrap();
        (dir, writer)
    }

    fn insert(name: &str) -> Sql {
        Sql::new("INSERT INTO t (name, at, flag) VALUES (?, ?, ?);")
            .arg(name)
            .arg(Some(1_700_000_000_000_i64))
            .arg(true)
    }

    #[tokio::test]
    async fn a_failing_request_changes_nothing_and_leaves_the_others_of_its_group() {
        let (_dir, writer) = store();
        let (a, b, c) = tokio::join!(
            writer.batch(vec![insert("a"), insert("b")]),
            writer.batch(vec![insert("c"), insert("a")]),
            writer.execute(insert("d")),
        );
        a.unwrap();
        assert!(matches!(b, Err(StoreError::Write(_))), "a is taken");
        assert_eq!(c.unwrap(), 1);
        let rows = writer
            .fetch(Sql::new("SELECT id, name, at, flag FROM t ORDER BY name"))
            .await
            .unwrap();
        let names: Vec<String> = rows.iter().map(|row| row.text("name").unwrap()).collect();
        assert_eq!(names, ["a", "b", "d"], "c went with its request's failure");
        let first = &rows[0];
        let at: DateTime<Utc> = first.time("at").unwrap();
        assert_eq!(at.timestamp_millis(), 1_700_000_000_000);
        assert!(first.flag("flag").unwrap());
        assert_eq!(first.opt_text("name").unwrap().as_deref(), Some("a"));
        assert!(first.int("name").is_err(), "text is not read as a number");
    }

    #[test]
    fn urgent_requests_go_first_however_many_patient_ones_wait() {
        let job = |name: &str, patient| Job {
            work: Work::Execute(insert(name)),
            patient,
            reply: oneshot::channel().0,
        };
        let mut waiting = Waiting::default();
        for index in 0..MAX_PATIENT + 10 {
            waiting.push(job(&format!("settled {index}"), true));
        }
        waiting.push(job("batch", false));
        let mut group = Vec::new();
        waiting.next_group(&mut group);
        assert_eq!(group.len(), 1 + MAX_PATIENT);
        assert!(!group[0].patient, "the batch first");
        assert!(group[1..].iter().all(|job| job.patient));
        group.clear();
        waiting.next_group(&mut group);
        assert_eq!(group.len(), 10, "then the rest");
        assert!(waiting.is_empty());
    }

    #[tokio::test]
    async fn a_stopped_writer_is_a_store_error_not_a_panic() {
        let (_dir, mut writer) = store();
        writer.jobs.take();
        assert!(matches!(
            writer.execute(insert("a")).await,
            Err(StoreError::WriterStopped)
        ));
    }
}
