//! Reading a page request leniently: a page is never dropped for a cosmetic problem.
//!
//! Only two things must hold: `action` is `notify_human`, and `incidentId` is a valid id (without
//! it the page could not be correlated or deduplicated). Everything else is made to fit and
//! reported as an [`Adjustment`]: a long title is cut with a visible marker (a long description is
//! cut to what SNS takes when the message is composed), control
//! characters are removed, a missing or unreadable priority pages as `high`, and fields nobody reads
//! are ignored.

use incident_core::action::Parsed;
use incident_core::contract::{
    ActionKind, ActionRequest, Adjustment, IncidentDetails, IncidentId, MAX_TITLE_CHARS, NoParams, Priority, TargetRef,
};
use serde_json::{Map, Value};
use shared::FunctionError;
use shared::events::kind_of;

/// The priority a page gets when the request's is missing or unreadable: someone is woken, but not
/// as for a critical incident.
pub const FALLBACK_PRIORITY: Priority = Priority::High;

/// The adjustment field that carries the priority note, which the page itself repeats.
pub const PRIORITY_FIELD: &str = "priority";

/// How notify_human reads its request (the driver's first step).
pub fn parse_page(payload: Value) -> Result<Parsed<NoParams>, FunctionError> {
    let Value::Object(mut fields) = payload else {
        return Err(FunctionError::invalid("(request)", format!("expected a JSON object, got {}", kind_of(&payload))));
    };
    read_action(fields.remove("action"))?;
    let incident_id = read_incident_id(fields.remove("incidentId"))?;
    let mut adjustments = Vec::new();
    let priority = read_priority(fields.remove("priority"), &mut adjustments);
    let dry_run = read_dry_run(fields.remove("dryRun"), &mut adjustments);
    let incident_details = read_details(fields.remove("incidentDetails"), &mut adjustments);
    let target = read_target(fields.remove("target"), &mut adjustments);
    for (name, _) in fields {
        let change = match name.as_str() {
            "mode" | "keyPattern" | "planToken" => "notify_human does not use it; ignored",
            _ => "unknown field; ignored",
        };
        adjustments.push(Adjustment::new(name, change));
    }
    let request = ActionRequest {
        action: ActionKind::NotifyHuman,
        target,
        incident_id,
        priority,
        incident_details,
        dry_run,
        plan_token: None,
        params: Map::new(),
    };
    Ok(Parsed { request, params: NoParams {}, adjustments })
}

/// The one action this function handles; anything else is refused, never paged.
fn read_action(value: Option<Value>) -> Result<(), FunctionError> {
    match value {
        Some(Value::String(action)) if action == ActionKind::NotifyHuman.as_str() => Ok(()),
        Some(Value::String(action)) => Err(FunctionError::invalid(
            "action",
            format!("this function handles \"notify_human\", not {:?}", shared::text::shown(&action)),
        )),
        Some(other) => {
            Err(FunctionError::invalid("action", format!("expected \"notify_human\", got {}", kind_of(&other))))
        }
        None => Err(FunctionError::invalid("action", "missing field `action`: expected \"notify_human\"")),
    }
}

/// The incident a page is about: without one, nobody could act on it.
fn read_incident_id(value: Option<Value>) -> Result<IncidentId, FunctionError> {
    match value {
        Some(Value::String(id)) => {
            IncidentId::try_from(id).map_err(|problem| FunctionError::invalid("incidentId", problem))
        }
        Some(other) => Err(FunctionError::invalid("incidentId", format!("expected a string, got {}", kind_of(&other)))),
        None => Err(FunctionError::invalid("incidentId", "missing field `incidentId`")),
    }
}

/// The target the incident is about, whose recent deployments the page names as the likely cause;
/// one that is not a target name is ignored, and the page goes out without it.
fn read_target(value: Option<Value>, adjustments: &mut Vec<Adjustment>) -> Option<TargetRef> {
    match value? {
        Value::Null => None,
        Value::String(name) => TargetRef::try_from(name.clone())
            .map_err(|problem| {
                adjustments
                    .push(Adjustment::new("target", format!("{}: {problem}; ignored", shown(&Value::from(name)))));
            })
            .ok(),
        other => {
            adjustments.push(Adjustment::new("target", format!("{} is not a target name; ignored", shown(&other))));
            None
        }
    }
}

/// A dryRun that is not a boolean pages for real (and says so): a page is never dropped.
fn read_dry_run(value: Option<Value>, adjustments: &mut Vec<Adjustment>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(dry_run)) => dry_run,
        Some(other) => {
            adjustments.push(Adjustment::new("dryRun", format!("{} is not true or false; paged", shown(&other))));
            false
        }
    }
}

