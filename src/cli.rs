//! The command line as a client: `tocsin oncall` reads the configuration (and the
//! overrides taken in the console, from the database), and
//! `tocsin incidents …` talks to a running daemon over its HTTP API.

use crate::config::Config;
use anyhow::{Context, bail};
use serde_json::Value;

/// How to reach the daemon.
pub struct Remote {
    pub url: String,
    pub token: String,
}

impl Remote {
    fn client() -> anyhow::Result<reqwest::Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let mut request = Self::client()?
            .request(method, &url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach Tocsin at {url}; is it running? (--url)"))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = value["detail"].as_str().unwrap_or("");
            let error = value["error"].as_str().unwrap_or("request failed");
            bail!("{status}: {error}: {detail}");
        }
        Ok(value)
    }

    /// GETs a `{"items"}` page: as pretty JSON with `json`, else as a table of one row
    /// per item.
    async fn listing(
        &self,
        path: &str,
        json: bool,
        headers: &[&str],
        row: impl Fn(&Value) -> Vec<String>,
    ) -> anyhow::Result<String> {
        let page = self.call(reqwest::Method::GET, path, None).await?;
        if json {
            return Ok(serde_json::to_string_pretty(&page)?);
        }
        let rows: Vec<Vec<String>> = page["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(row)
            .collect();
        Ok(table(headers, &rows))
    }

    /// `tocsin incidents list`.
    pub async fn list(&self, status: Option<&str>, json: bool) -> anyhow::Result<String> {
        let query = status.map_or(String::new(), |s| format!("?status={s}"));
        let headers = ["ID", "PRI", "STATUS", "LEVEL", "SLA", "CREATED", "TITLE"];
        self.listing(&format!("/api/v1/incidents{query}"), json, &headers, |i| {
            vec![
                i["id"].to_string(),
                text(&i["priority"]),
                text(&i["status"]),
                text(&i["escalation_level"]),
                if i["sla_breached"] == Value::Bool(true) {
                    "BREACHED".into()
                } else {
                    "ok".into()
                },
                text(&i["created_at"]),
                text(&i["title"]),
            ]
        })
        .await
    }

    /// `tocsin incidents show ID`.
    pub async fn show(&self, id: i64, json: bool) -> anyhow::Result<String> {
        let incident = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/incidents/{id}"),
                None,
            )
            .await?;
        if json {
            return Ok(serde_json::to_string_pretty(&incident)?);
        }
        let mut out = format!(
            "#{} {} [{}] {} ({})\nresponse due {}  resolve due {}\n\n",
            incident["id"],
            text(&incident["title"]),
            text(&incident["priority"]),
            text(&incident["status"]),
            text(&incident["escalation_level"]),
            text(&incident["response_due"]),
            text(&incident["resolve_due"]),
        );
        for entry in incident["timeline"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            out.push_str(&format!(
                "{}  {:<20} {:<12} {}\n",
                text(&entry["at"]),
                text(&entry["kind"]),
                text(&entry["actor"]),
                text(&entry["message"])
            ));
        }
        Ok(out)
    }

    /// `tocsin report [--from --to] [--json | --csv]`.
    pub async fn report(
        &self,
        from: Option<&str>,
        to: Option<&str>,
        format: ReportFormat,
    ) -> anyhow::Result<String> {
        let mut query = Vec::new();
        if let Some(from) = from {
            query.push(format!("from={from}"));
        }
        if let Some(to) = to {
            query.push(format!("to={to}"));
        }
        let path = if query.is_empty() {
            "/api/v1/kpi".to_string()
        } else {
            format!("/api/v1/kpi?{}", query.join("&"))
        };
        let kpi = self.call(reqwest::Method::GET, &path, None).await?;
        Ok(match format {
            ReportFormat::Json => serde_json::to_string_pretty(&kpi)?,
            ReportFormat::Table | ReportFormat::Csv => {
                let mut rows = vec![kpi_row("all", &kpi["overall"])];
                for priority in ["P1", "P2", "P3", "P4"] {
                    rows.push(kpi_row(priority, &kpi["priorities"][priority]));
                }
                let headers = [
                    "PRIORITY",
                    "INCIDENTS",
                    "MTTA",
                    "MTTR",
                    "RESPONSE SLA",
                    "RESOLVE SLA",
                    "FCR",
                    "AUTO-FIXED",
                    "ESCALATED",
                ];
                if format == ReportFormat::Csv {
                    std::iter::once(headers.join(",").to_lowercase().replace(' ', "_"))
                        .chain(rows.iter().map(|row| row.join(",")))
                        .collect::<Vec<_>>()
                        .join("\n")
                } else {
                    format!(
                        "{} .. {}\n{}",
                        text(&kpi["from"]),
                        text(&kpi["to"]),
                        table(&headers, &rows)
                    )
                }
            }
        })
    }

    /// `tocsin runbook run NAME --param k=v [--incident ID]`.
    pub async fn run_runbook(
        &self,
        name: &str,
        params: &[String],
        incident: Option<i64>,
    ) -> anyhow::Result<String> {
        let mut values = serde_json::Map::new();
        for param in params {
            let (key, value) = param
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--param {param:?}: write NAME=VALUE"))?;
            values.insert(key.to_string(), Value::from(value));
        }
        let body = serde_json::json!({ "params": values, "incident_id": incident });
        let reply = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/runbooks/{name}/run"),
                Some(body),
            )
            .await?;
        Ok(format!(
            "run {} of {name} started; see GET /api/v1/runbooks for its outcome",
            reply["run_id"]
        ))
    }

    /// `tocsin drill run NAME`.
    pub async fn run_drill(&self, name: &str) -> anyhow::Result<String> {
        let reply = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/drills/{name}/run"),
                None,
            )
            .await?;
        Ok(format!(
            "drill {name} started as incident {}; acknowledge it as you would a real page",
            reply["incident_id"]
        ))
    }

    /// `tocsin alerts`.
    pub async fn alerts(&self, status: Option<&str>, json: bool) -> anyhow::Result<String> {
        let query = status.map_or(String::new(), |s| format!("?status={s}"));
        let headers = ["ID", "PRI", "STATUS", "COUNT", "INCIDENT", "QUIET", "ALERT"];
        self.listing(&format!("/api/v1/alerts{query}"), json, &headers, |a| {
            let quiet = if a["silenced"] == Value::Bool(true) {
                "silenced"
            } else if a["inhibited"] == Value::Bool(true) {
                "inhibited"
            } else {
                ""
            };
            vec![
                a["id"].to_string(),
                text(&a["priority"]),
                text(&a["status"]),
                a["count"].to_string(),
                text(&a["incident_id"]),
                quiet.to_string(),
                format!("{} on {}", text(&a["check"]), text(&a["resource"])),
            ]
        })
        .await
    }

    /// `tocsin silences list`.
    pub async fn silences(&self, json: bool) -> anyhow::Result<String> {
        let headers = ["ID", "STATE", "ENDS", "BY", "MATCHERS", "COMMENT"];
        self.listing("/api/v1/silences", json, &headers, |s| {
            let matchers: Vec<String> = s["matchers"]
                .as_array()
                .map(|m| m.iter().map(text).collect())
                .unwrap_or_default();
            vec![
                s["id"].to_string(),
                text(&s["state"]),
                text(&s["ends_at"]),
                text(&s["created_by"]),
                matchers.join(" "),
                text(&s["comment"]),
            ]
        })
        .await
    }

    /// `tocsin silences add`.
    pub async fn add_silence(
        &self,
        matchers: Vec<String>,
        ends_at: String,
        comment: Option<String>,
    ) -> anyhow::Result<String> {
        let body = serde_json::json!({ "matchers": matchers, "ends_at": ends_at, "comment": comment.unwrap_or_default() });
        let reply = self
            .call(reqwest::Method::POST, "/api/v1/silences", Some(body))
            .await?;
        Ok(format!("silence {} until {ends_at}", reply["id"]))
    }

    /// `tocsin silences expire ID`.
    pub async fn expire_silence(&self, id: i64) -> anyhow::Result<String> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/silences/{id}"),
            None,
        )
        .await?;
        Ok(format!("silence {id} expired"))
    }

    /// `tocsin send-test-alert`: a generic alert that walks the whole chain.
    pub async fn send_test_alert(&self, severity: &str) -> anyhow::Result<String> {
        // A key of its own each time: a second test walks the chain again instead of
        // counting as a repeat of the first (which pages nobody).
        let body = serde_json::json!({
            "dedup_key": format!("tocsin-test-{}", uuid::Uuid::new_v4().simple()),
            "resource": "tocsin-test",
            "check": "test alert",
            "severity": severity,
            "summary": "A test alert sent by tocsin send-test-alert; resolve it when you have seen it.",
            "labels": { "test": "true" },
        });
        let reply = self
            .call(reqwest::Method::POST, "/api/v1/ingest/generic", Some(body))
            .await?;
        let alert = &reply["alerts"][0];
        Ok(match alert["incident_id"].as_i64() {
            Some(incident) => format!(
                "alert {} opened incident #{incident}; resolve it with `tocsin incidents resolve {incident}`",
                alert["id"]
            ),
            None => format!(
                "alert {} is in the queue (its priority opens no incident)",
                alert["id"]
            ),
        })
    }

    /// `tocsin incidents ack|resolve ID`.
    pub async fn act(&self, id: i64, action: &str, note: Option<String>) -> anyhow::Result<String> {
        let body = serde_json::json!({ "note": note });
        let incident = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/incidents/{id}/{action}"),
                Some(body),
            )
            .await?;
        Ok(format!(
            "#{} is {}",
            incident["id"],
            text(&incident["status"])
        ))
    }
}

