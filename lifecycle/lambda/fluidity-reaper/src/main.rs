use fluidity_reaper::{Deps, ReaperSettings, handler, permissions};
use shared::aws::LazyClient;
use shared::runtime;

const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::permissions_flag(FUNCTION, permissions);
    runtime::init_tracing();
    let settings = runtime::init_or_exit(ReaperSettings::from_env());
    let config = runtime::init_or_exit(shared::aws::load_sdk_config(FUNCTION).await);
    let deps = Deps {
        ecs: aws_sdk_ecs::Client::new(&config),
        cloudwatch: LazyClient::new(&config, aws_sdk_cloudwatch::Client::new),
        elb: LazyClient::new(&config, aws_sdk_elasticloadbalancingv2::Client::new),
        ssm: LazyClient::new(&config, aws_sdk_ssm::Client::new),
        settings,
    };
    runtime::run(|event| handler(event, &deps)).await
}
