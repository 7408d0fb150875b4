//! The cleanup of a retired service, on a later run: listener rules (a rule that also forwards
//! elsewhere loses only this target group), target groups no rule still uses, SSM parameters, and
//! DeleteService after one more look at the tag. "Not found" counts as done at every step.

use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ForwardActionConfig, Rule, TargetGroupTuple};
use fluidity_names::service::{self as deployment, DRAINING};
use shared::FunctionError;

use crate::discover::{Draining, current_states};
use crate::{DELETE_PARAMETERS_BATCH, Deps};

/// How a cleanup ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cleanup {
    Done(String),
    /// A target group something else still uses: the service stays, and the next run tries again.
    Held(String),
    /// The state tag changed before DeleteService.
    Skipped(Option<String>),
}

/// One change to a listener rule that forwards to a draining service's target group.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleChange {
    /// The rule forwards only to the draining target groups.
    Delete { rule_arn: String },
    /// The rule also forwards elsewhere (weighted blue/green): only the draining target groups go.
    Modify { rule_arn: String, actions: Vec<Action> },
}

/// The changes to the listener's rules that free `target_groups`, or, when the listener's default
/// action forwards to one of them, the reason nothing can be freed (a default action cannot be deleted).
pub fn plan_rule_changes(rules: &[Rule], target_groups: &[String]) -> Result<Vec<RuleChange>, String> {
    let ours = |arn: &str| target_groups.iter().any(|t| t == arn);
    let mut changes = Vec::new();
    for rule in rules {
        let forwarded: Vec<&str> = rule.actions().iter().flat_map(forward_targets).collect();
        if !forwarded.iter().any(|tg| ours(tg)) {
            continue;
        }
        let rule_arn = rule.rule_arn().unwrap_or_default().to_owned();
        if rule.is_default().unwrap_or(false) {
            let held: Vec<&str> = forwarded.into_iter().filter(|tg| ours(tg)).collect();
            return Err(format!(
                "target group {} is the listener's default action ({rule_arn}); change the default action \
                 and the cleanup resumes on the next run",
                held.join(", ")
            ));
        }
        let mut emptied = false;
        let actions: Vec<Action> = rule
            .actions()
            .iter()
            .map(|action| {
                let targets = forward_targets(action);
                if !targets.iter().any(|tg| ours(tg)) {
                    return action.clone();
                }
                let kept: Vec<TargetGroupTuple> = forward_tuples(action)
                    .into_iter()
                    .filter(|t| !ours(t.target_group_arn().unwrap_or_default()))
                    .collect();
                emptied |= kept.is_empty();
                let stickiness = action.forward_config().and_then(|f| f.target_group_stickiness_config()).cloned();
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .set_order(action.order())
                    .forward_config(
                        ForwardActionConfig::builder()
                            .set_target_groups(Some(kept))
                            .set_target_group_stickiness_config(stickiness)
                            .build(),
                    )
                    .build()
            })
            .collect();
        changes.push(if emptied { RuleChange::Delete { rule_arn } } else { RuleChange::Modify { rule_arn, actions } });
    }
    Ok(changes)
}

/// The target groups a forward action sends to (through `TargetGroupArn` or its forward config).
pub(crate) fn forward_targets(action: &Action) -> Vec<&str> {
    if action.r#type() != Some(&ActionTypeEnum::Forward) {
        return Vec::new();
    }
    let mut targets: Vec<&str> = action
        .forward_config()
        .map(|f| f.target_groups().iter().filter_map(TargetGroupTuple::target_group_arn).collect())
        .unwrap_or_default();
    if let Some(tg) = action.target_group_arn()
        && !targets.contains(&tg)
    {
        targets.push(tg);
    }
    targets
}

/// The weighted target groups of a forward action; a plain `TargetGroupArn` is one of weight 1.
pub(crate) fn forward_tuples(action: &Action) -> Vec<TargetGroupTuple> {
    match action.forward_config().map(ForwardActionConfig::target_groups).filter(|t| !t.is_empty()) {
        Some(tuples) => tuples.to_vec(),
        None => action
            .target_group_arn()
            .map(|tg| TargetGroupTuple::builder().target_group_arn(tg).build())
            .into_iter()
            .collect(),
    }
}

