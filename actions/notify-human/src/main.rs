use incident_notify_human::{Deps, handler, topic_from_env};
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_tracing();
    let topic_arn = runtime::init_or_exit(topic_from_env());
    let config = shared::aws::load_sdk_config().await;
    let deps = Deps { sns: aws_sdk_sns::Client::new(&config), topic_arn };
    runtime::run(|event| handler(event, &deps)).await
}
