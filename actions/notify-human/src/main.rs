use incident_notify_human::{Deps, handler, permissions, topic_from_env};
use shared::plan::PlanPolicy;
use shared::runtime;

const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::permissions_flag(FUNCTION, permissions);
    runtime::init_tracing();
    let topic_arn = runtime::init_or_exit(topic_from_env());
    let config = runtime::init_or_exit(shared::aws::load_sdk_config(FUNCTION).await);
    let plans = runtime::init_or_exit(PlanPolicy::from_env(&config));
    let deps = Deps { sns: aws_sdk_sns::Client::new(&config), topic_arn, plans };
    runtime::run(|event| handler(event, &deps)).await
}
