#![allow(clippy::unwrap_used, dead_code)] // test code: a panic is the failure report
//! ECS's service deployments and revisions, stood in for by `aws-smithy-mocks` on the real client:
//! moto implements none of ListServiceDeployments, DescribeServiceDeployments,
//! DescribeServiceRevisions or StopServiceDeployment. The mocked answers are built from the
//! shapes the AWS API reference documents.

use std::sync::{Arc, Mutex};

use aws_sdk_ecs::operation::describe_service_deployments::DescribeServiceDeploymentsOutput;
use aws_sdk_ecs::operation::describe_service_revisions::DescribeServiceRevisionsOutput;
use aws_sdk_ecs::operation::list_service_deployments::ListServiceDeploymentsOutput;
use aws_sdk_ecs::operation::stop_service_deployment::{StopServiceDeploymentError, StopServiceDeploymentOutput};
use aws_sdk_ecs::types::error::ConflictException;
use aws_sdk_ecs::types::{
    ServiceDeployment, ServiceDeploymentBrief, ServiceDeploymentStatus, ServiceRevision, ServiceRevisionSummary,
};
use aws_smithy_mocks::{MockResponse, Rule, mock};
use aws_smithy_types::DateTime;

pub mod world;

pub const ACCOUNT: &str = "arn:aws:ecs:us-east-1:123456789012";

/// One service deployment: from the revision of `from` (task definition) to that of `to`.
#[derive(Debug, Clone)]
pub struct FakeDeployment {
    pub id: String,
    pub from: String,
    pub to: String,
    pub minutes_ago: i64,
    pub status: ServiceDeploymentStatus,
}

/// The deployments ECS lists for one service, and the stops asked of it.
#[derive(Debug, Default)]
pub struct FakeHistory {
    pub cluster: String,
    pub service: String,
    pub deployments: Vec<FakeDeployment>,
    pub stops: Vec<(String, String)>,
    /// ListServiceDeployments answers in pages of this many (0: one page).
    pub page: usize,
    /// The deployment completes just before StopServiceDeployment reaches it (a race ECS can win).
    pub finishes_before_stop: bool,
}

impl FakeHistory {
    pub fn new(cluster: &str, service: &str, deployments: Vec<FakeDeployment>) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self { cluster: cluster.into(), service: service.into(), deployments, ..Self::default() }))
    }

    fn arn(&self, kind: &str, id: &str) -> String {
        format!("{ACCOUNT}:{kind}/{}/{}/{id}", self.cluster, self.service)
    }

    /// A revision's ARN names its task definition, so that DescribeServiceRevisions can answer it.
    fn revision(&self, task_definition: &str) -> String {
        self.arn("service-revision", &task_definition.replace([':', '/'], "_"))
    }
}

pub fn deployment(id: &str, from: &str, to: &str, minutes_ago: i64, status: ServiceDeploymentStatus) -> FakeDeployment {
    FakeDeployment { id: id.into(), from: from.into(), to: to.into(), minutes_ago, status }
}

fn ago(minutes: i64) -> DateTime {
    DateTime::from_secs(chrono::Utc::now().timestamp() - minutes * 60)
}

/// The four operations, answered from `history`; anything else passes through (to moto) or fails.
pub fn rules(history: &Arc<Mutex<FakeHistory>>) -> Vec<Rule> {
    vec![list(history.clone()), describe(history.clone()), revisions(history.clone()), stop(history.clone())]
}

fn list(history: Arc<Mutex<FakeHistory>>) -> Rule {
    mock!(aws_sdk_ecs::Client::list_service_deployments).then_compute_output(move |req| {
        let h = history.lock().unwrap();
        assert_eq!((req.cluster(), req.service()), (Some(&*h.cluster), Some(&*h.service)), "the target's service");
        let after = req.created_at().and_then(|c| c.after()).expect("listed within the horizon").secs();
        // Oldest first, the reverse of what the code must not assume.
        let mut listed: Vec<&FakeDeployment> =
            h.deployments.iter().filter(|d| ago(d.minutes_ago).secs() > after).collect();
        listed.sort_by_key(|d| -d.minutes_ago);
        let start: usize = req.next_token().map_or(0, |t| t.parse().unwrap());
        let size = if h.page == 0 { listed.len().max(1) } else { h.page };
        let briefs = listed.iter().skip(start).take(size).map(|d| {
            ServiceDeploymentBrief::builder()
                .service_deployment_arn(h.arn("service-deployment", &d.id))
                .created_at(ago(d.minutes_ago))
                .status(d.status.clone())
                .target_service_revision_arn(h.revision(&d.to))
                .build()
        });
        let next = (start + size < listed.len()).then(|| (start + size).to_string());
        ListServiceDeploymentsOutput::builder()
            .set_service_deployments(Some(briefs.collect()))
            .set_next_token(next)
            .build()
    })
}

