use fluidity_kill::{Deps, handler, permissions};
use shared::ecs::ServiceScope;
use shared::runtime;

const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::permissions_flag(FUNCTION, permissions);
    runtime::init_tracing();
    let services = runtime::init_or_exit(ServiceScope::from_env());
    let config = runtime::init_or_exit(shared::aws::load_sdk_config(FUNCTION).await);
    let deps = Deps { ecs: aws_sdk_ecs::Client::new(&config), services };
    runtime::run(|event| handler(event, &deps)).await
}
