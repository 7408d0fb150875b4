use incident_core::config::TargetConfig;
use incident_rollback_service::{Deps, Rollback, handler, horizon_from_env, permissions};
use shared::aws::LazyClient;
use shared::runtime;

const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::permissions_flag(FUNCTION, permissions);
    runtime::init_tracing();
    let targets = runtime::init_or_exit(TargetConfig::from_env());
    let horizon = runtime::init_or_exit(horizon_from_env());
    let config = runtime::init_or_exit(shared::aws::load_sdk_config(FUNCTION).await);
    let guard = runtime::init_or_exit(incident_ledger::guard_from_env(&config));
    let rollback = Rollback { ecs: LazyClient::new(&config, aws_sdk_ecs::Client::new), targets, horizon };
    let deps = Deps { action: rollback, guard };
    runtime::run(|event| handler(event, &deps)).await
}
