#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The DynamoDB ledger's answers that moto never gives, on the real client with aws-smithy-mocks.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use incident_core::budget::{Budgets, counters};
use incident_core::ledger::Ledger;
use incident_ledger::DynamoLedger;

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk.into())), ("sk".to_owned(), AttributeValue::S(sk.into()))])
}

/// BatchGetItem may answer part of a read and return the rest as UnprocessedKeys (throughput, size);
/// moto always answers in full. The pause comes back unprocessed at first: it is read again, and
/// the pause is not missed.
#[tokio::test]
async fn unprocessed_keys_are_read_again_and_a_pause_is_never_missed() {
    let table = "ledger";
    let first = mock!(aws_sdk_dynamodb::Client::batch_get_item).then_output(move || {
        let unprocessed = KeysAndAttributes::builder().keys(key("PAUSE", "GLOBAL")).build().unwrap();
        BatchGetItemOutput::builder().responses(table, vec![]).unprocessed_keys(table, unprocessed).build()
    });
    let second = mock!(aws_sdk_dynamodb::Client::batch_get_item)
        .match_requests(|r| {
            let keys = r.request_items().and_then(|items| items.get("ledger")).map(|k| k.keys().to_vec());
            keys.is_some_and(|keys| keys.len() == 1 && keys[0].get("pk") == Some(&AttributeValue::S("PAUSE".into())))
        })
        .then_output(move || {
            let mut pause = key("PAUSE", "GLOBAL");
            pause.insert("by".into(), AttributeValue::S("alice".into()));
            pause.insert("reason".into(), AttributeValue::S("humans have it".into()));
            BatchGetItemOutput::builder().responses(table, vec![pause]).build()
        });
    let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&first, &second]);
    let ledger = DynamoLedger { dynamodb, table: table.into() };
    let counters = counters(&Budgets::default(), "api", "scale_up", 7_200);
    let guards = ledger.read_guards(Some("api"), &counters).await.unwrap();
    let pause = guards.pause.expect("the pause that came back unprocessed at first");
    assert_eq!((pause.scope.as_str(), pause.by.as_str()), ("globally", "alice"));
    assert_eq!(guards.counts, [0, 0, 0]);
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}