/// Listener rules → target groups → SSM parameters → the service; "not found" is done at every step.
pub(crate) async fn clean_up(deps: &Deps, d: &Draining, dry_run: bool) -> Result<Cleanup, FunctionError> {
    let changes = match &deps.settings.listener_arn {
        Some(listener) if !d.target_groups.is_empty() => {
            match plan_rule_changes(&listener_rules(deps, listener).await?, &d.target_groups) {
                Ok(changes) => changes,
                Err(held) => return Ok(Cleanup::Held(held)),
            }
        }
        _ => Vec::new(),
    };
    let path = deployment::parameter_path(&d.deployment_name, &d.deployment_id);
    let parameters = parameters_under(deps, &path).await?;
    let (deleted, modified) = changes.iter().fold((0, 0), |(del, m), c| match c {
        RuleChange::Delete { .. } => (del + 1, m),
        RuleChange::Modify { .. } => (del, m + 1),
    });
    let summary = format!(
        "{deleted} listener rule(s), {} target group(s), {} parameter(s), the service{}",
        d.target_groups.len(),
        parameters.len(),
        if modified > 0 { format!("; {modified} shared rule(s) now forward only elsewhere") } else { String::new() }
    );
    if dry_run {
        return Ok(Cleanup::Done(format!("would delete {summary}")));
    }
    for change in &changes {
        apply_rule_change(deps, change).await?;
    }
    for tg in &d.target_groups {
        match deps.elb.delete_target_group().target_group_arn(tg).send().await {
            Ok(_) => {}
            Err(err) if err.as_service_error().and_then(|e| e.meta().code()) == Some("TargetGroupNotFound") => {}
            Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {
                let why = err.as_service_error().and_then(|e| e.meta().message()).unwrap_or("in use").to_owned();
                return Ok(Cleanup::Held(format!(
                    "target group {tg} is still in use ({why}); the cleanup resumes once nothing forwards to it"
                )));
            }
            Err(err) => return Err(FunctionError::aws("ELBv2 DeleteTargetGroup", &err)),
        }
    }
    for names in parameters.chunks(DELETE_PARAMETERS_BATCH) {
        deps.ssm
            .delete_parameters()
            .set_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|err| FunctionError::aws("SSM DeleteParameters", &err))?;
    }
    // The last, irreversible step: one more look at the tag, in case of a rollback.
    let state = current_states(deps, &[&d.service]).await?.remove(&d.service);
    if state.as_deref() != Some(DRAINING) {
        return Ok(Cleanup::Skipped(state));
    }
    match deps.ecs.delete_service().cluster(&deps.settings.cluster).service(&d.service).force(true).send().await {
        Ok(_) => {}
        Err(err) if err.as_service_error().is_some_and(|e| e.is_service_not_found_exception()) => {}
        Err(err) => return Err(FunctionError::aws("ECS DeleteService", &err)),
    }
    Ok(Cleanup::Done(format!("deleted {summary}")))
}

pub(crate) async fn apply_rule_change(deps: &Deps, change: &RuleChange) -> Result<(), FunctionError> {
    let result = match change {
        RuleChange::Delete { rule_arn } => {
            deps.elb.delete_rule().rule_arn(rule_arn).send().await.map(drop).map_err(|err| {
                if err.as_service_error().is_some_and(|e| e.is_rule_not_found_exception()) {
                    None
                } else {
                    Some(FunctionError::aws("ELBv2 DeleteRule", &err))
                }
            })
        }
        RuleChange::Modify { rule_arn, actions } => {
            deps.elb.modify_rule().rule_arn(rule_arn).set_actions(Some(actions.clone())).send().await.map(drop).map_err(
                |err| {
                    if err.as_service_error().is_some_and(|e| e.is_rule_not_found_exception()) {
                        None
                    } else {
                        Some(FunctionError::aws("ELBv2 ModifyRule", &err))
                    }
                },
            )
        }
    };
    match result {
        Ok(()) | Err(None) => Ok(()),
        Err(Some(err)) => Err(err),
    }
}

/// Every rule of the listener, its default rule included (DescribeRules, every page).
pub(crate) async fn listener_rules(deps: &Deps, listener: &str) -> Result<Vec<Rule>, FunctionError> {
    let mut rules = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = deps
            .elb
            .describe_rules()
            .listener_arn(listener)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|err| FunctionError::aws("ELBv2 DescribeRules", &err))?;
        rules.extend(out.rules().iter().cloned());
        marker = out.next_marker().map(str::to_owned);
        if marker.is_none() {
            return Ok(rules);
        }
    }
}

pub(crate) async fn parameters_under(deps: &Deps, path: &str) -> Result<Vec<String>, FunctionError> {
    let mut pages = deps.ssm.get_parameters_by_path().path(path).recursive(true).into_paginator().send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| FunctionError::aws("SSM GetParametersByPath", &err))?;
        names.extend(page.parameters().iter().filter_map(|p| p.name().map(str::to_owned)));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(tgs: &[(&str, i32)]) -> Action {
        let tuples = tgs.iter().map(|(tg, w)| TargetGroupTuple::builder().target_group_arn(*tg).weight(*w).build());
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .order(1)
            .forward_config(ForwardActionConfig::builder().set_target_groups(Some(tuples.collect())).build())
            .build()
    }

    fn rule(arn: &str, default: bool, actions: Vec<Action>) -> Rule {
        Rule::builder().rule_arn(arn).is_default(default).set_actions(Some(actions)).build()
    }

    #[test]
    fn a_rule_only_to_the_draining_group_is_deleted_and_a_shared_one_keeps_the_other_group() {
        let fixed = Action::builder().r#type(ActionTypeEnum::FixedResponse).build();
        let plain = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn("tg-a").build();
        let rules = [
            rule("r-only-a", false, vec![plain]),
            rule("r-a-and-b", false, vec![forward(&[("tg-a", 90), ("tg-b", 10)])]),
            rule("r-only-b", false, vec![forward(&[("tg-b", 1)])]),
            rule("default", true, vec![fixed]),
        ];
        let changes = plan_rule_changes(&rules, &["tg-a".to_owned()]).unwrap();
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0], RuleChange::Delete { rule_arn: "r-only-a".into() });
        let RuleChange::Modify { rule_arn, actions } = &changes[1] else { panic!("{changes:?}") };
        assert_eq!(rule_arn, "r-a-and-b");
        let kept = actions[0].forward_config().unwrap().target_groups();
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].target_group_arn(), kept[0].weight()), (Some("tg-b"), Some(10)));
        assert_eq!(actions[0].order(), Some(1));
    }

    #[test]
    fn a_default_action_to_the_draining_group_holds_it() {
        let rules = [rule("default", true, vec![forward(&[("tg-a", 1)])])];
        let held = plan_rule_changes(&rules, &["tg-a".to_owned()]).unwrap_err();
        assert!(held.contains("tg-a is the listener's default action"), "{held}");
    }
}
