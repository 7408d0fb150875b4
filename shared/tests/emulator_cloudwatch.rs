#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! moto's CloudWatch, spoken to by the real Rust SDK over Smithy RPC v2 CBOR: what sleep and the
//! reaper rely on to run against it as against AWS (their queries read back what was put, a
//! gzipped PutMetricData, 400 queries in one GetMetricData).

use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::DateTime;
use aws_smithy_types::config_bag::ConfigBag;
use shared::testing::cloudwatch::{datum, put, put_datums};
use shared::testing::{emulator_config, unique};

/// Records each request's Content-Encoding, to see what the SDK really sent.
#[derive(Debug, Clone, Default)]
struct SeenEncodings(Arc<Mutex<Vec<Option<String>>>>);

impl Intercept for SeenEncodings {
    fn name(&self) -> &'static str {
        "SeenEncodings"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let encoding = context.request().headers().get("content-encoding").map(str::to_owned);
        self.0.lock().unwrap().push(encoding);
        Ok(())
    }
}

async fn client() -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(&emulator_config().await)
}

fn query(id: &str, namespace: &str, metric: &str, stat: &str, dims: &[(&str, &str)], period: i32) -> MetricDataQuery {
    let dims = dims.iter().map(|(n, v)| Dimension::builder().name(*n).value(*v).build()).collect();
    let metric = Metric::builder().namespace(namespace).metric_name(metric).set_dimensions(Some(dims)).build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(MetricStat::builder().metric(metric).period(period).stat(stat).build())
        .return_data(true)
        .build()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn sleep_s_two_queries_read_back_what_the_server_put() {
    let cw = client().await;
    let service = unique("cbor-svc");
    let dims = [("Service", service.as_str())];
    let t = now();
    // Whole values: a `double` must still come back as a CBOR float, or the SDK could not read it.
    put(&cw, "Fluidity", "ActiveConnections", &dims, &[(t - 270, 2.0), (t - 150, 0.0), (t - 30, 3.0)]).await;
    put(&cw, "Fluidity", "LastActivityEpochSeconds", &dims, &[(t - 270, (t - 400) as f64), (t - 30, (t - 35) as f64)])
        .await;
    let start = t - 300;
    let out = cw
        .get_metric_data()
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(t))
        .scan_by(ScanBy::TimestampDescending)
        .metric_data_queries(query("connections", "Fluidity", "ActiveConnections", "Average", &dims, 60))
        .metric_data_queries(query("lastactivity", "Fluidity", "LastActivityEpochSeconds", "Maximum", &dims, 60))
        .send()
        .await
        .unwrap();
    let results = out.metric_data_results();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].id(), Some("connections"));
    assert_eq!(results[0].values(), [3.0, 0.0, 2.0], "newest first");
    // Timestamps are CBOR tag 1: the start of each 60 s bucket (moto counts buckets from StartTime).
    let stamps: Vec<i64> = results[0].timestamps().iter().map(DateTime::secs).collect();
    assert_eq!(stamps, [start + 240, start + 120, start]);
    assert_eq!(results[1].id(), Some("lastactivity"));
    assert_eq!(results[1].values(), [(t - 35) as f64, (t - 400) as f64]);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_large_put_is_gzipped_by_the_sdk_and_every_datum_arrives() {
    let seen = SeenEncodings::default();
    let config = aws_sdk_cloudwatch::config::Builder::from(&emulator_config().await).interceptor(seen.clone()).build();
    let cw = aws_sdk_cloudwatch::Client::from_conf(config);
    let service = unique("cbor-gzip");
    let dims = [("Service", service.as_str())];
    let t = now() - 120;
    let datums = (1..=400).map(|i| datum("Requests", &dims, t, f64::from(i))).collect();
    put_datums(&cw, "Fluidity/Test", datums).await;
    assert_eq!(
        seen.0.lock().unwrap().as_slice(),
        [Some("gzip".to_owned())],
        "one PutMetricData over 10 KiB, compressed"
    );
    let window = (t - 60, t + 60);
    let sum = shared::testing::cloudwatch::values(&cw, "Fluidity/Test", "Requests", &dims, "Sum", 120, window).await;
    let count =
        shared::testing::cloudwatch::values(&cw, "Fluidity/Test", "Requests", &dims, "SampleCount", 120, window).await;
    assert_eq!((sum, count), (vec![80_200.0], vec![400.0]));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn one_get_metric_data_answers_400_queries() {
    let cw = client().await;
    let deployment = unique("cbor-400");
    let t = now();
    let tasks: Vec<String> = (0..400).map(|i| format!("task{i:03}")).collect();
    let datums = tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            datum("ShutdownReady", &[("deployment_id", &deployment), ("task_id", task)], t - 60, (i % 2) as f64)
        })
        .collect();
    put_datums(&cw, "App/Drain", datums).await;
    let queries: Vec<MetricDataQuery> = tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            query(
                &format!("t{i}"),
                "App/Drain",
                "ShutdownReady",
                "Minimum",
                &[("deployment_id", &deployment), ("task_id", task)],
                300,
            )
        })
        .collect();
    let out = cw
        .get_metric_data()
        .start_time(DateTime::from_secs(t - 300))
        .end_time(DateTime::from_secs(t))
        .set_metric_data_queries(Some(queries))
        .send()
        .await
        .unwrap();
    assert_eq!(out.next_token(), None, "one call, one page");
    let results = out.metric_data_results();
    assert_eq!(results.len(), 400);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.id(), Some(format!("t{i}").as_str()));
        assert_eq!(result.values(), [(i % 2) as f64], "{:?}", result.id());
    }
}
