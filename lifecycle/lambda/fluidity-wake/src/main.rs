use fluidity_wake::{Deps, handler, permissions};
use shared::aws::LazyClient;
use shared::ecs::ServiceScope;
use shared::runtime;

const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::permissions_flag(FUNCTION, permissions);
    runtime::init_tracing();
    let services = runtime::init_or_exit(ServiceScope::from_env());
    let config = runtime::init_or_exit(shared::aws::load_sdk_config(FUNCTION).await);
    let deps = Deps {
        ecs: aws_sdk_ecs::Client::new(&config),
        ec2: LazyClient::new(&config, aws_sdk_ec2::Client::new),
        services,
    };
    runtime::run(|event| handler(event, &deps)).await
}
