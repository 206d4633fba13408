//! The metrics of each sync: per destination, one count of its outcome and,
//! for a value that landed, the propagation latency (from the source's change
//! to the destination's answer); per source, a count of syncs that failed
//! before any destination was reached. On AWS Lambda they are CloudWatch
//! Embedded Metric Format lines on standard output, which CloudWatch turns into
//! metrics with no API call and no permission; elsewhere they are fields of one
//! structured log event per destination. `FEDSYNC_METRICS` chooses (`emf`,
//! `log` or `off`; by default `emf` on Lambda, else `log`).

use crate::report::{Report, Status};
use serde_json::{Value, json};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

pub const METRICS_ENV: &str = "FEDSYNC_METRICS";
/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "fedsync";

/// Where metrics go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Emf,
    Log,
    Off,
}

impl Sink {
    /// As `FEDSYNC_METRICS` says, else EMF on Lambda and logs elsewhere (read
    /// once per process).
    pub fn from_environment() -> Sink {
        static SINK: std::sync::OnceLock<Sink> = std::sync::OnceLock::new();
        *SINK.get_or_init(Sink::read_environment)
    }

    fn read_environment() -> Sink {
        match std::env::var(METRICS_ENV).as_deref() {
            Ok("emf") => Sink::Emf,
            Ok("log") => Sink::Log,
            Ok("off") => Sink::Off,
            _ if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() => Sink::Emf,
            _ => Sink::Log,
        }
    }
}

/// One destination's (or a source's) figures for one sync.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub source: String,
    pub secret: String,
    /// `None` for a sync that failed before any destination was reached.
    pub destination: Option<String>,
    /// `synced`, `unchanged`, `deleted`, `skipped`, `drift` or `failed`.
    pub outcome: &'static str,
    /// Milliseconds from the source's change to the destination's answer, for
    /// a value written (or a deletion made) when the change time is known.
    pub latency_ms: Option<u64>,
}

/// The samples of one sync. `changed_at` is when the source changed, if known.
pub fn samples(report: &Report, changed_at: Option<SystemTime>) -> Vec<Sample> {
    let mut samples = vec![];
    if report.error.is_some() {
        samples.push(Sample {
            source: report.source.clone(),
            secret: report.secret.clone(),
            destination: None,
            outcome: "failed",
            latency_ms: None,
        });
    }
    for o in &report.outcomes {
        let (outcome, landed) = match &o.status {
            Status::Synced => ("synced", true),
            Status::Unchanged => ("unchanged", false),
            Status::Deleted => ("deleted", true),
            Status::Skipped { .. } => ("skipped", false),
            Status::Drift { repaired, .. } => ("drift", *repaired),
            Status::Failed { .. } => ("failed", false),
        };
        let latency_ms = changed_at
            .filter(|_| landed)
            .map(|at| o.acknowledged_at.duration_since(at).unwrap_or_default())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        samples.push(Sample {
            source: report.source.clone(),
            secret: report.secret.clone(),
            destination: Some(o.destination.clone()),
            outcome,
            latency_ms,
        });
    }
    samples
}

/// A sample as one Embedded Metric Format document: `Syncs` (count) by
/// destination and outcome and by outcome alone (one alarm then watches every
/// destination's failures), with `PropagationLatency` (milliseconds) when
/// known; a source failure is `SourceFailures` (count) by source and in all.
/// The secret's name rides along as a property (searchable, not a dimension).
pub fn emf(sample: &Sample, at: SystemTime) -> Value {
    let timestamp = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let Some(destination) = &sample.destination else {
        return json!({
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Source"], []],
                    "Metrics": [{"Name": "SourceFailures", "Unit": "Count"}],
                }],
            },
            "Source": sample.source,
            "Secret": sample.secret,
            "SourceFailures": 1,
        });
    };
    let mut metrics = vec![json!({"Name": "Syncs", "Unit": "Count"})];
    if sample.latency_ms.is_some() {
        metrics.push(json!({"Name": "PropagationLatency", "Unit": "Milliseconds"}));
    }
    let mut document = json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Destination", "Outcome"], ["Outcome"]],
                "Metrics": metrics,
            }],
        },
        "Destination": destination,
        "Outcome": sample.outcome,
        "Source": sample.source,
        "Secret": sample.secret,
        "Syncs": 1,
    });
    if let Some(latency) = sample.latency_ms {
        document["PropagationLatency"] = latency.into();
    }
    document
}

