//! The looks a verification takes: one describe call per expectation, and the alarm's state.
//! A call that fails is "not yet" (the deadline makes it inconclusive), never a verdict.

use aws_sdk_ec2::types::SummaryStatus;
use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState};
use incident_scaling::observe::ElastiCacheObserved;
use shared::aws::LazyClient;
use shared::ecs::{ServiceRef, describe_service, primary_deployment};
use shared::iam::{Permission, arn};

use crate::trigger::AlarmState;
use crate::verify::{Expectation, Seen};

/// The clients the looks use, each built on its first use: a sweep with nothing due builds none,
/// and an ECS restart's verification never builds RDS's (init stays near a bare runtime's).
pub struct Clients {
    pub ecs: LazyClient<aws_sdk_ecs::Client>,
    pub rds: LazyClient<aws_sdk_rds::Client>,
    pub elasticache: LazyClient<aws_sdk_elasticache::Client>,
    pub ec2: LazyClient<aws_sdk_ec2::Client>,
    pub cloudwatch: LazyClient<aws_sdk_cloudwatch::Client>,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            ecs: LazyClient::new(config, aws_sdk_ecs::Client::new),
            rds: LazyClient::new(config, aws_sdk_rds::Client::new),
            elasticache: LazyClient::new(config, aws_sdk_elasticache::Client::new),
            ec2: LazyClient::new(config, aws_sdk_ec2::Client::new),
            cloudwatch: LazyClient::new(config, aws_sdk_cloudwatch::Client::new),
        }
    }
}

/// What the looks need, `${...}` standing for the targets' fields and the alarms' names.
pub fn permissions() -> Vec<Permission> {
    vec![
        shared::ecs::describe_services_permission("${cluster}", "${service}"),
        Permission::new("rds:DescribeDBInstances", arn("rds", "db:${instanceId}")),
        incident_scaling::observe::describe_group_permission("${replicationGroupId}"),
        incident_scaling::observe::describe_cluster_permission("${cacheClusterId}"),
        // DescribeInstanceStatus has no resource-level permissions.
        Permission::any("ec2:DescribeInstanceStatus"),
        Permission::new("cloudwatch:DescribeAlarms", arn("cloudwatch", "alarm:*")),
    ]
}

/// What the resource shows now. `news` is a deployment's outcome its event already brought.
pub async fn resource(clients: &Clients, expectation: &Expectation, news: Option<&str>) -> Seen {
    let subject = expectation.subject();
    let seen = match expectation {
        Expectation::EcsDeployment { cluster, service, deployment_id } => match news {
            Some("COMPLETED") => Ok(Seen::Done(format!("{subject} COMPLETED"))),
            Some(failed) if failed.starts_with("FAILED") => Ok(Seen::Failed(format!("{subject} {failed}"))),
            _ => deployment(clients, cluster, service, deployment_id, &subject).await,
        },
        Expectation::EcsTaskDefinition { cluster, service, task_definition } => {
            on_task_definition(clients, cluster, service, task_definition, &subject).await
        }
        Expectation::EcsRunning { cluster, service, count } => {
            running(clients, cluster, service, *count, &subject).await
        }
        Expectation::RdsClass { instance_id, instance_class } => rds(clients, instance_id, instance_class).await,
        Expectation::CacheNodeType { .. } | Expectation::CacheReplicas { .. } | Expectation::CacheNodes { .. } => {
            cache(clients, expectation, &subject).await
        }
        Expectation::Ec2Status { instance_ids } => ec2(clients, instance_ids, &subject).await,
        Expectation::Immediate => Ok(Seen::Done("the action's answer".to_owned())),
    };
    seen.unwrap_or_else(|problem| Seen::Pending(format!("{subject} could not be read: {problem}")))
}

async fn deployment(clients: &Clients, cluster: &str, service: &str, id: &str, subject: &str) -> Result<Seen, String> {
    let found = describe_service(&clients.ecs, &ServiceRef::new(cluster, service)).await.map_err(|e| e.to_string())?;
    let Some(d) = found.deployments().iter().find(|d| d.id() == Some(id)) else {
        return Ok(Seen::Pending(format!("{subject} is no longer listed (a newer deployment replaced it)")));
    };
    Ok(rollout(d, found.deployments().len() == 1, subject))
}

/// A rollback ECS carries out within the deployment it stopped: the primary deployment, once it
/// runs the task definition, judged as a restart's is.
async fn on_task_definition(
    clients: &Clients,
    cluster: &str,
    service: &str,
    task_definition: &str,
    subject: &str,
) -> Result<Seen, String> {
    let found = describe_service(&clients.ecs, &ServiceRef::new(cluster, service)).await.map_err(|e| e.to_string())?;
    let Some(d) = primary_deployment(&found).filter(|d| d.task_definition() == Some(task_definition)) else {
        return Ok(Seen::Pending(format!("{subject}: not the primary deployment's task definition yet")));
    };
    Ok(rollout(d, found.deployments().len() == 1, subject))
}

