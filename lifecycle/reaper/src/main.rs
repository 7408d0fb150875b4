use fluidity_reaper::{Deps, ReaperSettings, handler};
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_tracing();
    let settings = runtime::init_or_exit(ReaperSettings::from_env());
    let config = shared::aws::load_sdk_config().await;
    let deps = Deps {
        ecs: aws_sdk_ecs::Client::new(&config),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
        ssm: aws_sdk_ssm::Client::new(&config),
        settings,
    };
    runtime::run(|event| handler(event, &deps)).await
}
