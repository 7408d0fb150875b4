//! `incident-notify-human`: pages the on-call engineers through SNS, and never drops a page for a
//! cosmetic problem in the request (see [`page`]).
//!
//! One Publish with `MessageStructure=json` carries a form per protocol: `sms` is one SMS (priority,
//! incident id and title in at most 160 GSM-7 characters, see [`sms`]); `email` and `default` (SQS,
//! HTTP, Lambda subscribers) are the full message, which reads well as email and is cut to what SNS
//! takes. The subject is valid for SNS (ASCII, one line, under 100 characters). Message attributes
//! `priority`, `incidentId` and `action` let subscriptions filter (e.g. SMS only for critical). On a
//! FIFO topic the incident id is the message group and the deduplication id is derived from the
//! request, so a retried invocation does not page twice.

pub mod cause;
pub mod compose;
pub mod page;
pub mod sms;

use aws_sdk_sns::types::MessageAttributeValue;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use incident_core::action::{Action, Applied, Failure, Invocation, Parsed, View};
use incident_core::contract::{ActionKind, ActionRequest, ActionResponse, Adjustment, NoParams};
use incident_core::driver::Function;
use incident_core::plan::{Change, Plan};
use incident_core::state::State;
use serde::Serialize;
use shared::iam::Permission;
use shared::settings::Settings;
use shared::{ConfigError, FunctionError};

pub use compose::{Context, MAX_MESSAGE_BYTES, MAX_SUBJECT_CHARS, Notification, compose, sns_subject};

/// notify_human's client and topic, built once per cold start in `main`.
pub struct NotifyHuman {
    pub sns: aws_sdk_sns::Client,
    /// `SNS_TOPIC_ARN`.
    pub topic_arn: String,
    /// With a target map (`TARGETS_JSON` or `TARGETS_FILE`): the page names the likely cause.
    pub causes: Option<cause::Causes>,
}

/// `SNS_TOPIC_ARN`, required, an SNS topic ARN.
pub fn topic_from_env() -> Result<String, ConfigError> {
    let settings = Settings::from_env();
    settings.parsed("SNS_TOPIC_ARN", valid_topic_arn)?.ok_or(ConfigError::MissingEnv("SNS_TOPIC_ARN"))
}

fn valid_topic_arn(arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[5].is_empty() {
        Ok(arn.to_owned())
    } else {
        Err(format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)"))
    }
}

/// The function as `main` builds it: the action and its guard.
pub type Deps = Function<NotifyHuman>;

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<ActionResponse, FunctionError> {
    deps.handle(event).await
}

impl Action for NotifyHuman {
    const KIND: ActionKind = ActionKind::NotifyHuman;
    const MUTATES: bool = false;
    const READS_HISTORY: bool = true;
    type Params = NoParams;
    /// The likely cause, when the page names an ECS service of the map.
    type Observed = Option<String>;
    type Change = Publish;
    type Details = PageDetails;

    fn parse(payload: Value) -> Result<Parsed<NoParams>, FunctionError> {
        page::parse_page(payload)
    }

    /// A page with other words is another page: a follow-up ("restart did not help") is delivered.
    fn identity(parsed: &Parsed<NoParams>) -> Value {
        let details = parsed.request.incident_details.clone().unwrap_or_default();
        json!({"title": details.title, "description": details.description})
    }

    async fn observe(
        &self,
        call: &Invocation<'_, NoParams>,
        _view: View,
    ) -> Result<Option<String>, Failure<PageDetails>> {
        let Some(causes) = &self.causes else { return Ok(None) };
        Ok(causes.likely(call.request.target.as_deref(), call.now).await)
    }

    fn plan(
        &self,
        call: &Invocation<'_, NoParams>,
        cause: &Option<String>,
    ) -> Result<Plan<Publish, PageDetails>, FunctionError> {
        let context = Context { cause: cause.as_deref(), ..Context::at(call.now, call.history) };
        Ok(plan(call.request, call.adjustments, &self.topic_arn, context))
    }

    async fn apply(
        &self,
        _call: &Invocation<'_, NoParams>,
        plan: &Plan<Publish, PageDetails>,
        _cause: Option<String>,
    ) -> Result<Applied<PageDetails>, Failure<PageDetails>> {
        let mut details = plan.details.clone();
        if let Some(publish) = plan.changes.first() {
            let (message_id, sequence) = send(publish, &self.sns).await?;
            (details.message_id, details.sequence_number) = (Some(message_id), sequence);
        }
        let after = State::Page { message_id: details.message_id.clone() };
        Ok(Applied { message: plan.done.clone(), after, details })
    }
}

