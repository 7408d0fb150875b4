//! Proof that a dry run is exact: the mutating calls a real run sent, as the services received
//! them (through a [`FaultProxy`] in front of the emulator), equal the dry run's `plannedCalls`.
//!
//! Both sides are brought to one form before they are compared: `ECS UpdateService` and the
//! parameters as flat `path = value` pairs, member names lowercased (a plan names members in
//! camelCase, the wire in the protocol's casing), lists numbered from 1 as the query protocols
//! number them. Each protocol's own wrapping is undone:
//! - JSON bodies (ECS, Application Auto Scaling, SSM) are flattened as they are;
//! - query forms (RDS, ElastiCache, SNS) drop `Action` and `Version`, a list's `member` (or its
//!   entries' own name: ElastiCache's `CacheNodeIdsToReboot.CacheNodeId.1`), and turn a map's
//!   `entry.N.Name` / `entry.N.Value` into the entry's key;
//! - EC2's query form names a list's entries by the member's singular (`InstanceId.1` for `InstanceIds`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::FaultProxy;
use super::fault_proxy::Received;

/// A call in the compared form: `"ECS UpdateService"` and its flattened parameters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub call: String,
    pub params: BTreeMap<String, String>,
}

/// The AWS calls of a dry run's answer (`details.plannedCalls`); Redis commands are not AWS calls
/// and are checked against Redis itself.
pub fn planned(dry_run_answer: &Value) -> Vec<Call> {
    let planned = dry_run_answer["details"]["plannedCalls"].as_array().cloned().unwrap_or_default();
    planned
        .iter()
        .filter_map(|call| {
            let name = call["call"].as_str()?;
            let mut params = BTreeMap::new();
            flatten_json("", &call["params"], &mut params);
            (!name.starts_with("Redis ")).then(|| Call { call: name.to_owned(), params })
        })
        .collect()
}

/// The mutating calls (every operation but `Describe*`, `Get*`, `List*`) that reached `proxy`, in order.
/// DynamoDB is the incident ledger's: its bookkeeping (idempotency keys, records, budgets, the
/// restart claim) guards the changes and is no change of a resource, so it is never a planned call.
pub fn sent(proxy: &FaultProxy) -> Vec<Call> {
    let planned_kind = |r: &&Received| !is_read(&r.operation) && r.service != "dynamodb";
    proxy.requests().iter().filter(planned_kind).map(received_call).collect()
}

/// Fails, showing both, unless `proxy` saw exactly the planned calls of `dry_run_answer`, in order.
pub fn assert_exact(what: &str, dry_run_answer: &Value, proxy: &FaultProxy) {
    let (planned, sent) = (planned(dry_run_answer), sent(proxy));
    assert!(!planned.is_empty(), "{what}: the dry run planned no AWS call: {dry_run_answer}");
    assert_eq!(sent, planned, "{what}: the real run sent (left) other calls than the dry run planned (right)");
}

fn is_read(operation: &str) -> bool {
    ["Describe", "Get", "List", "BatchGet"].iter().any(|read| operation.starts_with(read))
}

fn received_call(received: &Received) -> Call {
    let service = match received.service.as_str() {
        "ecs" => "ECS",
        "application-autoscaling" => "ApplicationAutoScaling",
        "rds" => "RDS",
        "elasticache" => "ElastiCache",
        "ec2" => "EC2",
        "sns" => "SNS",
        "ssm" => "SSM",
        "dynamodb" => "DynamoDB",
        other => other,
    };
    let mut params = BTreeMap::new();
    if received.body.first() == Some(&b'{') {
        let body: Value = serde_json::from_slice(&received.body).unwrap_or(Value::Null);
        flatten_json("", &body, &mut params);
    } else {
        flatten_query(&super::query_params(&received.body), received.service == "ec2", &mut params);
    }
    Call { call: format!("{service} {}", received.operation), params }
}

fn flatten_json(path: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    let join = |key: &str| if path.is_empty() { key.to_lowercase() } else { format!("{path}.{}", key.to_lowercase()) };
    match value {
        Value::Null => {}
        Value::Object(members) => members.iter().for_each(|(k, v)| flatten_json(&join(k), v, out)),
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, v)| flatten_json(&join(&(i + 1).to_string()), v, out))
        }
        Value::String(text) => drop(out.insert(path.to_owned(), text.clone())),
        other => drop(out.insert(path.to_owned(), other.to_string())),
    }
}