fn read_priority(value: Option<Value>, adjustments: &mut Vec<Adjustment>) -> Priority {
    let fallback = FALLBACK_PRIORITY.as_str();
    let problem = match &value {
        Some(Value::String(text)) => {
            let wanted = text.trim().to_ascii_lowercase();
            if let Some(priority) = Priority::ALL.into_iter().find(|p| p.as_str() == wanted) {
                if wanted != *text {
                    adjustments.push(Adjustment::new(
                        PRIORITY_FIELD,
                        format!("{} read as {wanted}", shown(&Value::from(text.as_str()))),
                    ));
                }
                return priority;
            }
            format!(
                "{} is not one of low, medium, high, critical; paged as {fallback}",
                shown(&Value::from(text.as_str()))
            )
        }
        None | Some(Value::Null) => format!("missing; paged as {fallback}"),
        Some(other) => format!("{} is not one of low, medium, high, critical; paged as {fallback}", shown(other)),
    };
    adjustments.push(Adjustment::new(PRIORITY_FIELD, problem));
    FALLBACK_PRIORITY
}

fn read_details(value: Option<Value>, adjustments: &mut Vec<Adjustment>) -> Option<IncidentDetails> {
    let mut fields: Map<String, Value> = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Object(fields)) => fields,
        Some(Value::String(text)) => {
            adjustments.push(Adjustment::new("incidentDetails", "a string, not an object; used as the description"));
            Map::from_iter([("description".to_owned(), Value::String(text))])
        }
        Some(other) => {
            adjustments
                .push(Adjustment::new("incidentDetails", format!("{}, not an object; ignored", kind_of(&other))));
            return None;
        }
    };
    let title = text_field(fields.remove("title"), "incidentDetails.title", adjustments)
        .map(|t| clean_title(&t, adjustments))
        .filter(|t| !t.is_empty());
    let description = text_field(fields.remove("description"), "incidentDetails.description", adjustments)
        .map(|d| clean_description(&d, adjustments));
    for (name, _) in fields {
        adjustments.push(Adjustment::new(format!("incidentDetails.{name}"), "unknown field; ignored"));
    }
    Some(IncidentDetails { title, description, ignored: Default::default() })
}

/// A text field: a string as it is, a number or boolean as its text, anything else ignored.
fn text_field(value: Option<Value>, field: &str, adjustments: &mut Vec<Adjustment>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(text) => Some(text),
        scalar @ (Value::Number(_) | Value::Bool(_)) => {
            adjustments.push(Adjustment::new(field, format!("{} is not a string; used as text", kind_of(&scalar))));
            Some(scalar.to_string())
        }
        other => {
            adjustments.push(Adjustment::new(field, format!("{}, not a string; ignored", kind_of(&other))));
            None
        }
    }
}

/// One line: line breaks and tabs become spaces, other control characters go, runs of spaces fold,
/// and a title over [`MAX_TITLE_CHARS`] is cut, ending in `…`.
pub fn clean_title(title: &str, adjustments: &mut Vec<Adjustment>) -> String {
    let field = "incidentDetails.title";
    let spaced: String =
        title.chars().map(|c| if c.is_whitespace() { ' ' } else { c }).filter(|c| !c.is_control()).collect();
    let cleaned = spaced.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
    if title.chars().any(char::is_control) {
        adjustments.push(Adjustment::new(field, "control characters or line breaks removed"));
    }
    let count = cleaned.chars().count();
    if count <= MAX_TITLE_CHARS {
        return cleaned;
    }
    adjustments.push(Adjustment::new(field, format!("cut from {count} to {MAX_TITLE_CHARS} characters")));
    shared::text::truncate(&cleaned, MAX_TITLE_CHARS)
}

/// Line breaks (`\r\n` and `\r` as `\n`) and tabs stay, other control characters go. Its length
/// is left to the message, which cuts it to what SNS takes (see `compose`).
pub fn clean_description(description: &str, adjustments: &mut Vec<Adjustment>) -> String {
    let unified = description.replace("\r\n", "\n").replace('\r', "\n");
    let cleaned: String = unified.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect();
    if cleaned.len() != unified.len() {
        adjustments.push(Adjustment::new("incidentDetails.description", "control characters removed"));
    }
    cleaned
}

