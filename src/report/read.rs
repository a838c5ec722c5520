//! Reads from the store what the pure KPI computation (`crate::kpi`) needs, for the
//! reports, the dashboard and `GET /api/v1/kpi`.

use crate::incident::Incident;
use crate::kpi::{self, Inputs};
use crate::store::{IncidentQuery, Store, StoreError};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// The KPI report of `[from, to)` as seen at `now`, read from the store.
pub async fn kpis(
    store: &dyn Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Value, StoreError> {
    let created = created_between(store, from, to).await?;
    let open = store
        .incidents(&IncidentQuery {
            statuses: vec!["triggered".into(), "acknowledged".into()],
            limit: i64::MAX,
            ..IncidentQuery::default()
        })
        .await?;
    let mut drill_timelines = HashMap::new();
    for drill in created.iter().filter(|incident| incident.drill) {
        drill_timelines.insert(drill.id, store.timeline(drill.id).await?);
    }
    let csat_scores = store.csat_scores(from, to).await?;
    let inputs = Inputs {
        created,
        open,
        drill_timelines,
        csat_scores,
    };
    Ok(kpi::compute(inputs, from, to, now))
}

/// The incidents created in `[from, to)`.
pub async fn created_between(
    store: &dyn Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Incident>, StoreError> {
    store
        .incidents(&IncidentQuery {
            created_from: Some(from),
            created_to: Some(to),
            limit: i64::MAX,
            ..IncidentQuery::default()
        })
        .await
}
