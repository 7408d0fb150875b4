//! Verification: what success of a step looks like (from the typed state the action answered
//! with), and the verdict on what was seen. Pure: the describes are [`crate::check`]'s.

use chrono::{DateTime, Utc};
use incident_core::config::{ElastiCache, Target};
use incident_core::state::State;
use serde::{Deserialize, Serialize};

use crate::trigger::AlarmState;

/// What a fix that worked leaves behind, read back from the resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Expectation {
    /// A restart's deployment completes with running = desired (a failed rollout fails).
    EcsDeployment {
        cluster: String,
        service: String,
        deployment_id: String,
    },
    /// A rollback that ECS carries out within the deployment it stopped: the primary deployment runs
    /// this task definition, completed with running = desired.
    EcsTaskDefinition {
        cluster: String,
        service: String,
        task_definition: String,
    },
    /// A scale-up's running count reaches the planned count.
    EcsRunning {
        cluster: String,
        service: String,
        count: i32,
    },
    /// `available`, with the planned class and no modification pending.
    RdsClass {
        instance_id: String,
        instance_class: String,
    },
    /// `available`, with the planned node type, replicas or nodes.
    CacheNodeType {
        replication_group_id: String,
        node_type: String,
    },
    CacheReplicas {
        replication_group_id: String,
        replicas: i32,
    },
    CacheNodes {
        cache_cluster_id: String,
        nodes: i32,
    },
    /// Every instance's status checks pass.
    Ec2Status {
        instance_ids: Vec<String>,
    },
    /// Known when the action answers (Redis: the keys are gone; a cache reboot: its nodes came back).
    Immediate,
}

impl Expectation {
    /// What success of a step on `target` that answered with `after` looks like.
    pub fn of(target: &Target, after: &State) -> Self {
        match (target, after) {
            (Target::EcsService(t), State::EcsDeployment { deployment_id: Some(id), .. }) => Self::EcsDeployment {
                cluster: t.cluster.clone(),
                service: t.service.clone(),
                deployment_id: id.clone(),
            },
            (Target::EcsService(t), State::EcsDeployment { deployment_id: None, task_definition: Some(td) }) => {
                Self::EcsTaskDefinition {
                    cluster: t.cluster.clone(),
                    service: t.service.clone(),
                    task_definition: td.clone(),
                }
            }
            (Target::EcsService(t), State::EcsService { desired_count, .. }) => {
                Self::EcsRunning { cluster: t.cluster.clone(), service: t.service.clone(), count: *desired_count }
            }
            (Target::RdsInstance(t), State::RdsInstance { instance_class }) => {
                Self::RdsClass { instance_id: t.instance_id.clone(), instance_class: instance_class.clone() }
            }
            (Target::Redis(r), after) => cache(r.elasticache.as_ref(), after),
            (Target::Ec2Instances(t), _) => Self::Ec2Status { instance_ids: t.instance_ids.clone() },
            _ => Self::Immediate,
        }
    }

    /// `deployment ecs-svc/… of production/api` for the evidence.
    pub fn subject(&self) -> String {
        match self {
            Self::EcsDeployment { cluster, service, deployment_id } => {
                format!("deployment {deployment_id} of {cluster}/{service}")
            }
            Self::EcsTaskDefinition { cluster, service, task_definition } => {
                format!("{cluster}/{service} on {}", task_definition.rsplit('/').next().unwrap_or(task_definition))
            }
            Self::EcsRunning { cluster, service, count } => format!("{cluster}/{service} at {count} running"),
            Self::RdsClass { instance_id, instance_class } => format!("RDS {instance_id} as {instance_class}"),
            Self::CacheNodeType { replication_group_id, node_type } => format!("{replication_group_id} on {node_type}"),
            Self::CacheReplicas { replication_group_id, replicas } => {
                format!("{replication_group_id} with {replicas} replicas")
            }
            Self::CacheNodes { cache_cluster_id, nodes } => format!("{cache_cluster_id} with {nodes} nodes"),
            Self::Ec2Status { instance_ids } => format!("status checks of {}", instance_ids.join(", ")),
            Self::Immediate => "the action's own answer".to_owned(),
        }
    }
}

fn cache(elasticache: Option<&ElastiCache>, after: &State) -> Expectation {
    match (elasticache, after) {
        (Some(ec), State::CacheNodeType { cache_node_type }) => Expectation::CacheNodeType {
            replication_group_id: ec.replication_group_id().unwrap_or_default().to_owned(),
            node_type: cache_node_type.clone(),
        },
        (Some(ec), State::CacheReplicas { replicas }) => Expectation::CacheReplicas {
            replication_group_id: ec.replication_group_id().unwrap_or_default().to_owned(),
            replicas: *replicas,
        },
        (Some(ec), State::CacheNodes { num_cache_nodes }) => Expectation::CacheNodes {
            cache_cluster_id: ec.cache_cluster_id().unwrap_or_default().to_owned(),
            nodes: *num_cache_nodes,
        },
        _ => Expectation::Immediate,
    }
}

/// What a look at the resource found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// It shows the fix.
    Done(String),
    /// Not yet (or it could not be read): say what.
    Pending(String),
    /// It will not show it: a rollout the circuit breaker failed.
    Failed(String),
}

/// A verification's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Verified,
    Failed,
    /// The deadline passed undecided.
    Inconclusive,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Failed => "failed",
            Self::Inconclusive => "inconclusive",
        }
    }
}

/// A verdict and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub evidence: String,
}

/// The verdict on a step, or `None` to look again later. `alarm` is the state of the alarm that
/// started the incident (`None` when no alarm did): a fix whose resource shows it while the alarm
/// stays in ALARM at the deadline did not fix the symptom, and has failed.
pub fn judge(
    seen: &Seen,
    alarm: Option<(&str, AlarmState)>,
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
) -> Option<Verdict> {
    let alarm_says = alarm.map(|(name, state)| format!("alarm {name} {}", state.as_str()));
    let with_alarm = |text: &str| match &alarm_says {
        Some(said) => format!("{text}; {said}"),
        None => text.to_owned(),
    };
    let verdict = |outcome, evidence| Some(Verdict { outcome, evidence });
    let recovered = alarm.is_none_or(|(_, state)| state == AlarmState::Ok);
    match seen {
        Seen::Failed(what) => verdict(Outcome::Failed, with_alarm(what)),
        Seen::Done(what) if recovered => verdict(Outcome::Verified, with_alarm(what)),
        _ if now < deadline => None,
        Seen::Done(what) if alarm.is_some_and(|(_, state)| state == AlarmState::Alarm) => {
            verdict(Outcome::Failed, with_alarm(&format!("{what}, but the symptom stayed")))
        }
        Seen::Done(what) | Seen::Pending(what) => {
            verdict(Outcome::Inconclusive, with_alarm(&format!("{what} when the window closed")))
        }
    }
}

#[cfg(test)]
mod tests;