/// A value as a message may show it: short, whatever its size.
fn shown(value: &Value) -> String {
    shared::text::shown(&value.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn page(extra: Value) -> Value {
        let mut request = json!({"action": "notify_human", "incidentId": "INC-42", "priority": "critical"});
        request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        request
    }

    fn parsed(extra: Value) -> (ActionRequest, Vec<Adjustment>) {
        let parsed = parse_page(page(extra)).unwrap();
        (parsed.request, parsed.adjustments)
    }

    fn changes(adjustments: &[Adjustment]) -> Vec<String> {
        adjustments.iter().map(|a| format!("{}: {}", a.field, a.change)).collect()
    }

    #[test]
    fn a_clean_request_reads_as_it_is() {
        let (request, adjustments) =
            parsed(json!({"incidentDetails": {"title": "DB down", "description": "pool\n100/100"}}));
        assert_eq!(request.priority, Priority::Critical);
        let details = request.incident_details.unwrap();
        assert_eq!(
            (details.title.as_deref(), details.description.as_deref()),
            (Some("DB down"), Some("pool\n100/100"))
        );
        assert!(adjustments.is_empty(), "{adjustments:?}");
    }

    #[test]
    fn a_long_title_is_cut_with_a_marker_not_refused() {
        let (request, adjustments) = parsed(json!({"incidentDetails": {"title": "x".repeat(223)}}));
        let title = request.incident_details.unwrap().title.unwrap();
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
        assert!(title.ends_with('…'));
        assert_eq!(changes(&adjustments), ["incidentDetails.title: cut from 223 to 200 characters"]);
    }

    #[test]
    fn control_characters_are_removed_from_title_and_description() {
        let (request, adjustments) = parsed(
            json!({"incidentDetails": {"title": "API down\nSubject: spoofed\u{7}", "description": "a\u{0}b\r\nc\td"}}),
        );
        let details = request.incident_details.unwrap();
        assert_eq!(details.title.as_deref(), Some("API down Subject: spoofed"));
        assert_eq!(details.description.as_deref(), Some("ab\nc\td"));
        assert_eq!(
            changes(&adjustments),
            [
                "incidentDetails.title: control characters or line breaks removed",
                "incidentDetails.description: control characters removed"
            ]
        );
    }

    #[test]
    fn a_missing_or_unreadable_priority_pages_as_high_and_says_so() {
        for (priority, note) in [
            (None, "missing; paged as high"),
            (Some(json!("urgent")), "\"urgent\" is not one of low, medium, high, critical; paged as high"),
            (Some(json!(3)), "3 is not one of low, medium, high, critical; paged as high"),
        ] {
            let mut request = page(json!({}));
            match priority {
                Some(p) => request["priority"] = p,
                None => drop(request.as_object_mut().unwrap().remove("priority")),
            }
            let Parsed { request, adjustments, .. } = parse_page(request).unwrap();
            assert_eq!(request.priority, Priority::High);
            assert_eq!(changes(&adjustments), [format!("priority: {note}")]);
        }
        let (request, adjustments) = parsed(json!({"priority": " HIGH "}));
        assert_eq!(request.priority, Priority::High);
        assert_eq!(changes(&adjustments), ["priority: \" HIGH \" read as high"]);
    }

    #[test]
    fn fields_nobody_reads_are_ignored_and_named() {
        let (request, adjustments) = parsed(json!({
            "target": "api", "source": "pagerduty", "mode": "flush",
            "incidentDetails": {"title": "t", "ticketUrl": "https://x/1", "severity": {"level": 1}}
        }));
        assert_eq!(request.target.as_deref(), Some("api"), "the target names where to look for a cause");
        assert_eq!(
            changes(&adjustments),
            [
                "incidentDetails.severity: unknown field; ignored",
                "incidentDetails.ticketUrl: unknown field; ignored",
                "source: unknown field; ignored",
                "mode: notify_human does not use it; ignored"
            ]
        );
    }

    #[test]
    fn a_target_that_is_no_target_name_is_ignored_and_still_pages() {
        let (request, adjustments) = parsed(json!({"target": ["api"]}));
        assert_eq!(request.target, None);
        assert_eq!(changes(&adjustments), ["target: [\"api\"] is not a target name; ignored"]);
        let (request, adjustments) = parsed(json!({"target": "has space"}));
        assert_eq!(request.target, None);
        assert!(changes(&adjustments)[0].starts_with("target: \"has space\": "), "{adjustments:?}");
    }

    #[test]
    fn odd_shapes_still_page() {
        let (request, adjustments) = parsed(json!({"incidentDetails": "disk full on db-1", "dryRun": "yes"}));
        assert_eq!(request.incident_details.unwrap().description.as_deref(), Some("disk full on db-1"));
        assert!(!request.dry_run, "an unreadable dryRun pages");
        assert_eq!(adjustments.len(), 2, "{adjustments:?}");
        let (request, _) = parsed(json!({"incidentDetails": {"title": 404, "description": ["a"]}}));
        assert_eq!(request.incident_details.unwrap().title.as_deref(), Some("404"));
    }

    #[test]
    fn only_the_action_and_the_incident_id_can_refuse_a_page() {
        let refused = |payload: Value| parse_page(payload).unwrap_err();
        assert!(refused(json!({"incidentId": "INC-1"})).to_string().contains("`action`"));
        assert!(refused(json!({"action": "scale_up", "incidentId": "INC-1"})).to_string().contains("not \"scale_up\""));
        assert!(refused(json!({"action": "notify_human"})).to_string().contains("`incidentId`"));
        assert!(refused(json!({"action": "notify_human", "incidentId": "a b"})).to_string().contains("`incidentId`"));
        assert!(refused(json!({"action": "notify_human", "incidentId": 7})).to_string().contains("`incidentId`"));
        assert!(refused(json!([1])).to_string().contains("expected a JSON object"));
    }

    #[test]
    fn a_huge_unknown_field_name_is_named_briefly() {
        let mut fields = Map::new();
        fields.insert("k".repeat(1_000_000), json!(1));
        let (_, adjustments) = parsed(Value::Object(fields));
        assert!(adjustments[0].field.chars().count() <= 81);
    }
}
