//! The life of a run, top to bottom: an alarm starts it ([`start`]); each step is first checked
//! as still needed, then invoked ([`advance`]); a step that changed something waits for its
//! verification, which the sweep or an event settles ([`settle`]); a failed or inconclusive
//! verdict runs the next step; when none is left, one page ([`page`]).
//!
//! Every write of the run is conditional on the version read (see [`crate::store`]): whoever loses
//! a race stops, so a step is taken and a page sent once. The page never waits on the ledger:
//! when the ledger cannot be written, the page goes out anyway.

use incident_core::contract::ActionKind;
use incident_core::ledger::LedgerError;
use serde_json::{Value, json};
use shared::FunctionError;

use crate::Deps;
use crate::invoke::{Answer, core_of, invoke, request};
use crate::playbooks::{Playbook, Step};
use crate::run::{Run, Status};
use crate::trigger::{AlarmChange, AlarmState, incident_id};
use crate::verify::{Expectation, judge};

/// The longest the page waits on the ledger: past it, the ledger counts as down and the page goes
/// out (the SDK's own retries of a hanging table would take half a minute).
pub const LEDGER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A ledger call bounded by [`LEDGER_WAIT`].
async fn bounded<T>(call: impl std::future::Future<Output = Result<T, LedgerError>>) -> Result<T, LedgerError> {
    tokio::time::timeout(LEDGER_WAIT, call)
        .await
        .unwrap_or_else(|_| Err(LedgerError::Unavailable(format!("no answer within {} s", LEDGER_WAIT.as_secs()))))
}

/// What an event brought that no describe call would show yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct News {
    /// A deployment's outcome: `COMPLETED`, or `FAILED: <reason>`.
    pub deployment: Option<String>,
    /// The alarm went back to OK.
    pub alarm_ok: bool,
}

/// An alarm entered ALARM: start its playbook, once per transition.
pub async fn start(deps: &Deps, change: &AlarmChange) -> Result<Value, FunctionError> {
    let incident = incident_id(&change.name, change.at);
    if let Some(by) = &change.suppressed_by {
        let message = format!("alarm {} is suppressed ({by}): nothing done", change.name);
        deps.record(&incident, "", "skipped", &message).await;
        return Ok(json!({"incidentId": incident, "outcome": "suppressed", "message": message}));
    }
    let playbook = deps.playbooks.for_alarm(&change.name, &change.tags).map_err(|unmapped| {
        FunctionError::invalid("alarmName", format!("alarm {:?} {unmapped}", shared::text::shown(&change.name)))
    });
    let playbook = match playbook {
        Ok(playbook) => playbook,
        Err(err) => {
            deps.record(&incident, "", "unmapped", &err.to_string()).await;
            return Err(err);
        }
    };
    let now = deps.clock.now();
    let mut run =
        Run::start(incident, playbook.name.clone(), change.name.clone(), playbook.target.clone(), change.at, now);
    let reason: String = change.reason.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    run.note(change.at, format!("alarm {} ALARM: {}", change.name, shared::text::shown(&reason)));
    match bounded(deps.store.create(&run)).await {
        Ok(true) => advance(deps, playbook, run).await,
        Ok(false) => Ok(json!({"incidentId": run.incident_id, "outcome": "already started",
            "message": "this transition already started its playbook; it acts once"})),
        Err(err) => ledger_down(deps, playbook, run, &err).await,
    }
}

/// From the run's current step: each step still needed is invoked, until one changes its resource
/// (then its verification is pending) or none is left (then the page).
pub async fn advance(deps: &Deps, playbook: &Playbook, mut run: Run) -> Result<Value, FunctionError> {
    while let Some(step) = playbook.steps.get(run.step) {
        let now = deps.clock.now();
        if let Some(state) = deps.alarm_recovered(&run.alarm).await {
            run.recovered(run.step, state.as_str(), now);
            return deps.saved(playbook, run, "recovered").await;
        }
        run.acting(run.step, now);
        match bounded(deps.store.save(&mut run)).await {
            Ok(true) => {}
            Ok(false) => return Ok(summary(&run, "taken by another invocation")),
            Err(err) => return ledger_down(deps, playbook, run, &err).await,
        }
        let answer = deps.step(playbook, step, &run).await;
        let now = deps.clock.now();
        let said = format!("{} {}", step.action.as_str(), playbook.target);
        match answer {
            Answer::Applied { after, message } => {
                run.note(now, format!("{said} → {message}"));
                let expectation = Expectation::of(deps.targets.get(&playbook.target)?, &after);
                let deadline = now + chrono::Duration::from_std(step.verify_within).unwrap_or_default();
                run.verifying(expectation, now, deadline);
                // The action recorded itself in the incident's history; the run keeps the rest.
                crate::metrics::acted(&run, now);
                return deps.saved(playbook, run, "verifying").await;
            }
            Answer::NotApplied { status, message } => {
                run.note(now, format!("{said} → not applied ({status}): {message}"));
                run.step += 1;
            }
        }
    }
    Ok(page(deps, playbook, run).await)
}

