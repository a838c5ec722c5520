//! Flap histories (`flap_history`): written by the group commit, read with the open
//! state and, on replicas, with the firing alerts of the identities a batch touches
//! (`slices.rs`).

use super::Backend;
use super::{Columns, On, Sql, SqlStore};
use crate::clock::{from_millis, to_millis};
use crate::dedup::DedupKey;
use crate::flapping::Flap;
use crate::store::StoreError;

const FLAP_COLUMNS: &str = "source, dedup_key, changes, flapping, incident_id";

/// Writes an identity's history, or deletes it (`None`).
pub(super) fn keep_flap(key: &DedupKey, flap: Option<&Flap>) -> Sql {
    let Some(flap) = flap else {
        let mut sql = Sql::once("DELETE FROM flap_history WHERE source = ");
        sql.bind(&key.source)
            .push(" AND dedup_key = ")
            .bind(&key.key)
            .push(";");
        return sql;
    };
    let changes: Vec<i64> = flap.changes().map(to_millis).collect();
    // A list of integers always serializes.
    let changes = serde_json::to_string(&changes).unwrap_or_else(|_| "[]".into());
    let mut sql = Sql::once(format!(
        "INSERT INTO flap_history ({FLAP_COLUMNS}) VALUES ("
    ));
    sql.bind(&key.source)
        .push(", ")
        .bind(&key.key)
        .push(", ")
        .bind(changes)
        .push(", ")
        .bind(flap.flapping)
        .push(", ")
        .bind(flap.incident_id)
        .push(
            ") ON CONFLICT (source, dedup_key) DO UPDATE SET changes = excluded.changes, \
             flapping = excluded.flapping, incident_id = excluded.incident_id;",
        );
    sql
}

impl<B: Backend> SqlStore<B> {
    /// Every flap history kept.
    pub(super) async fn all_flaps(&self) -> Result<Vec<(DedupKey, Flap)>, StoreError> {
        self.flaps(Sql::new(format!("SELECT {FLAP_COLUMNS} FROM flap_history")))
            .await
    }

    async fn flaps(&self, sql: Sql) -> Result<Vec<(DedupKey, Flap)>, StoreError> {
        self.fetch_map(On::Writer, sql, flap_from_row).await
    }
}

/// A flap history from a row of [`FLAP_COLUMNS`].
pub(super) fn flap_from_row(row: &impl Columns) -> Result<(DedupKey, Flap), StoreError> {
    let key = DedupKey {
        source: row.text("source")?,
        key: row.text("dedup_key")?,
    };
    let changes: Vec<i64> = row.json("changes")?;
    let flap = Flap::kept(
        changes.into_iter().map(from_millis).collect(),
        row.flag("flapping")?,
        row.opt_int("incident_id")?,
    );
    Ok((key, flap))
}
