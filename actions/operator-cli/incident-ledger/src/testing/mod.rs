//! Test helpers (the `test-util` feature, dev-dependencies only): the ledger's table in the
//! emulator, made as the actions stack makes it, a guard on it, and what scale_up changes.

pub mod scaling;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};

use std::sync::Arc;

use incident_core::guard::{Guard, GuardSettings};

use crate::DynamoLedger;

/// A new table (pk and sk strings, on demand, TTL on `expiresAt`), made with the tests' own client;
/// returns its name.
pub async fn create_table(config: &SdkConfig) -> String {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let name = shared::testing::unique("ledger");
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("key");
    dynamodb
        .create_table()
        .table_name(&name)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("CreateTable");
    let ttl = TimeToLiveSpecification::builder().attribute_name("expiresAt").enabled(true).build().expect("ttl");
    dynamodb.update_time_to_live().table_name(&name).time_to_live_specification(ttl).send().await.expect("TTL");
    name
}

/// A ledger on a new table: the function's client from `function`.
pub async fn ledger(setup: &SdkConfig, function: &SdkConfig) -> DynamoLedger {
    DynamoLedger { dynamodb: crate::client(function), table: create_table(setup).await }
}

/// A guard with these settings on a new table (the function's calls through `function`); returns
/// the ledger too, for the test's own reads.
pub async fn guard(setup: &SdkConfig, function: &SdkConfig, settings: GuardSettings) -> (Guard, DynamoLedger) {
    let ledger = ledger(setup, function).await;
    (Guard::new(Some(Arc::new(ledger.clone())), settings), ledger)
}

/// What a crashed invocation leaves behind: the request's key in progress until `until_ms` (epoch ms).
pub async fn leave_in_progress(setup: &SdkConfig, table: &str, key: &str, request_id: &str, until_ms: i64) {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let expires = chrono::Utc::now().timestamp() + 3600;
    let item = std::collections::HashMap::from([
        ("pk".to_owned(), S(format!("IDEMPOTENCY#{key}"))),
        ("sk".to_owned(), S("IDEMPOTENCY".into())),
        ("status".to_owned(), S("INPROGRESS".into())),
        ("inProgressUntil".to_owned(), N(until_ms.to_string())),
        ("expiresAt".to_owned(), N(expires.to_string())),
        ("requestId".to_owned(), S(request_id.into())),
    ]);
    let dynamodb = aws_sdk_dynamodb::Client::new(setup);
    dynamodb.put_item().table_name(table).set_item(Some(item)).send().await.expect("PutItem");
}

/// The status of every idempotency key of `incident` (`INPROGRESS`, `APPLYING`, `COMPLETED`), as a
/// user looking into the table would read them.
pub async fn key_statuses(setup: &SdkConfig, table: &str, incident: &str) -> Vec<String> {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let dynamodb = aws_sdk_dynamodb::Client::new(setup);
    let scan = dynamodb
        .scan()
        .table_name(table)
        .filter_expression("begins_with(pk, :key) AND incidentId = :incident")
        .expression_attribute_values(":key", S("IDEMPOTENCY#".into()))
        .expression_attribute_values(":incident", S(incident.into()));
    let items = scan.send().await.expect("Scan").items.unwrap_or_default();
    items.iter().filter_map(|item| item.get("status").and_then(|s| s.as_s().ok()).cloned()).collect()
}

/// How many mutations the budget counters whose key starts with `pk` hold (every window), e.g.
/// `BUDGET#fleet`.
pub async fn spent(setup: &SdkConfig, table: &str, pk: &str) -> i64 {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let dynamodb = aws_sdk_dynamodb::Client::new(setup);
    let scan = dynamodb
        .scan()
        .table_name(table)
        .filter_expression("begins_with(pk, :pk)")
        .expression_attribute_values(":pk", S(pk.into()));
    let items = scan.send().await.expect("Scan").items.unwrap_or_default();
    items.iter().map(|item| crate::items::number(item, "count")).sum()
}