/// Judges a run's pending verification (sweep, or an event's `news`), and acts on the verdict;
/// takes over a run whose invocation died. A run another invocation holds is left alone.
pub async fn settle(deps: &Deps, incident: &str, news: &News) -> Result<Value, FunctionError> {
    let Some(run) = bounded(deps.store.load(incident)).await.map_err(|e| deps.unavailable(e))? else {
        deps.store.unindex(incident).await.map_err(|e| deps.unavailable(e))?;
        return Ok(json!({"incidentId": incident, "outcome": "gone"}));
    };
    settle_run(deps, run, news).await
}

/// [`settle`] for a run already read (each of its writes still expects the version read).
pub async fn settle_run(deps: &Deps, mut run: Run, news: &News) -> Result<Value, FunctionError> {
    let incident = run.incident_id.clone();
    let incident = incident.as_str();
    if !run.status.open() {
        deps.store.unindex(incident).await.map_err(|e| deps.unavailable(e))?;
        return Ok(summary(&run, "closed"));
    }
    if run.status != Status::Verifying && !run.abandoned(deps.clock.now()) {
        return Ok(summary(&run, "in hand"));
    }
    let Some(playbook) = deps.playbooks.get(&run.playbook) else {
        let said = format!("playbook {} is no longer in the target map", run.playbook);
        if run.evidence.last().is_none_or(|e| e.text != said) {
            run.note(deps.clock.now(), said);
        }
        return Ok(page(deps, &Playbook::gone(&run), run).await);
    };
    match run.status {
        Status::Verifying => verdict(deps, playbook, run, news).await,
        Status::Paging => Ok(page(deps, playbook, run).await),
        _ => advance(deps, playbook, run).await,
    }
}

async fn verdict(deps: &Deps, playbook: &Playbook, mut run: Run, news: &News) -> Result<Value, FunctionError> {
    let Some(pending) = run.pending.clone() else { return advance(deps, playbook, run).await };
    let deployment_news = news.deployment.clone().or(pending.deployment_news.clone());
    let seen = crate::check::resource(&deps.clients, &pending.expectation, deployment_news.as_deref()).await;
    let alarm = match news.alarm_ok {
        true => AlarmState::Ok,
        false => crate::check::alarm_state(&deps.clients.cloudwatch, &run.alarm)
            .await
            .unwrap_or(AlarmState::InsufficientData),
    };
    let now = deps.clock.now();
    let Some(verdict) = judge(&seen, Some((&run.alarm, alarm)), now, pending.deadline) else {
        if news.deployment.is_some() && pending.deployment_news.is_none() {
            run.pending = Some(crate::run::Pending { deployment_news, ..pending });
            return deps.saved(playbook, run, "news kept").await;
        }
        return Ok(summary(&run, "verifying"));
    };
    run.judged(&verdict, now);
    match bounded(deps.store.save(&mut run)).await {
        Ok(true) => {}
        Ok(false) => return Ok(summary(&run, "judged by another invocation")),
        Err(err) => return ledger_down(deps, playbook, run, &err).await,
    }
    crate::metrics::judged(&verdict, pending.since, now);
    deps.record(&run.incident_id, &playbook.target, verdict.outcome.as_str(), &verdict.evidence).await;
    match run.status {
        Status::Resolved => Ok(summary(&run, "resolved")),
        _ => advance(deps, playbook, run).await,
    }
}

/// The steps are exhausted: one page with the evidence. The run is marked as paging first, so
/// that of two invocations only one pages; a page notify_human did not take is sent again by
/// the sweep, as the identical request, which notify_human's idempotency answers once.
pub async fn page(deps: &Deps, playbook: &Playbook, mut run: Run) -> Value {
    run.paging(playbook.steps.len(), deps.clock.now());
    // A ledger that cannot be written does not hold the page back.
    if let Ok(false) = bounded(deps.store.save(&mut run)).await {
        return summary(&run, "paged by another invocation");
    }
    match deps.send_page(playbook, &run).await {
        Ok(message) => {
            run.status = Status::Paged;
            run.note(deps.clock.now(), message);
            crate::metrics::paged(&run);
            // The page went out: a ledger that cannot record it now is noted, never paged about.
            let answer = deps.saved(playbook, run, "paged").await;
            answer.unwrap_or_else(|err| json!({"outcome": "paged", "ledger": err.to_string()}))
        }
        Err(problem) => {
            tracing::error!(incident = %run.incident_id, "the page did not go out; the sweep sends it again: {problem}");
            summary(&run, "page pending")
        }
    }
}