fn describe(history: Arc<Mutex<FakeHistory>>) -> Rule {
    mock!(aws_sdk_ecs::Client::describe_service_deployments).then_compute_output(move |req| {
        let h = history.lock().unwrap();
        assert!(req.service_deployment_arns().len() <= 20, "at most 20 ARNs");
        let found = h
            .deployments
            .iter()
            .filter(|d| req.service_deployment_arns().contains(&h.arn("service-deployment", &d.id)));
        let described = found.map(|d| {
            let summary =
                |td: &str, running| ServiceRevisionSummary::builder().arn(h.revision(td)).running_task_count(running);
            ServiceDeployment::builder()
                .service_deployment_arn(h.arn("service-deployment", &d.id))
                .created_at(ago(d.minutes_ago))
                .status(d.status.clone())
                .source_service_revisions(summary(&d.from, 3).build())
                .target_service_revision(summary(&d.to, 0).build())
                .build()
        });
        DescribeServiceDeploymentsOutput::builder().set_service_deployments(Some(described.collect())).build()
    })
}

fn revisions(history: Arc<Mutex<FakeHistory>>) -> Rule {
    mock!(aws_sdk_ecs::Client::describe_service_revisions).then_compute_output(move |req| {
        let h = history.lock().unwrap();
        assert!(req.service_revision_arns().len() <= 20, "at most 20 ARNs");
        let tds = h.deployments.iter().flat_map(|d| [d.from.clone(), d.to.clone()]);
        let known: Vec<String> = tds.collect();
        let described = known
            .iter()
            .filter(|td| req.service_revision_arns().contains(&h.revision(td)))
            .map(|td| ServiceRevision::builder().service_revision_arn(h.revision(td)).task_definition(td).build());
        let mut seen = Vec::new();
        let unique = described.filter(|r| {
            let arn = r.service_revision_arn().unwrap_or_default().to_owned();
            !seen.contains(&arn) && {
                seen.push(arn);
                true
            }
        });
        DescribeServiceRevisionsOutput::builder().set_service_revisions(Some(unique.collect())).build()
    })
}

/// StopServiceDeployment: a deployment no longer rolling out answers ConflictException, as ECS
/// documents for a deployment that is not PENDING or IN_PROGRESS.
fn stop(history: Arc<Mutex<FakeHistory>>) -> Rule {
    mock!(aws_sdk_ecs::Client::stop_service_deployment).then_compute_response(move |req| {
        let mut h = history.lock().unwrap();
        let arn = req.service_deployment_arn().unwrap_or_default().to_owned();
        let stop_type = req.stop_type().map(|t| t.as_str().to_owned()).unwrap_or_default();
        let id = arn.rsplit('/').next().unwrap_or_default().to_owned();
        let finishes = h.finishes_before_stop;
        let Some(d) = h.deployments.iter_mut().find(|d| d.id == id) else { panic!("no deployment {arn}") };
        if finishes {
            d.status = ServiceDeploymentStatus::Successful;
        }
        if !matches!(d.status, ServiceDeploymentStatus::InProgress | ServiceDeploymentStatus::Pending) {
            let conflict = ConflictException::builder().message("The service deployment is not in progress").build();
            return MockResponse::Error(StopServiceDeploymentError::ConflictException(conflict));
        }
        d.status = ServiceDeploymentStatus::RollbackRequested;
        h.stops.push((arn.clone(), stop_type));
        MockResponse::Output(StopServiceDeploymentOutput::builder().service_deployment_arn(arn).build())
    })
}
