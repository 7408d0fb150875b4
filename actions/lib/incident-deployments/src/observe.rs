//! The describe calls behind [`Recent`]: DescribeServices, ListServiceDeployments within the
//! horizon, DescribeServiceDeployments of the newest 20 (restarts among them are left out of the
//! changes later), DescribeServiceRevisions of their revisions.
//!
//! ListServiceDeployments keeps 90 days and nothing created before 2024-10-25; its order is not
//! documented, so the deployments are sorted by creation here. A revision from before that date is
//! a MISSING failure of DescribeServiceRevisions: its task definition stays unknown.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{CreatedAt, ServiceDeployment, ServiceDeploymentBrief, ServiceRevisionSummary};
use chrono::{DateTime, Utc};
use shared::FunctionError;
use shared::aws::to_chrono;
use shared::ecs::{self, ServiceRef};
use shared::iam::{Permission, arn};

use crate::recent::{Deployment, Primary, Recent, Revision};

/// Pages of ListServiceDeployments read at most: 100 deployments each, far more than a horizon of
/// hours holds.
const MAX_PAGES: usize = 5;
/// DescribeServiceDeployments and DescribeServiceRevisions take at most 20 ARNs.
const DESCRIBE_BATCH: usize = 20;

/// The service's deployments created within `horizon` before `now`, the newest 20 described.
pub async fn recent(
    client: &Client,
    service: &ServiceRef,
    now: DateTime<Utc>,
    horizon: Duration,
) -> Result<Recent, FunctionError> {
    let described = ecs::describe_service(client, service).await?;
    let since = now - chrono::TimeDelta::from_std(horizon).unwrap_or(chrono::TimeDelta::MAX);
    let mut briefs = list(client, service, since).await?;
    briefs.sort_by_key(|b| std::cmp::Reverse(b.created_at().map(to_chrono)));
    let newest: Vec<String> =
        briefs.iter().take(DESCRIBE_BATCH).filter_map(|b| b.service_deployment_arn()).map(Into::into).collect();
    let mut found = describe_deployments(client, &newest).await?;
    found.sort_by_key(|d| std::cmp::Reverse(d.created_at().map(to_chrono)));
    let task_definitions = describe_revisions(client, &revision_arns(&found)).await?;
    let primary = ecs::primary_deployment(&described).map(|d| Primary {
        id: d.id().unwrap_or_default().to_owned(),
        created_at: d.created_at().map(to_chrono),
        task_definition: d.task_definition().map(str::to_owned),
    });
    Ok(Recent {
        cluster: service.cluster.clone(),
        service: service.service.clone(),
        horizon,
        task_definition: described.task_definition().map(str::to_owned),
        primary,
        deployments: found.iter().map(|d| deployment(d, &task_definitions)).collect(),
    })
}

async fn list(
    client: &Client,
    service: &ServiceRef,
    since: DateTime<Utc>,
) -> Result<Vec<ServiceDeploymentBrief>, FunctionError> {
    let after = aws_smithy_types::DateTime::from_secs(since.timestamp());
    let mut briefs = Vec::new();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let out = client
            .list_service_deployments()
            .cluster(&service.cluster)
            .service(&service.service)
            .created_at(CreatedAt::builder().after(after).build())
            .set_next_token(token)
            .send()
            .await
            .map_err(|err| FunctionError::aws("ECS ListServiceDeployments", &err))?;
        briefs.extend_from_slice(out.service_deployments());
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(briefs)
}

async fn describe_deployments(client: &Client, arns: &[String]) -> Result<Vec<ServiceDeployment>, FunctionError> {
    let mut found = Vec::new();
    for batch in arns.chunks(DESCRIBE_BATCH) {
        let out = client
            .describe_service_deployments()
            .set_service_deployment_arns(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|err| FunctionError::aws("ECS DescribeServiceDeployments", &err))?;
        found.extend_from_slice(out.service_deployments());
    }
    Ok(found)
}

/// Each revision's task definition; a revision not described (MISSING) is left out.
async fn describe_revisions(client: &Client, arns: &[String]) -> Result<HashMap<String, String>, FunctionError> {
    let mut found = HashMap::new();
    for batch in arns.chunks(DESCRIBE_BATCH) {
        let out = client
            .describe_service_revisions()
            .set_service_revision_arns(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|err| FunctionError::aws("ECS DescribeServiceRevisions", &err))?;
        for revision in out.service_revisions() {
            if let (Some(arn), Some(td)) = (revision.service_revision_arn(), revision.task_definition()) {
                found.insert(arn.to_owned(), td.to_owned());
            }
        }
    }
    Ok(found)
}

fn revision_arns(deployments: &[ServiceDeployment]) -> Vec<String> {
    let mut arns: Vec<String> = deployments
        .iter()
        .flat_map(|d| d.source_service_revisions().iter().chain(d.target_service_revision()))
        .filter_map(|r| r.arn().map(str::to_owned))
        .collect();
    arns.sort();
    arns.dedup();
    arns
}

fn deployment(d: &ServiceDeployment, task_definitions: &HashMap<String, String>) -> Deployment {
    let revision = |r: &ServiceRevisionSummary| {
        let arn = r.arn().unwrap_or_default().to_owned();
        Revision { task_definition: task_definitions.get(&arn).cloned(), arn, running_tasks: r.running_task_count() }
    };
    let mut sources: Vec<Revision> = d.source_service_revisions().iter().map(revision).collect();
    sources.sort_by_key(|r| std::cmp::Reverse(r.running_tasks));
    Deployment {
        arn: d.service_deployment_arn().unwrap_or_default().to_owned(),
        // None given is no status this code knows: never read as one that invites acting.
        status: d.status().cloned().unwrap_or_else(|| "(none)".into()),
        created_at: d.created_at().map(to_chrono).unwrap_or_default(),
        sources,
        target: d.target_service_revision().map(revision),
    }
}

/// What reading a service's recent deployments needs. ListServiceDeployments is authorised on the
/// service; the two describes list the service and the deployment or revision as their resources
/// (whose ARNs carry cluster and service: `service-deployment/<cluster>/<service>/<id>`), so both
/// are granted.
pub fn permissions(cluster: &str, service: &str) -> Vec<Permission> {
    let mut declared = vec![
        ecs::describe_services_permission(cluster, service),
        Permission::new("ecs:ListServiceDeployments", service_arn(cluster, service, "service")),
    ];
    declared.extend(on_service_and("ecs:DescribeServiceDeployments", cluster, service, "service-deployment"));
    declared.extend(on_service_and("ecs:DescribeServiceRevisions", cluster, service, "service-revision"));
    declared
}

/// An ECS action granted on the service and on its `kind` (`service-deployment`) resources.
pub fn on_service_and(action: &'static str, cluster: &str, service: &str, kind: &str) -> [Permission; 2] {
    [
        Permission::new(action, service_arn(cluster, service, "service")),
        Permission::new(action, format!("{}/*", service_arn(cluster, service, kind))),
    ]
}

fn service_arn(cluster: &str, service: &str, kind: &str) -> String {
    arn("ecs", &format!("{kind}/{cluster}/{service}"))
}