/// The ledger cannot be written: this invocation does nothing more automatically (nothing would
/// stop a second one from doing it again), and the on-call engineer is paged now, with what is
/// known. A page that fails here is the function's error: Lambda retries an asynchronous event,
/// then hands it to the operations topic. Once the ledger answers again, the sweep may take the run
/// up where it was written last.
async fn ledger_down(
    deps: &Deps,
    playbook: &Playbook,
    mut run: Run,
    err: &LedgerError,
) -> Result<Value, FunctionError> {
    tracing::error!(incident = %run.incident_id, "the ledger is unavailable; paging now: {}", err.problem());
    let note = format!("automation interrupted: the incident ledger is unavailable ({})", err.problem());
    run.note(deps.clock.now(), note);
    run.status = Status::Paging;
    match deps.send_page(playbook, &run).await {
        Ok(message) => {
            crate::metrics::paged(&run);
            Ok(summary(&run, &format!("paged without the ledger: {message}")))
        }
        Err(problem) => Err(FunctionError::LedgerUnavailable {
            table: deps.store.table.clone(),
            problem: format!("{}; the page failed too: {problem}", err.problem()),
        }),
    }
}

/// The function's answer about a run.
pub fn summary(run: &Run, outcome: &str) -> Value {
    json!({
        "incidentId": run.incident_id, "playbook": run.playbook, "outcome": outcome,
        "status": run.status, "step": run.step + 1, "evidence": run.evidence_lines(),
        "waitingFor": run.pending.as_ref().map(|p| &p.expectation),
    })
}

impl Deps {
    /// The step as the action's request, invoked; whatever happens, an answer.
    async fn step(&self, playbook: &Playbook, step: &Step, run: &Run) -> Answer {
        let details =
            json!({"title": format!("Alarm {} (playbook {}, step {})", run.alarm, playbook.name, run.step + 1)});
        let payload =
            request(step.action, Some(&playbook.target), &run.incident_id, step.priority, details, &step.params);
        match invoke(&self.lambda, self.functions.of(step.action), &payload).await.and_then(|a| core_of(&a)) {
            Ok(core) => Answer::of(&core),
            Err(problem) => Answer::NotApplied { status: 502, message: problem },
        }
    }

    /// The page, as notify_human's request: the evidence in order.
    async fn send_page(&self, playbook: &Playbook, run: &Run) -> Result<String, String> {
        let title =
            format!("Alarm {} still ALARM after automation ({} on {})", run.alarm, playbook.name, playbook.target);
        let details = json!({"title": shared::text::shown(&title), "description": run.evidence_lines().join("\n")});
        // The target lets the page name the likely cause (its recent deployments).
        let payload = request(
            ActionKind::NotifyHuman,
            Some(&playbook.target),
            &run.incident_id,
            playbook.priority,
            details,
            &serde_json::Map::new(),
        );
        let core = core_of(&invoke(&self.lambda, self.functions.of(ActionKind::NotifyHuman), &payload).await?)?;
        match core.success {
            true => Ok(format!("paged: {}", core.message)),
            false => Err(format!("notify_human answered {}: {}", core.status_code, core.message)),
        }
    }

    /// The alarm's state when it is back to OK. INSUFFICIENT_DATA is not recovered (a service
    /// whose tasks all died reports no data), and a state that cannot be read is taken as still
    /// ALARM: the step's own guards bound what it does.
    async fn alarm_recovered(&self, alarm: &str) -> Option<AlarmState> {
        match crate::check::alarm_state(&self.clients.cloudwatch, alarm).await {
            Ok(AlarmState::Ok) => Some(AlarmState::Ok),
            Ok(_) => None,
            Err(problem) => {
                tracing::warn!(alarm, "the alarm's state cannot be read; the step goes ahead: {problem}");
                None
            }
        }
    }

    /// Saves the run and answers with it.
    async fn saved(&self, playbook: &Playbook, mut run: Run, outcome: &str) -> Result<Value, FunctionError> {
        match bounded(self.store.save(&mut run)).await {
            Ok(true) => Ok(summary(&run, outcome)),
            Ok(false) => Ok(summary(&run, "taken by another invocation")),
            Err(err) if matches!(run.status, Status::Paged | Status::Resolved) => {
                Ok(summary(&run, &format!("{outcome}; not recorded: {}", err.problem())))
            }
            Err(err) => ledger_down(self, playbook, run, &err).await,
        }
    }
}