/// What a deployment's rollout says; `alone` when it is the service's only deployment.
fn rollout(d: &Deployment, alone: bool, subject: &str) -> Seen {
    let (running, desired) = (d.running_count(), d.desired_count());
    match d.rollout_state() {
        Some(DeploymentRolloutState::Failed) => {
            Seen::Failed(format!("{subject} FAILED: {}", d.rollout_state_reason().unwrap_or("rollout failed")))
        }
        Some(DeploymentRolloutState::Completed) if running == desired => {
            Seen::Done(format!("{subject} COMPLETED, {running} running"))
        }
        // Without a rollout state (another deployment controller): the only deployment, at its count.
        None if alone && running == desired => Seen::Done(format!("{subject} steady, {running} running")),
        state => Seen::Pending(format!(
            "{subject} {}, {running} of {desired} running",
            state.map_or("in progress", DeploymentRolloutState::as_str)
        )),
    }
}

async fn running(clients: &Clients, cluster: &str, service: &str, count: i32, subject: &str) -> Result<Seen, String> {
    let found = describe_service(&clients.ecs, &ServiceRef::new(cluster, service)).await.map_err(|e| e.to_string())?;
    let now = found.running_count();
    Ok(if now >= count {
        Seen::Done(format!("{cluster}/{service} {now} running"))
    } else {
        Seen::Pending(format!("{subject}: {now} running"))
    })
}

async fn rds(clients: &Clients, id: &str, class: &str) -> Result<Seen, String> {
    let out = clients.rds.describe_db_instances().db_instance_identifier(id).send().await;
    let out = out.map_err(|err| shared::FunctionError::aws("RDS DescribeDBInstances", &err).to_string())?;
    let instance = out.db_instances().first().ok_or("not found")?;
    let status = instance.db_instance_status().unwrap_or("unknown");
    let now = instance.db_instance_class().unwrap_or_default();
    let pending = instance.pending_modified_values().and_then(|p| p.db_instance_class());
    Ok(match (status, pending) {
        ("available", None) if now == class => Seen::Done(format!("RDS {id} available as {now}")),
        _ => Seen::Pending(format!(
            "RDS {id} {status} as {now}{}",
            pending.map(|p| format!(", {p} pending")).unwrap_or_default()
        )),
    })
}

async fn cache(clients: &Clients, expectation: &Expectation, subject: &str) -> Result<Seen, String> {
    use incident_core::config::ElastiCache;
    let spec = match expectation {
        Expectation::CacheNodes { cache_cluster_id, .. } => {
            ElastiCache::Nodes { cache_cluster_id: cache_cluster_id.clone(), max_nodes: 1 }
        }
        Expectation::CacheNodeType { replication_group_id, .. }
        | Expectation::CacheReplicas { replication_group_id, .. } => {
            ElastiCache::Replicas { replication_group_id: replication_group_id.clone(), max_replicas: 1 }
        }
        _ => return Ok(Seen::Done(subject.to_owned())),
    };
    let seen = incident_scaling::observe::elasticache(&clients.elasticache, &spec).await.map_err(|e| e.to_string())?;
    let done = match (&seen, expectation) {
        (ElastiCacheObserved::Group { node_type, status, .. }, Expectation::CacheNodeType { node_type: want, .. }) => {
            status == "available" && node_type == want
        }
        (ElastiCacheObserved::Group { replicas, status, .. }, Expectation::CacheReplicas { replicas: want, .. }) => {
            status == "available" && replicas >= want
        }
        (ElastiCacheObserved::Cluster { nodes, status }, Expectation::CacheNodes { nodes: want, .. }) => {
            status == "available" && nodes >= want
        }
        _ => false,
    };
    let now = format!("{seen:?}");
    Ok(if done { Seen::Done(format!("{subject}: {now}")) } else { Seen::Pending(format!("{subject}: {now}")) })
}

async fn ec2(clients: &Clients, ids: &[String], subject: &str) -> Result<Seen, String> {
    let call = clients.ec2.describe_instance_status().set_instance_ids(Some(ids.to_vec())).include_all_instances(true);
    let out =
        call.send().await.map_err(|err| shared::FunctionError::aws("EC2 DescribeInstanceStatus", &err).to_string())?;
    let ok = |s: Option<&SummaryStatus>| s == Some(&SummaryStatus::Ok);
    let passing = out
        .instance_statuses()
        .iter()
        .filter(|s| ok(s.instance_status().and_then(|x| x.status())) && ok(s.system_status().and_then(|x| x.status())))
        .count();
    Ok(if passing == ids.len() {
        Seen::Done(format!("{subject}: all {passing} pass"))
    } else {
        Seen::Pending(format!("{subject}: {passing} of {} pass", ids.len()))
    })
}

/// The alarm's state now.
pub async fn alarm_state(cloudwatch: &aws_sdk_cloudwatch::Client, name: &str) -> Result<AlarmState, String> {
    use aws_sdk_cloudwatch::types::AlarmType;
    let describe = cloudwatch.describe_alarms().alarm_names(name);
    let out = describe.alarm_types(AlarmType::MetricAlarm).alarm_types(AlarmType::CompositeAlarm).send().await;
    let out = out.map_err(|err| shared::FunctionError::aws("CloudWatch DescribeAlarms", &err).to_string())?;
    let metric = out.metric_alarms().first().and_then(|a| a.state_value()).map(|s| s.as_str().to_owned());
    let composite = out.composite_alarms().first().and_then(|a| a.state_value()).map(|s| s.as_str().to_owned());
    let state = metric.or(composite).ok_or_else(|| format!("alarm {name} not found"))?;
    AlarmState::parse(&state).ok_or_else(|| format!("alarm {name} is in an unknown state {state}"))
}
