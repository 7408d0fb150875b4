//! The bad-input corpus and the fuzzing strategies every function's reliability tests share.
//!
//! Each case is `(what is wrong, event)`. Every one must be answered with a clear 4xx-style error
//! that names the problem, with no AWS call made.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// One mebibyte of text.
pub fn one_mib(fill: char) -> String {
    std::iter::repeat_n(fill, 1024 * 1024).collect()
}

pub fn with(base: &Value, field: &str, value: Value) -> Value {
    let mut out = base.clone();
    out[field] = value;
    out
}

pub fn without(base: &Value, field: &str) -> Value {
    let mut out = base.clone();
    if let Some(fields) = out.as_object_mut() {
        fields.remove(field);
    }
    out
}

/// Malformed requests every lifecycle function (kill, wake, sleep) shares: the overrides.
pub fn bad_service_requests() -> Vec<(String, Value)> {
    let cases: Vec<(&str, Value)> = vec![
        ("an array instead of an object", json!([{"cluster_name": "c"}])),
        ("a number", json!(7)),
        ("a string", json!("wake up")),
        ("cluster_name of the wrong type", json!({"cluster_name": 5})),
        ("service_name of the wrong type", json!({"service_name": {"name": "svc"}})),
        ("an unknown field", json!({"cluster_name": "c", "replicas": 3})),
        ("an empty service_name", json!({"service_name": ""})),
        ("a 1 MB cluster_name", json!({"cluster_name": one_mib('c')})),
        ("a 1 MB unknown field name", Value::Object(Map::from_iter([(one_mib('k'), json!(1))]))),
        ("a newline in service_name", json!({"service_name": "svc\nother"})),
        ("control characters in cluster_name", json!({"cluster_name": "c\u{1b}[31m"})),
        ("a path in service_name", json!({"service_name": "../../etc/passwd"})),
    ];
    cases.into_iter().map(|(what, event)| (what.to_owned(), event)).collect()
}

/// Wraps request cases in every event source a lifecycle function accepts, and adds the
/// transport-level failures: a body that is not JSON, broken base64, a malformed EventBridge event.
pub fn in_every_source(requests: Vec<(String, Value)>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (what, request) in requests {
        out.push((format!("direct: {what}"), request.clone()));
        if request.is_object() {
            out.push((format!("EventBridge detail: {what}"), eventbridge(request.clone())));
        }
        out.push((format!("API Gateway body: {what}"), api_gateway(&request.to_string())));
        out.push((format!("Function URL body: {what}"), function_url(&request.to_string(), false)));
    }
    out.extend([
        ("API Gateway body: not JSON".to_owned(), api_gateway("{\"service_name\": ")),
        ("API Gateway body: form-encoded".to_owned(), api_gateway("service_name=svc")),
        ("Function URL body: not JSON".to_owned(), function_url("<xml/>", false)),
        ("Function URL body: broken base64".to_owned(), function_url("%%%not-base64%%%", true)),
        ("Function URL body: base64 of bytes that are not UTF-8".to_owned(), function_url("//79/A==", true)),
        (
            "EventBridge: detail-type of the wrong type".to_owned(),
            json!({"version": "0", "id": "x", "detail-type": 5, "source": "aws.events", "detail": {}}),
        ),
    ]);
    out
}

/// An EventBridge scheduled event carrying `detail`.
pub fn eventbridge(detail: Value) -> Value {
    json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-23T03:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/fluidity"], "detail": detail
    })
}

/// An API Gateway REST proxy event (POST /wake) with `body`.
pub fn api_gateway(body: &str) -> Value {
    json!({
        "resource": "/wake", "path": "/wake", "httpMethod": "POST", "headers": {"content-type": "application/json"},
        "multiValueHeaders": {}, "queryStringParameters": null, "multiValueQueryStringParameters": null,
        "pathParameters": null, "stageVariables": null,
        "requestContext": {"resourcePath": "/wake", "httpMethod": "POST", "path": "/prod/wake", "stage": "prod",
                           "requestId": "c6af9ac6", "identity": {"sourceIp": "203.0.113.9"}},
        "body": body, "isBase64Encoded": false
    })
}