/// Emits the metrics of one sync where [`Sink::from_environment`] says.
pub fn record(report: &Report, changed_at: Option<SystemTime>) {
    let sink = Sink::from_environment();
    if sink == Sink::Off {
        return;
    }
    let now = SystemTime::now();
    for sample in samples(report, changed_at) {
        match sink {
            Sink::Emf => {
                // One line each: CloudWatch reads a log event as one document.
                let line = format!("{}\n", emf(&sample, now));
                let _ = std::io::stdout().lock().write_all(line.as_bytes());
            }
            Sink::Log => tracing::info!(
                metric = "sync",
                source = %sample.source,
                secret = %sample.secret,
                destination = sample.destination.as_deref().unwrap_or("-"),
                outcome = sample.outcome,
                propagation_latency_ms = sample.latency_ms,
                "sync metrics"
            ),
            Sink::Off => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ChangeKind;
    use crate::report::{Failure, FailureClass, Outcome};
    use std::time::Duration;

    fn outcome(destination: &str, status: Status, acknowledged_at: SystemTime) -> Outcome {
        Outcome {
            destination: destination.into(),
            name: "prod/db".into(),
            status,
            exchanges: 0,
            elapsed_ms: 0,
            acknowledged_at,
        }
    }

    fn report(outcomes: Vec<Outcome>, error: Option<Failure>) -> Report {
        Report {
            source: "main".into(),
            secret: "prod/db".into(),
            kind: ChangeKind::Upsert,
            source_version: None,
            note: None,
            error,
            outcomes,
        }
    }

    #[test]
    fn latency_runs_from_the_change_to_each_destination_that_took_a_value() {
        let changed = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let report = report(
            vec![
                outcome("aws", Status::Synced, changed + Duration::from_millis(840)),
                outcome(
                    "gcp",
                    Status::Unchanged,
                    changed + Duration::from_millis(90),
                ),
                outcome(
                    "kv",
                    Failure::new(FailureClass::Throttled, "slow down").into(),
                    changed + Duration::from_millis(1200),
                ),
            ],
            None,
        );
        let samples = samples(&report, Some(changed));
        let got: Vec<_> = samples
            .iter()
            .map(|s| (s.destination.as_deref(), s.outcome, s.latency_ms))
            .collect();
        assert_eq!(
            got,
            [
                (Some("aws"), "synced", Some(840)),
                (Some("gcp"), "unchanged", None),
                (Some("kv"), "failed", None),
            ]
        );
        // Without a change time (a reconcile pass), outcomes are counted only.
        assert!(
            super::samples(&report, None)
                .iter()
                .all(|s| s.latency_ms.is_none())
        );
    }

    #[test]
    fn an_emf_document_declares_what_it_carries() {
        let at = UNIX_EPOCH + Duration::from_millis(1_800_000_000_123);
        let sample = Sample {
            source: "main".into(),
            secret: "prod/db".into(),
            destination: Some("aws".into()),
            outcome: "synced",
            latency_ms: Some(840),
        };
        let doc = emf(&sample, at);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_800_000_000_123u64);
        assert_eq!(directive["Namespace"], "fedsync");
        assert_eq!(
            directive["Dimensions"],
            json!([["Destination", "Outcome"], ["Outcome"]])
        );
        // Every declared metric and dimension is a member of the document.
        for name in directive["Metrics"].as_array().unwrap() {
            assert!(doc.get(name["Name"].as_str().unwrap()).is_some(), "{doc}");
        }
        for key in ["Destination", "Outcome"] {
            assert!(doc[key].is_string(), "{doc}");
        }
        assert_eq!(doc["PropagationLatency"], 840);
        assert_eq!(doc["Syncs"], 1);

        let unknown = Sample {
            latency_ms: None,
            ..sample
        };
        let doc = emf(&unknown, at);
        assert!(doc.get("PropagationLatency").is_none());
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "Syncs", "Unit": "Count"}])
        );
    }

    #[test]
    fn a_sync_that_failed_at_its_source_counts_for_the_source() {
        let failed = report(
            vec![],
            Some(Failure::new(FailureClass::Auth, "AccessDenied")),
        );
        let samples = samples(&failed, Some(SystemTime::now()));
        assert_eq!(samples.len(), 1);
        let doc = emf(&samples[0], SystemTime::now());
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Source"], []])
        );
        assert_eq!(doc["SourceFailures"], 1);
        assert_eq!(doc["Source"], "main");
    }
}
