//! Phase 3: the tasks of the services to check, and each task's `ShutdownReady`.

use std::collections::HashMap;

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use futures::{StreamExt, stream};
use shared::FunctionError;
use shared::ecs::{self, DESCRIBE_CONCURRENCY, ServiceRef};

use crate::classify::task_ready;
use crate::discover::Draining;
use crate::{Deps, METRIC_QUERIES_PER_CALL};

/// Phase 3a: the task ids of each service to check, a bounded number of services at a time.
pub(crate) async fn load_tasks(
    deps: &Deps,
    draining: &[Draining],
    to_check: &[usize],
) -> Vec<(usize, Result<Vec<String>, FunctionError>)> {
    let s = &deps.settings;
    stream::iter(to_check.iter().copied())
        .map(|i| async move {
            let target = ServiceRef::new(&s.cluster, &draining[i].service);
            let tasks = ecs::running_service_tasks(&deps.ecs, &target).await;
            let ids =
                tasks.map(|tasks| tasks.iter().filter_map(|t| t.task_arn()).map(|a| task_id(a).to_owned()).collect());
            (i, ids)
        })
        .buffer_unordered(s.concurrency)
        .collect()
        .await
}

/// Phase 3b: for each checked service, (tasks, tasks ready) or why it could not be told; every
/// task's ShutdownReady in as few GetMetricData calls as the 500-query limit allows.
pub(crate) async fn load_readiness(
    deps: &Deps,
    draining: &[Draining],
    tasks: &[(usize, Result<Vec<String>, FunctionError>)],
    now: i64,
) -> Vec<(usize, Result<(usize, usize), FunctionError>)> {
    let all: Vec<(usize, &str)> = tasks
        .iter()
        .filter_map(|(i, r)| r.as_ref().ok().map(|ids| (i, ids)))
        .flat_map(|(i, ids)| ids.iter().map(move |id| (*i, id.as_str())))
        .collect();
    let batches: Vec<Result<Vec<bool>, FunctionError>> = stream::iter(all.chunks(METRIC_QUERIES_PER_CALL))
        .map(|batch| async move {
            let queries: Vec<(&str, &str, &str)> = batch
                .iter()
                .map(|(i, id)| (draining[*i].deployment_name.as_str(), draining[*i].deployment_id.as_str(), *id))
                .collect();
            let values = shutdown_ready_values(deps, &queries, now).await?;
            Ok(values.iter().map(|series| task_ready(series, deps.settings.consec)).collect())
        })
        .buffered(DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    let mut counts: HashMap<usize, Result<(usize, usize), FunctionError>> = HashMap::new();
    for (i, result) in tasks {
        counts.insert(*i, result.as_ref().map(|ids| (ids.len(), 0)).map_err(Clone::clone));
    }
    for (batch, result) in all.chunks(METRIC_QUERIES_PER_CALL).zip(batches) {
        for (n, (i, _)) in batch.iter().enumerate() {
            let entry = counts.entry(*i).or_insert(Ok((0, 0)));
            match (&result, entry) {
                (Ok(ready), Ok((_, count))) => *count += usize::from(ready[n]),
                (Err(err), entry) => *entry = Err(err.clone()),
                (Ok(_), Err(_)) => {}
            }
        }
    }
    counts.into_iter().collect()
}

pub(crate) fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// ShutdownReady (Minimum per period, newest first) for each (deployment_name, deployment_id, task_id),
/// in the order given, over the CONSEC periods that end METRIC_LAG_SEC before `now`; at most
/// [`METRIC_QUERIES_PER_CALL`] queries per call, following pages.
pub(crate) async fn shutdown_ready_values(
    deps: &Deps,
    tasks: &[(&str, &str, &str)],
    now: i64,
) -> Result<Vec<Vec<f64>>, FunctionError> {
    let s = &deps.settings;
    let queries = tasks.iter().enumerate().map(|(n, (name, id, task))| {
        let dims = [("deployment_name", name), ("deployment_id", id), ("task_id", task)]
            .map(|(k, v)| Dimension::builder().name(k).value(*v).build());
        let metric = Metric::builder()
            .namespace("App/Drain")
            .metric_name("ShutdownReady")
            .set_dimensions(Some(dims.to_vec()))
            .build();
        // Minimum: a single 0 within a period means the task was not ready for all of it.
        let stat = MetricStat::builder().metric(metric).period(s.period).stat("Minimum").build();
        MetricDataQuery::builder().id(format!("t{n}")).metric_stat(stat).return_data(true).build()
    });
    let window = i64::from(s.period) * i64::from(s.consec);
    // The window ends METRIC_LAG_SEC ago: the newest minutes may not have reached CloudWatch yet.
    let end = now - i64::try_from(s.metric_lag.as_secs()).unwrap_or(0);
    let mut pages = deps
        .cloudwatch
        .get_metric_data()
        .start_time(aws_smithy_types::DateTime::from_secs(end - window))
        .end_time(aws_smithy_types::DateTime::from_secs(end))
        .scan_by(ScanBy::TimestampDescending)
        .set_metric_data_queries(Some(queries.collect()))
        .into_paginator()
        .send();
    let mut values = vec![Vec::new(); tasks.len()];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| FunctionError::aws("CloudWatch GetMetricData", &err))?;
        for result in page.metric_data_results() {
            let index = result.id().and_then(|id| id.strip_prefix('t')).and_then(|n| n.parse::<usize>().ok());
            if let Some(series) = index.and_then(|n| values.get_mut(n)) {
                series.extend(result.values());
            }
        }
    }
    Ok(values)
}