/// A Function URL event with `body`.
pub fn function_url(body: &str, base64: bool) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
                           "domainPrefix": "abc", "requestId": "r-1", "routeKey": "$default", "stage": "$default",
                           "time": "23/Nov/2026:03:00:00 +0000", "timeEpoch": 1795402800000_u64,
                           "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9",
                                    "userAgent": "curl/8"}},
        "body": body, "isBase64Encoded": base64
    })
}

/// Any JSON value: the shapes, sizes and characters a hostile or broken caller could send.
pub fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::from),
        "[a-z_]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names: mostly the ones our requests and events use, so the fuzzer gets past the first check.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "action", "target", "incidentId", "priority", "incidentDetails", "title", "description", "dryRun",
            "mode", "keyPattern", "cluster_name", "service_name", "idle_threshold_mins", "lookback_period_mins",
            "dry_run", "detail-type", "source", "detail", "requestContext", "httpMethod", "http", "body",
            "isBase64Encoded",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// A valid request with one field replaced by anything, or removed, or one field added.
pub fn mutated(valid: Value) -> impl Strategy<Value = Value> {
    let fields: Vec<String> = valid.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    (prop::sample::select(fields), arbitrary_json(), 0..3u8, field_name()).prop_map(
        move |(field, value, how, extra)| {
            let mut out = valid.clone();
            if let Some(map) = out.as_object_mut() {
                match how {
                    0 => {
                        map.insert(field, value);
                    }
                    1 => {
                        map.remove(&field);
                    }
                    _ => {
                        map.insert(extra, value);
                    }
                }
            }
            out
        },
    )
}

/// How many fuzz cases each property runs: `FUZZ_CASES`, default 1000 (CI keeps the default).
pub fn fuzz_cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000)
}

/// Runs every case of a lifecycle function's corpus (see [`in_every_source`]) through `invoke`, checks
/// each answer ([`super::assert_lifecycle_rejected`]) and that none of them reached AWS.
pub async fn assert_lifecycle_corpus(
    proxy: &super::FaultProxy,
    cases: Vec<(String, Value)>,
    invoke: impl AsyncFn(Value) -> Result<Value, crate::FunctionError>,
) -> usize {
    for (what, payload) in &cases {
        super::assert_lifecycle_rejected(what, &invoke(payload.clone()).await);
    }
    assert_eq!(proxy.calls(), Vec::<String>::new(), "no AWS call for any bad event");
    cases.len()
}

pub fn fuzz_config() -> ProptestConfig {
    ProptestConfig { cases: fuzz_cases(), failure_persistence: None, ..ProptestConfig::default() }
}

/// Fuzzes a lifecycle function: any JSON, a broken `valid` request, and either of them in an
/// API Gateway or Function URL body. `invoke` must answer every input without panicking, and an
/// input refused as invalid must make no AWS call.
pub fn fuzz_lifecycle(
    proxy: &super::FaultProxy,
    valid: Value,
    invoke: impl Fn(Value) -> Result<Value, crate::FunctionError>,
) {
    let request = prop_oneof![arbitrary_json(), mutated(valid)];
    let inputs = (request, 0..4u8).prop_map(|(request, how)| match how {
        0 => api_gateway(&request.to_string()),
        1 => function_url(&request.to_string(), false),
        2 if request.is_object() => eventbridge(request),
        _ => request,
    });
    proptest!(fuzz_config(), |(payload in inputs)| {
        let calls_before = proxy.calls().len();
        let invalid = match invoke(payload) {
            Err(err) => err.code() == "INVALID_REQUEST",
            Ok(answer) => answer["statusCode"] == 400,
        };
        if invalid {
            prop_assert_eq!(proxy.calls().len(), calls_before);
        }
    });
}