/// `tocsin oncall`: who is on call now and next, from the configuration and the
/// overrides stored by the console.
pub fn oncall(
    config: &Config,
    now: chrono::DateTime<chrono::Utc>,
    json: bool,
) -> anyhow::Result<String> {
    let stored = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(crate::store::console::read_overrides(
            &config.storage_url,
            now,
        ));
    match stored {
        Ok(rows) => config.directory.stored.replace(rows),
        Err(error) => eprintln!(
            "warning: console overrides not read from {} ({error}); showing the configuration's rotations only",
            config.storage_url
        ),
    }
    let report = crate::oncall::report::report(&config.directory, now);
    if json {
        return Ok(serde_json::to_string_pretty(&report)?);
    }
    let rows: Vec<Vec<String>> = report["schedules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            vec![
                text(&s["name"]),
                text(&s["now"]["name"]),
                text(&s["now"]["end"]),
                text(&s["next"]["name"]),
                text(&s["time_zone"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        let first: Vec<String> = crate::oncall::report::first_tiers(&report)
            .into_iter()
            .map(|(policy, level, users)| {
                format!(
                    "policy {policy}: {} paged first ({level})",
                    users.join(", ")
                )
            })
            .collect();
        if !first.is_empty() {
            return Ok(format!("no schedules are configured\n{}", first.join("\n")));
        }
        return Ok("no schedules are configured".into());
    }
    Ok(table(
        &["SCHEDULE", "ON CALL", "UNTIL", "NEXT", "TIME ZONE"],
        &rows,
    ))
}

/// Output format of `tocsin report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
}

fn kpi_row(name: &str, figures: &Value) -> Vec<String> {
    let duration = |value: &Value| match value.as_f64() {
        None => "-".to_string(),
        Some(seconds) if seconds < 3600.0 => format!("{:.0}m", seconds / 60.0),
        Some(seconds) => format!("{:.1}h", seconds / 3600.0),
    };
    let percent = |value: &Value| {
        value
            .as_f64()
            .map_or("-".to_string(), |f| format!("{:.0}%", f * 100.0))
    };
    vec![
        name.to_string(),
        figures["incidents"].to_string(),
        duration(&figures["mtta_seconds"]),
        duration(&figures["mttr_seconds"]),
        percent(&figures["sla_response_compliance"]),
        percent(&figures["sla_resolve_compliance"]),
        percent(&figures["fcr_rate"]),
        percent(&figures["auto_remediation_rate"]),
        percent(&figures["escalation_rate"]),
    ]
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.clone()));
    }
    out
}
