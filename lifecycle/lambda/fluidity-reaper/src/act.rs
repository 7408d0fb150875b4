//! Phase 5, act: the state tag read again (a rollback during the run wins), then retire or clean
//! up; and the run's report.

use fluidity_names::service::{self as deployment, DRAINING};
use shared::FunctionError;
use shared::ecs::{self, ServiceRef};

use crate::classify::Verdict;
use crate::cleanup::{Cleanup, clean_up};
use crate::discover::Draining;
use crate::{Deps, ReaperReport, ReaperSettings, ServiceAction, ServiceReport};

/// Phase 5: carries out one service's verdict.
pub(crate) async fn act(
    deps: &Deps,
    d: &Draining,
    verdict: Result<Verdict, String>,
    state_now: Option<&str>,
    dry_run: bool,
) -> ServiceReport {
    let (action, reason) = match verdict {
        Err(err) => (ServiceAction::Failed, err),
        Ok(Verdict::Wait(reason)) => (ServiceAction::Waiting, reason),
        Ok(Verdict::CheckTasks) => (ServiceAction::Waiting, "tasks not checked".to_owned()),
        Ok(Verdict::Retire(_) | Verdict::CleanUp) if state_now != Some(DRAINING) => {
            (ServiceAction::Skipped, changed_during_run(state_now))
        }
        Ok(Verdict::Retire(reason)) => match retire(deps, d, dry_run).await {
            Ok(()) => (ServiceAction::Retired, reason),
            Err(err) => (ServiceAction::Failed, err.to_string()),
        },
        Ok(Verdict::CleanUp) => match clean_up(deps, d, dry_run).await {
            Ok(Cleanup::Done(done)) => (ServiceAction::CleanedUp, done),
            Ok(Cleanup::Held(why)) => (ServiceAction::Waiting, why),
            Ok(Cleanup::Skipped(state)) => (ServiceAction::Skipped, changed_during_run(state.as_deref())),
            Err(err) => (ServiceAction::Failed, err.to_string()),
        },
    };
    let reason = if dry_run && matches!(action, ServiceAction::Retired | ServiceAction::CleanedUp) {
        format!("dry run, nothing changed: {reason}")
    } else {
        reason
    };
    ServiceReport {
        service: d.service.clone(),
        deployment_id: d.deployment_id.clone(),
        action,
        reason,
        draining_since: d.draining_since.map(deployment::format_since),
    }
}

pub(crate) fn changed_during_run(state: Option<&str>) -> String {
    match state {
        Some(state) if !state.is_empty() => format!("marked {state} during this run; left alone"),
        _ => "no longer draining (untagged or deleted) during this run; left alone".to_owned(),
    }
}

pub(crate) fn report(
    s: &ReaperSettings,
    dry_run: bool,
    mut reports: Vec<ServiceReport>,
) -> Result<ReaperReport, FunctionError> {
    reports.sort_by(|a, b| a.service.cmp(&b.service));
    let count = |a: ServiceAction| reports.iter().filter(|r| r.action == a).count();
    let report = ReaperReport {
        cluster: s.cluster.clone(),
        dry_run,
        draining: reports.len(),
        retired: count(ServiceAction::Retired),
        cleaned_up: count(ServiceAction::CleanedUp),
        waiting: count(ServiceAction::Waiting),
        skipped: count(ServiceAction::Skipped),
        failed: count(ServiceAction::Failed),
        services: reports,
    };
    tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "reaper run");
    if report.failed == 0 {
        return Ok(report);
    }
    // A function error, so the schedule's Errors alarm fires; the others were still handled.
    Err(FunctionError::PartialFailure {
        what: "draining services",
        total: report.draining,
        summary: format!(
            "{} retired, {} cleaned up, {} waiting, {} skipped",
            report.retired, report.cleaned_up, report.waiting, report.skipped
        ),
        failures: report
            .services
            .iter()
            .filter(|r| r.action == ServiceAction::Failed)
            .map(|r| format!("{}: {}", r.service, r.reason))
            .collect(),
    })
}

pub(crate) async fn retire(deps: &Deps, d: &Draining, dry_run: bool) -> Result<(), FunctionError> {
    if dry_run || d.desired == 0 {
        return Ok(());
    }
    ecs::set_desired_count(&deps.ecs, &ServiceRef::new(&deps.settings.cluster, &d.service), 0).await.map(drop)
}
