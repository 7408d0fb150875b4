//! The on-call side the test files share: a topic in moto with an SQS queue subscribed to it, read
//! back as an on-call integration would receive the page.
#![allow(clippy::unwrap_used, dead_code)] // test code; each test file uses part of it

use serde_json::Value;
use shared::testing::{emulator_config, unique};

pub struct Inbox {
    pub topic_arn: String,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

pub async fn subscribed_inbox() -> Inbox {
    let config = emulator_config().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let topic_arn = sns.create_topic().name(unique("oncall")).send().await.unwrap().topic_arn().unwrap().to_owned();
    let queue_url =
        sqs.create_queue().queue_name(unique("pager-inbox")).send().await.unwrap().queue_url().unwrap().to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    sns.subscribe().topic_arn(&topic_arn).protocol("sqs").endpoint(queue_arn).send().await.unwrap();
    Inbox { topic_arn, sqs, queue_url }
}

/// The SNS envelopes that reached the queue.
pub async fn received(inbox: &Inbox) -> Vec<Value> {
    let out = inbox
        .sqs
        .receive_message()
        .queue_url(&inbox.queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    out.messages().iter().map(|m| serde_json::from_str(m.body().unwrap()).unwrap()).collect()
}

/// A FIFO topic (`<name>.fifo`), as incident pagers use for ordered pages.
pub async fn fifo_topic() -> String {
    let sns = aws_sdk_sns::Client::new(&emulator_config().await);
    let topic = sns.create_topic().name(format!("{}.fifo", unique("oncall"))).attributes("FifoTopic", "true");
    topic.send().await.unwrap().topic_arn().unwrap().to_owned()
}