fn flatten_query(form: &BTreeMap<String, String>, ec2: bool, out: &mut BTreeMap<String, String>) {
    // A map entry `P.entry.N.Name = key` names the entry whose values are `P.entry.N.Value[.x]`.
    let entry_names: BTreeMap<String, &String> = form
        .iter()
        .filter_map(|(k, v)| k.strip_suffix(".Name").filter(|p| p.contains(".entry.")).map(|p| (p.to_owned(), v)))
        .collect();
    for (key, value) in form {
        if key == "Action" || key == "Version" || entry_names.contains_key(key.trim_end_matches(".Name")) {
            continue;
        }
        let mut segments: Vec<String> = Vec::new();
        let parts: Vec<&str> = key.split('.').collect();
        let mut i = 0;
        while i < parts.len() {
            let part = parts[i];
            let next_is_index = parts.get(i + 1).is_some_and(|p| p.parse::<u32>().is_ok());
            if part == "entry" && next_is_index {
                let entry = format!("{}.entry.{}", parts[..i].join("."), parts[i + 1]);
                segments.push(entry_names.get(&entry).map_or_else(String::new, |name| name.to_lowercase()));
                i += 3; // entry, N, Value
                continue;
            }
            let is_member_name = i > 0 && next_is_index && parts[i - 1].parse::<u32>().is_err();
            if part == "member" || is_member_name {
                i += 1;
                continue;
            }
            let plural = ec2 && next_is_index;
            segments.push(if plural { format!("{}s", part.to_lowercase()) } else { part.to_lowercase() });
            i += 1;
        }
        out.insert(segments.join("."), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn flat(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn query(body: &str, ec2: bool) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        flatten_query(&super::super::query_params(body.as_bytes()), ec2, &mut out);
        out
    }

    #[test]
    fn each_protocol_comes_to_the_plan_form() {
        let mut planned = BTreeMap::new();
        flatten_json("", &json!({"dbInstanceIdentifier": "db", "applyImmediately": true, "n": 2}), &mut planned);
        assert_eq!(planned, flat(&[("dbinstanceidentifier", "db"), ("applyimmediately", "true"), ("n", "2")]));
        let rds = "Action=ModifyDBInstance&Version=2014-10-31&DBInstanceIdentifier=db&ApplyImmediately=true&N=2";
        assert_eq!(query(rds, false), planned);
        assert_eq!(query("Action=RebootInstances&InstanceId.1=i-1&InstanceId.2=i-2", true), {
            let mut out = BTreeMap::new();
            flatten_json("", &json!({"instanceIds": ["i-1", "i-2"]}), &mut out);
            out
        });
        assert_eq!(
            query("CacheClusterId=c&CacheNodeIdsToReboot.CacheNodeId.1=0001", false),
            flat(&[("cacheclusterid", "c"), ("cachenodeidstoreboot.1", "0001")])
        );
        assert_eq!(
            query("Subnets.member.1=a&Subnets.member.2=b", false),
            flat(&[("subnets.1", "a"), ("subnets.2", "b")])
        );
        let sns = "MessageAttributes.entry.1.Name=priority&MessageAttributes.entry.1.Value.DataType=String\
                   &MessageAttributes.entry.1.Value.StringValue=high";
        assert_eq!(
            query(sns, false),
            flat(&[
                ("messageattributes.priority.datatype", "String"),
                ("messageattributes.priority.stringvalue", "high")
            ])
        );
    }

    #[test]
    fn redis_commands_are_not_planned_aws_calls() {
        let answer = json!({"details": {"plannedCalls": [
            {"call": "Redis FLUSHALL", "params": {"args": ["ASYNC"]}},
            {"call": "ECS UpdateService", "params": {"cluster": "c", "desiredCount": 3}},
        ]}});
        let expected =
            Call { call: "ECS UpdateService".into(), params: flat(&[("cluster", "c"), ("desiredcount", "3")]) };
        assert_eq!(planned(&answer), [expected]);
    }
}
