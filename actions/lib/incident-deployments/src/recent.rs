//! What [`crate::observe::recent`] found, typed, and the pure readings of it: which revision served
//! before a deployment, whether a deployment went back to an earlier revision, and the likely
//! cause of an incident in words.

use std::time::Duration;

use aws_sdk_ecs::types::ServiceDeploymentStatus;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A service's recent deployments, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Recent {
    pub cluster: String,
    pub service: String,
    /// How far back the deployments were listed.
    pub horizon: Duration,
    /// The task definition the service runs now (DescribeServices).
    pub task_definition: Option<String>,
    /// The service's primary deployment as DescribeServices lists it: named when nothing falls
    /// within the horizon, since ListServiceDeployments was not asked further back.
    pub primary: Option<Primary>,
    /// The newest deployments within the horizon (up to 20), newest first, restarts included.
    pub deployments: Vec<Deployment>,
}

/// The service's primary deployment (DescribeServices' `deployments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primary {
    /// `ecs-svc/…`.
    pub id: String,
    pub created_at: Option<DateTime<Utc>>,
    pub task_definition: Option<String>,
}

/// One service deployment (DescribeServiceDeployments), with its revisions' task definitions
/// (DescribeServiceRevisions).
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub arn: String,
    pub status: ServiceDeploymentStatus,
    pub created_at: DateTime<Utc>,
    /// The revisions serving when it started, the one running most tasks first.
    pub sources: Vec<Revision>,
    /// The revision it deploys.
    pub target: Option<Revision>,
}

/// A service revision and what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub arn: String,
    /// `None` when DescribeServiceRevisions did not describe it (a revision older than the API).
    pub task_definition: Option<String>,
    pub running_tasks: i32,
}

impl Deployment {
    /// The service deployment's id: the last part of its ARN
    /// (`arn:aws:ecs:…:service-deployment/<cluster>/<service>/<id>`).
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }

    /// The revision that was serving before it started: of its sources, the one running most tasks.
    pub fn serving_before(&self) -> Option<&Revision> {
        self.sources.first()
    }

    /// Still rolling out, so that ECS can stop it and roll it back itself.
    pub fn in_progress(&self) -> bool {
        matches!(self.status, ServiceDeploymentStatus::Pending | ServiceDeploymentStatus::InProgress)
    }

    /// Already being stopped or rolled back.
    pub fn stopping(&self) -> bool {
        matches!(
            self.status,
            ServiceDeploymentStatus::StopRequested
                | ServiceDeploymentStatus::RollbackRequested
                | ServiceDeploymentStatus::RollbackInProgress
        )
    }

    /// `api:41 → api:42`, from the task definitions it went from and to.
    pub fn change(&self) -> String {
        let from = self.serving_before().and_then(|r| r.task_definition.as_deref());
        let to = self.target.as_ref().and_then(|r| r.task_definition.as_deref());
        format!("{} → {}", short(from), short(to))
    }

    /// Whether it changed what runs: its task definition is not the one that served before it (or
    /// either is unknown). A restart (forceNewDeployment) changes nothing, and is neither a cause
    /// nor something to roll back.
    pub fn changes_code(&self) -> bool {
        let to = self.target.as_ref().and_then(|r| r.task_definition.as_deref());
        let from = self.serving_before().and_then(|r| r.task_definition.as_deref());
        to.is_none() || from.is_none() || to != from
    }

    /// Whether it went back to the task definition that served before `earlier` started.
    pub fn returns_from(&self, earlier: &Deployment) -> bool {
        let to = self.target.as_ref().and_then(|r| r.task_definition.as_deref());
        let before = earlier.serving_before().and_then(|r| r.task_definition.as_deref());
        to.is_some() && to == before
    }

    /// Whether it moved to an older revision of the same family (`api:42 → api:41`): a rollback by
    /// the look of it, even when the deployment it undid is older than the horizon.
    pub fn lowers_revision(&self) -> bool {
        let from = self.serving_before().and_then(|r| family_revision(r.task_definition.as_deref()?));
        let to = self.target.as_ref().and_then(|r| family_revision(r.task_definition.as_deref()?));
        matches!((from, to), (Some((f, old)), Some((g, new))) if f == g && new < old)
    }

    /// The task definitions that were serving when it started, when there were several (a
    /// deployment started while another was still rolling out): which one to go back to is then a
    /// human's call.
    pub fn mixed_sources(&self) -> Option<Vec<&str>> {
        let mut tds: Vec<&str> = self.sources.iter().filter_map(|r| r.task_definition.as_deref()).collect();
        tds.sort_unstable();
        tds.dedup();
        (tds.len() > 1).then(|| tds.into_iter().map(short_task_definition).collect())
    }

    /// A status this code knows (the SDK's `Unknown` for one added since, or none given).
    pub fn status_known(&self) -> bool {
        ServiceDeploymentStatus::values().contains(&self.status.as_str())
    }
}

