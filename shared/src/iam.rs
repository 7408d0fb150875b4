//! IAM declarations: every function declares the permission of each call it makes beside the code
//! that makes it (`<binary> --permissions` prints them; the deployment checks hold the roles to them).

use serde::Serialize;

/// One IAM permission: the action and the resource ARN. `${Partition}`, `${Region}` and
/// `${Account}` stand for the deployment's own (CloudFormation's pseudo parameters); the other
/// `${...}` of a declaration stand for the target config's fields or a stack parameter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Permission {
    pub action: &'static str,
    pub resource: String,
    /// A condition the grant must carry instead of a resource ARN (`ArnEquals`, key, value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

/// An IAM condition: `{"ArnEquals": {"ecs:cluster": "arn:..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Condition {
    pub operator: &'static str,
    pub key: &'static str,
    pub value: String,
}

impl Permission {
    pub fn new(action: &'static str, resource: impl Into<String>) -> Self {
        Self { action, resource: resource.into(), condition: None }
    }

    /// The same, granted only under a condition (e.g. `kms:ViaService`).
    pub fn when(mut self, operator: &'static str, key: &'static str, value: impl Into<String>) -> Self {
        self.condition = Some(Condition { operator, key, value: value.into() });
        self
    }

    /// An action AWS authorises only on `*` (no resource-level permissions).
    pub fn any(action: &'static str) -> Self {
        Self::new(action, "*")
    }

    /// An action authorised on `*` and scoped by a condition key, e.g. ECS ListTasks by `ecs:cluster`.
    pub fn any_where(action: &'static str, key: &'static str, value: impl Into<String>) -> Self {
        Self {
            action,
            resource: "*".to_owned(),
            condition: Some(Condition { operator: "ArnEquals", key, value: value.into() }),
        }
    }
}

/// `arn:${Partition}:<service>:${Region}:${Account}:<resource>`.
pub fn arn(service: &str, resource: &str) -> String {
    format!("arn:${{Partition}}:{service}:${{Region}}:${{Account}}:{resource}")
}
