//! CloudWatch Embedded Metric Format: one JSON log line that CloudWatch Logs turns into metrics,
//! with no API call and no extra permission (the function already writes its logs).
//!
//! The line follows the EMF specification: `_aws.Timestamp` (epoch milliseconds),
//! `_aws.CloudWatchMetrics[0]` with the namespace, one dimension set and the metric definitions,
//! and each dimension and metric value as a top-level member.

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

/// EMF units this code emits (a subset of CloudWatch's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
            Self::None => "None",
        }
    }
}

/// One EMF record: a namespace, one set of dimensions, and metric values under them.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRecord {
    namespace: String,
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, f64, Unit)>,
    timestamp_ms: i64,
}

impl MetricRecord {
    pub fn new(namespace: impl Into<String>, timestamp_ms: i64) -> Self {
        Self { namespace: namespace.into(), dimensions: Vec::new(), metrics: Vec::new(), timestamp_ms }
    }

    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.dimensions.push((name.into(), value.into()));
        self
    }

    pub fn metric(mut self, name: impl Into<String>, value: f64, unit: Unit) -> Self {
        self.metrics.push((name.into(), value, unit));
        self
    }

    /// The JSON line. Dimension values are members of the same object as the metric values, so a
    /// dimension and a metric must not share a name (the callers' names are constants).
    pub fn to_line(&self) -> String {
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        let definitions: Vec<Value> =
            self.metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()})).collect();
        let mut line = Map::new();
        line.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": self.timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_names],
                    "Metrics": definitions,
                }]
            }),
        );
        for (name, value) in &self.dimensions {
            line.insert(name.clone(), Value::from(value.as_str()));
        }
        for (name, value, _) in &self.metrics {
            // Whole values as JSON integers (`1`, not `1.0`): both are valid EMF, integers read better.
            let number = if value.fract() == 0.0 && value.abs() < 9.0e15 { json!(*value as i64) } else { json!(value) };
            line.insert(name.clone(), number);
        }
        Value::Object(line).to_string()
    }
}

/// Where EMF lines go.
#[derive(Debug, Clone, Default)]
pub enum MetricSink {
    /// Lambda: stdout, which Lambda sends to CloudWatch Logs with the rest of the function's output.
    #[default]
    Stdout,
    /// A local run: stderr, because stdout carries exactly the answer Lambda would return.
    Stderr,
    /// Tests: kept in memory.
    Memory(Arc<Mutex<Vec<String>>>),
}

impl MetricSink {
    /// Stdout under Lambda (`AWS_LAMBDA_RUNTIME_API` set), stderr in a local run.
    pub fn from_env() -> Self {
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() { Self::Stdout } else { Self::Stderr }
    }

    /// A sink that keeps the lines, and the handle to read them.
    pub fn memory() -> (Self, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (Self::Memory(Arc::clone(&lines)), lines)
    }

    pub fn emit(&self, record: &MetricRecord) {
        let line = record.to_line();
        match self {
            Self::Stdout => println!("{line}"),
            Self::Stderr => eprintln!("{line}"),
            Self::Memory(lines) => lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_spec_shaped_line() {
        let line = MetricRecord::new("Fluidity/Sleep", 1_800_000_000_000)
            .dimension("Service", "fluidity-server")
            .metric("MetricsMissing", 1.0, Unit::Count)
            .to_line();
        let value: Value = serde_json::from_str(&line).unwrap_or_default();
        assert!(line.contains("\"MetricsMissing\":1"), "{line}");
        assert_eq!(value["_aws"]["Timestamp"], 1_800_000_000_000_i64);
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Fluidity/Sleep");
        assert_eq!(directive["Dimensions"], json!([["Service"]]));
        assert_eq!(directive["Metrics"], json!([{"Name": "MetricsMissing", "Unit": "Count"}]));
        assert_eq!(value["Service"], "fluidity-server");
        assert_eq!(value["MetricsMissing"], 1);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn the_memory_sink_keeps_lines() {
        let (sink, lines) = MetricSink::memory();
        sink.emit(&MetricRecord::new("N", 0).metric("M", 2.0, Unit::None));
        assert_eq!(lines.lock().map(|l| l.len()).unwrap_or_default(), 1);
    }
}