/// `("api", 42)` from `arn:aws:ecs:…:task-definition/api:42` or `api:42`.
fn family_revision(task_definition: &str) -> Option<(&str, u32)> {
    let (family, revision) = short_task_definition(task_definition).rsplit_once(':')?;
    Some((family, revision.parse().ok()?))
}

impl Recent {
    /// The deployments that changed the code (restarts left out), newest first.
    pub fn changes(&self) -> impl Iterator<Item = &Deployment> {
        self.deployments.iter().filter(|d| d.changes_code())
    }

    /// The newest deployment within the horizon that changed the code.
    pub fn latest(&self) -> Option<&Deployment> {
        self.changes().next()
    }

    /// The changes, newest first, each with whether it went back (a rollback, ours or a human's):
    /// it returns to what served before an earlier change that was not itself a return (so a
    /// re-release after a rollback is a change again), or it lowers the revision.
    pub fn with_returns(&self) -> Vec<(&Deployment, bool)> {
        let changes: Vec<&Deployment> = self.changes().collect();
        let mut returns = vec![false; changes.len()];
        for i in (0..changes.len()).rev() {
            let undoes = (i + 1..changes.len()).any(|j| !returns[j] && changes[i].returns_from(changes[j]));
            returns[i] = undoes || changes[i].lowers_revision();
        }
        changes.into_iter().zip(returns).collect()
    }

    /// The likely cause of an incident at `incident_at`, in words, when a deployment within the
    /// horizon started before it: `deployment 4Xb… of api started 11 min before the incident
    /// (task definition api:41 → api:42), SUCCESSFUL`.
    pub fn likely_cause(&self, incident_at: DateTime<Utc>) -> Option<String> {
        let forward = self.with_returns().into_iter().filter(|(_, back)| !back).map(|(d, _)| d);
        let d = forward.into_iter().find(|d| d.created_at <= incident_at)?;
        let before = minutes(incident_at - d.created_at);
        Some(format!(
            "deployment {} of {} started {before} before the incident (task definition {}), {}",
            d.id(),
            self.service,
            d.change(),
            d.status.as_str()
        ))
    }
}

/// `api:42` from a task definition ARN (`arn:aws:ecs:…:task-definition/api:42`), or the name as given.
pub fn short_task_definition(task_definition: &str) -> &str {
    task_definition.rsplit('/').next().unwrap_or(task_definition)
}

fn short(task_definition: Option<&str>) -> &str {
    task_definition.map_or("(unknown)", short_task_definition)
}

