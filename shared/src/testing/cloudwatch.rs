//! CloudWatch in the emulator (moto's backend, served over RPC v2 CBOR by `scripts/emulator.py`):
//! putting datapoints as the Fluidity server and the drain watcher would, and turning EMF lines
//! into metrics as CloudWatch Logs does.

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_smithy_types::DateTime;
use serde_json::Value;

/// PutMetricData takes at most 1000 datums per call.
pub const PUT_BATCH: usize = 1000;

/// One datapoint: epoch seconds and value.
pub type Point = (i64, f64);

/// Puts datapoints of one metric, in as few PutMetricData calls as the limit allows.
pub async fn put(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    points: &[Point],
) {
    let datums: Vec<MetricDatum> = points.iter().map(|&(at, value)| datum(metric, dimensions, at, value)).collect();
    put_datums(cw, namespace, datums).await;
}

pub fn datum(metric: &str, dimensions: &[(&str, &str)], at: i64, value: f64) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(metric)
        .set_dimensions(Some(dimensions.iter().map(|(n, v)| Dimension::builder().name(*n).value(*v).build()).collect()))
        .timestamp(DateTime::from_secs(at))
        .value(value)
        .build()
}

pub async fn put_datums(cw: &aws_sdk_cloudwatch::Client, namespace: &str, datums: Vec<MetricDatum>) {
    for batch in datums.chunks(PUT_BATCH) {
        cw.put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(batch.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutMetricData: {}", aws_smithy_types::error::display::DisplayErrorContext(e)));
    }
}

/// What CloudWatch Logs does with EMF lines: checks each against the specification and puts its
/// metrics, with its dimensions, at its timestamp. Lines of several namespaces are fine.
pub async fn put_emf(cw: &aws_sdk_cloudwatch::Client, lines: &[String]) {
    let mut by_namespace: std::collections::BTreeMap<String, Vec<MetricDatum>> = Default::default();
    for line in lines {
        for (namespace, datum) in emf_datums(line) {
            by_namespace.entry(namespace).or_default().push(datum);
        }
    }
    for (namespace, datums) in by_namespace {
        put_datums(cw, &namespace, datums).await;
    }
}

/// The datums one EMF line stands for; panics, naming the rule, when the line breaks the specification.
pub fn emf_datums(line: &str) -> Vec<(String, MetricDatum)> {
    let record: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("EMF line is not JSON ({e}): {line}"));
    let aws = record.get("_aws").and_then(Value::as_object).unwrap_or_else(|| panic!("no _aws object: {line}"));
    let timestamp_ms =
        aws.get("Timestamp").and_then(Value::as_i64).unwrap_or_else(|| panic!("_aws.Timestamp (ms) missing: {line}"));
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| panic!("_aws.CloudWatchMetrics missing or empty: {line}"));
    let mut datums = Vec::new();
    for directive in directives {
        let namespace = directive["Namespace"].as_str().unwrap_or_else(|| panic!("Namespace missing: {line}"));
        assert!((1..=255).contains(&namespace.len()), "Namespace must be 1-255 characters: {line}");
        let sets = directive["Dimensions"].as_array().unwrap_or_else(|| panic!("Dimensions missing: {line}"));
        let metrics = directive["Metrics"].as_array().unwrap_or_else(|| panic!("Metrics missing: {line}"));
        assert!(!metrics.is_empty() && metrics.len() <= 100, "1-100 metrics per directive: {line}");
        for set in sets {
            let names = set.as_array().unwrap_or_else(|| panic!("a dimension set is not an array: {line}"));
            assert!(names.len() <= 30, "at most 30 dimensions per set: {line}");
            let dims: Vec<(String, String)> = names
                .iter()
                .map(|n| {
                    let name = n.as_str().unwrap_or_else(|| panic!("a dimension name is not a string: {line}"));
                    let value = record[name]
                        .as_str()
                        .filter(|v| !v.is_empty() && v.len() <= 1024)
                        .unwrap_or_else(|| panic!("dimension {name} has no string value of 1-1024 characters: {line}"));
                    (name.to_owned(), value.to_owned())
                })
                .collect();
            for metric in metrics {
                let name = metric["Name"].as_str().unwrap_or_else(|| panic!("a metric has no Name: {line}"));
                let value =
                    record[name].as_f64().unwrap_or_else(|| panic!("metric {name} has no numeric value: {line}"));
                let unit = metric.get("Unit").and_then(Value::as_str);
                if let Some(unit) = unit {
                    assert!(StandardUnit::values().contains(&unit), "metric {name}: {unit:?} is not a CloudWatch unit");
                }
                let unit = unit.map(StandardUnit::from);
                let datum = MetricDatum::builder()
                    .metric_name(name)
                    .set_dimensions(Some(
                        dims.iter().map(|(n, v)| Dimension::builder().name(n).value(v).build()).collect(),
                    ))
                    .timestamp(DateTime::from_millis(timestamp_ms))
                    .value(value)
                    .set_unit(unit)
                    .build();
                datums.push((namespace.to_owned(), datum));
            }
        }
    }
    datums
}

/// Values of one metric statistic over `[start, end)` at `period`, newest first, as GetMetricData returns them.
pub async fn values(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    stat: &str,
    period: i32,
    (start, end): (i64, i64),
) -> Vec<f64> {
    use aws_sdk_cloudwatch::types::{Metric, MetricDataQuery, MetricStat, ScanBy};
    let dims = dimensions.iter().map(|(n, v)| Dimension::builder().name(*n).value(*v).build()).collect();
    let metric = Metric::builder().namespace(namespace).metric_name(metric).set_dimensions(Some(dims)).build();
    let query = MetricDataQuery::builder()
        .id("q")
        .metric_stat(MetricStat::builder().metric(metric).period(period).stat(stat).build())
        .build();
    let out = cw
        .get_metric_data()
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(end))
        .scan_by(ScanBy::TimestampDescending)
        .metric_data_queries(query)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetMetricData: {}", aws_smithy_types::error::display::DisplayErrorContext(e)));
    out.metric_data_results().first().map(|r| r.values().to_vec()).unwrap_or_default()
}
