use incident_notify_human::cause::Causes;
use incident_notify_human::{Deps, NotifyHuman, handler, permissions, topic_from_env};
use shared::runtime;

const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::permissions_flag(FUNCTION, permissions);
    runtime::init_tracing();
    let topic_arn = runtime::init_or_exit(topic_from_env());
    let config = runtime::init_or_exit(shared::aws::load_sdk_config(FUNCTION).await);
    let guard = runtime::init_or_exit(incident_ledger::guard_from_env(&config));
    let causes = Causes::from_env(&config);
    let notify = NotifyHuman { sns: aws_sdk_sns::Client::new(&config), topic_arn, causes };
    let deps = Deps { action: notify, guard };
    runtime::run(|event| handler(event, &deps)).await
}
