//! Every Prometheus metric is declared here, once, with the names of spec §6. Labels
//! are bounded (source, priority, reason): never ids or user text.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The daemon's metrics and the registry that renders them.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub alerts_received: IntCounterVec,
    pub alerts_deduplicated: IntCounterVec,
    pub alerts_rejected: IntCounterVec,
    pub incidents_opened: IntCounterVec,
    pub incidents_open: IntGaugeVec,
    pub escalations: IntCounterVec,
    pub escalations_overdue: IntGauge,
    pub notifications: IntCounterVec,
    pub ticket_calls: IntCounterVec,
    pub runbook_runs: IntCounterVec,
    pub sla_breaches: IntCounterVec,
    pub incident_ack_seconds: HistogramVec,
    pub incident_resolve_seconds: HistogramVec,
    pub ingest_duration_seconds: HistogramVec,
    /// Duration of one group commit (one transaction, one fsync).
    pub commit_seconds: Histogram,
    /// Requests answered by one group commit: how well batching works.
    pub commit_requests: Histogram,
}

/// Buckets from one second to three days, matching SLA budgets of 15 min to 72 h.
const INCIDENT_BUCKETS: [f64; 12] = [
    1.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0, 259200.0,
];
/// Ingest latency buckets: the target is a p99 under 20 ms.
const INGEST_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("tocsin".into()), None)?;
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        let histogram =
            |name: &str, help: &str, buckets: &[f64]| -> Result<HistogramVec, prometheus::Error> {
                let labels: &[&str] = if name.starts_with("ingest") {
                    &["source"]
                } else {
                    &["priority"]
                };
                let metric = HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                    labels,
                )?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        let incidents_open = IntGaugeVec::new(
            Opts::new("incidents_open", "Incidents not yet resolved, by priority."),
            &["priority"],
        )?;
        registry.register(Box::new(incidents_open.clone()))?;
        let plain_histogram =
            |name: &str, help: &str, buckets: Vec<f64>| -> Result<Histogram, prometheus::Error> {
                let metric = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        let commit_seconds = plain_histogram(
            "store_commit_seconds",
            "Duration of one group commit of the ingest pipeline.",
            INGEST_BUCKETS.to_vec(),
        )?;
        let commit_requests = plain_histogram(
            "store_commit_requests",
            "Requests answered by one group commit.",
            vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new("build_info", "Always 1; the labels say which build runs."),
            &["version", "commit"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("TOCSIN_GIT_COMMIT")])
            .set(1);
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let escalations_overdue = IntGauge::new(
            "escalations_overdue",
            "Escalation steps overdue by more than 30 s: a healthy engine shows 0.",
        )?;
        registry.register(Box::new(escalations_overdue.clone()))?;
        Ok(Self {
            escalations: counter(
                "escalations_total",
                "Escalation tiers paged, by level.",
                &["level"],
            )?,
            escalations_overdue,
            sla_breaches: counter(
                "sla_breaches_total",
                "SLA deadlines missed, by priority and kind (response, resolve).",
                &["priority", "kind"],
            )?,
            runbook_runs: counter(
                "runbook_runs_total",
                "Runbook runs, by runbook and outcome (success, failure, timeout, refused).",
                &["runbook", "outcome"],
            )?,
            notifications: counter(
                "notifications_total",
                "Delivery attempts, by channel and outcome (sent, retry, failed).",
                &["channel", "outcome"],
            )?,
            ticket_calls: counter(
                "ticket_calls_total",
                "Calls to ticketing platforms, by platform and outcome (done, retry, failed).",
                &["platform", "outcome"],
            )?,
            commit_seconds,
            commit_requests,
            alerts_received: counter(
                "alerts_received_total",
                "Alerts accepted, by source.",
                &["source"],
            )?,
            alerts_deduplicated: counter(
                "alerts_deduplicated_total",
                "Alerts that repeated an open alert and opened nothing, by source.",
                &["source"],
            )?,
            alerts_rejected: counter(
                "alerts_rejected_total",
                "Ingest requests refused, by source and reason.",
                &["source", "reason"],
            )?,
            incidents_opened: counter(
                "incidents_opened_total",
                "Incidents opened, by priority.",
                &["priority"],
            )?,
            incidents_open,
            incident_ack_seconds: histogram(
                "incident_ack_seconds",
                "Time from incident creation to first acknowledgement.",
                &INCIDENT_BUCKETS,
            )?,
            incident_resolve_seconds: histogram(
                "incident_resolve_seconds",
                "Time from incident creation to resolution.",
                &INCIDENT_BUCKETS,
            )?,
            ingest_duration_seconds: histogram(
                "ingest_duration_seconds",
                "Time to answer an ingest request, including the group commit.",
                &INGEST_BUCKETS,
            )?,
            registry,
        }
        .with_known_series())
    }

    /// Series whose labels are known before anything happens start at 0: an alert
    /// rule on `rate(tocsin_sla_breaches_total[…])` has nothing to read until the
    /// first breach otherwise, and sees that first one as the series' start.
    fn with_known_series(self) -> Self {
        for priority in crate::alert::Priority::ALL {
            let priority = priority.as_str();
            for clock in [crate::sla::Clock::Response, crate::sla::Clock::Resolve] {
                self.sla_breaches
                    .with_label_values(&[priority, clock.as_str()]);
            }
            self.incidents_opened.with_label_values(&[priority]);
        }
        self
    }

    /// The text exposition format for `/metrics`.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn breaches_and_openings_are_series_at_zero_before_the_first() {
        let text = Metrics::new().unwrap().render();
        for series in [
            r#"tocsin_sla_breaches_total{kind="response",priority="P1"} 0"#,
            r#"tocsin_sla_breaches_total{kind="resolve",priority="P4"} 0"#,
            r#"tocsin_incidents_opened_total{priority="P2"} 0"#,
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
    }
}