/// What notify_human's answer says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageDetails {
    pub topic_arn: String,
    pub subject: String,
    pub sms: String,
    /// What composing had to cut.
    pub adjustments: Vec<Adjustment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
}

/// The one change notify_human makes: SNS Publish. Serialised, it is the call's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Publish {
    pub topic_arn: String,
    pub subject: String,
    pub message_structure: &'static str,
    /// The forms per protocol, as JSON (see [`Notification::structured`]).
    pub message: String,
    pub message_attributes: BTreeMap<&'static str, StringAttribute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_deduplication_id: Option<String>,
}

/// An SNS message attribute of type String, as the API has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StringAttribute {
    pub data_type: &'static str,
    pub string_value: String,
}

impl Change for Publish {
    fn call(&self) -> &'static str {
        "SNS Publish"
    }

    fn permission(&self) -> Option<Permission> {
        Some(publish_permission(&self.topic_arn))
    }
}

fn publish_permission(topic_arn: &str) -> Permission {
    Permission::new("sns:Publish", topic_arn)
}

/// notify_human's permissions: the page, the likely cause's describes, and the ledger's (its
/// history, and the page's record).
pub fn permissions() -> Vec<Permission> {
    let mut declared = vec![publish_permission("${SNS_TOPIC_ARN}")];
    declared.extend(cause::permissions());
    declared.extend(incident_ledger::permissions(incident_ledger::Use::Page));
    declared
}

/// The page as a plan of one Publish; the priority note, if any, is said in the page itself.
pub fn plan(
    request: &ActionRequest,
    adjustments: &[Adjustment],
    topic_arn: &str,
    context: Context<'_>,
) -> Plan<Publish, PageDetails> {
    let priority_note = adjustments.iter().find(|a| a.field == page::PRIORITY_FIELD).map(|a| a.change.as_str());
    let note = compose(request, topic_arn, &Context { priority_note, ..context });
    let (resource, (group, dedup)) = (format!("SNS topic {topic_arn}"), note.fifo.clone().unzip());
    let publish = Publish {
        topic_arn: topic_arn.to_owned(),
        subject: note.subject.clone(),
        message_structure: "json",
        message: note.structured(),
        message_attributes: note
            .attributes
            .iter()
            .map(|(k, v)| (*k, StringAttribute { data_type: "String", string_value: v.clone() }))
            .collect(),
        message_group_id: group,
        message_deduplication_id: dedup,
    };
    Plan {
        intent: format!("page on-call through {resource}"),
        done: "Notification sent successfully".to_owned(),
        no_change: String::new(),
        before: State::Page { message_id: None },
        after: State::Page { message_id: None },
        details: PageDetails {
            topic_arn: topic_arn.to_owned(),
            subject: note.subject,
            sms: note.sms,
            adjustments: note.adjustments,
            message_id: None,
            sequence_number: None,
        },
        changes: vec![publish],
        resource,
    }
}

/// The Publish call, from exactly the values the dry run reported.
async fn send(publish: &Publish, sns: &aws_sdk_sns::Client) -> Result<(String, Option<String>), FunctionError> {
    let mut call = sns
        .publish()
        .topic_arn(&publish.topic_arn)
        .subject(&publish.subject)
        .message_structure(publish.message_structure)
        .message(&publish.message)
        .set_message_group_id(publish.message_group_id.clone())
        .set_message_deduplication_id(publish.message_deduplication_id.clone());
    for (name, value) in &publish.message_attributes {
        let attribute = MessageAttributeValue::builder()
            .data_type(value.data_type)
            .string_value(&value.string_value)
            .build()
            .map_err(|e| FunctionError::invalid(*name, e.to_string()))?;
        call = call.message_attributes(*name, attribute);
    }
    let out = call.send().await.map_err(|err| match err.as_service_error() {
        Some(e) if e.is_not_found_exception() => {
            FunctionError::ResourceNotFound { kind: "SNS topic", id: publish.topic_arn.clone() }
        }
        _ => FunctionError::aws("SNS Publish", &err),
    })?;
    Ok((out.message_id().unwrap_or_default().to_owned(), out.sequence_number().map(str::to_owned)))
}