/// `11 min`, `2 h 5 min`: an age as an on-call engineer reads it.
pub fn minutes(age: chrono::TimeDelta) -> String {
    let total = age.num_minutes().max(0);
    match (total / 60, total % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap_or_default()
    }

    fn revision(td: &str, running: i32) -> Revision {
        Revision {
            arn: format!("arn:aws:ecs:us-east-1:1:service-revision/c/api/{td}"),
            task_definition: Some(format!("arn:aws:ecs:us-east-1:1:task-definition/{td}")),
            running_tasks: running,
        }
    }

    fn deployment(id: &str, from: &str, to: &str, minute: i64) -> Deployment {
        Deployment {
            arn: format!("arn:aws:ecs:us-east-1:1:service-deployment/c/api/{id}"),
            status: ServiceDeploymentStatus::Successful,
            created_at: at(minute),
            sources: vec![revision(from, 3)],
            target: Some(revision(to, 3)),
        }
    }

    fn recent(deployments: Vec<Deployment>) -> Recent {
        Recent {
            cluster: "c".into(),
            service: "api".into(),
            horizon: Duration::from_secs(7200),
            task_definition: None,
            primary: None,
            deployments,
        }
    }

    #[test]
    fn the_likely_cause_names_the_deployment_its_age_and_both_task_definitions() {
        let r = recent(vec![deployment("late", "api:42", "api:43", 30), deployment("d42", "api:41", "api:42", 9)]);
        assert_eq!(
            r.likely_cause(at(20)).as_deref(),
            Some(
                "deployment d42 of api started 11 min before the incident (task definition api:41 → api:42), SUCCESSFUL"
            ),
            "the newest deployment that started before the incident, not one after it"
        );
        assert_eq!(r.likely_cause(at(5)), None, "nothing started before it");
        assert_eq!(recent(vec![]).likely_cause(at(5)), None);
    }

    /// A restart after a bad deployment (the playbook's first step, say) is neither the cause nor
    /// what a rollback undoes.
    #[test]
    fn restarts_are_left_out_of_the_changes() {
        let bad = deployment("bad", "api:41", "api:42", 0);
        let restart = deployment("restart", "api:42", "api:42", 5);
        let r = recent(vec![restart, bad]);
        assert_eq!(r.latest().map(Deployment::id), Some("bad"));
        assert_eq!(r.changes().count(), 1);
        assert!(r.likely_cause(at(9)).is_some_and(|c| c.starts_with("deployment bad ")), "{:?}", r.likely_cause(at(9)));
    }

    #[test]
    fn a_return_to_the_revision_before_an_earlier_deployment_is_recognised() {
        let bad = deployment("bad", "api:41", "api:42", 0);
        let back = deployment("back", "api:42", "api:41", 10);
        let onward = deployment("onward", "api:42", "api:43", 10);
        assert!(back.returns_from(&bad));
        assert!(!onward.returns_from(&bad));
        let marks =
            |r: &Recent| r.with_returns().iter().map(|(d, back)| (d.id().to_owned(), *back)).collect::<Vec<_>>();
        let r = recent(vec![back.clone(), bad.clone()]);
        assert_eq!(marks(&r), [("back".to_owned(), true), ("bad".to_owned(), false)]);
        assert!(r.likely_cause(at(20)).is_some_and(|c| c.starts_with("deployment bad ")), "a rollback is no cause");
        // Released again after the rollback: a change again, not a return from the rollback.
        let again = deployment("again", "api:41", "api:42", 20);
        let r = recent(vec![again, back, bad.clone()]);
        assert_eq!(marks(&r)[0], ("again".to_owned(), false));
        // The deployment it undid is past the horizon: the older revision gives it away.
        assert!(recent(vec![deployment("lone", "api:42", "api:41", 5)]).with_returns()[0].1);
        assert_eq!(bad.change(), "api:41 → api:42");
        assert_eq!(bad.id(), "bad");
    }

    #[test]
    fn ages_read_in_minutes_and_hours() {
        assert_eq!(minutes(chrono::TimeDelta::minutes(11)), "11 min");
        assert_eq!(minutes(chrono::TimeDelta::minutes(120)), "2 h");
        assert_eq!(minutes(chrono::TimeDelta::minutes(185)), "3 h 5 min");
        assert_eq!(minutes(chrono::TimeDelta::seconds(-5)), "0 min");
        assert_eq!(short_task_definition("api:3"), "api:3");
    }
}
