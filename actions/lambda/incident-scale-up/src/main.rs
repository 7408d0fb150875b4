use incident_core::config::TargetConfig;
use incident_scale_up::{Deps, ScaleUp, handler, permissions};
use shared::aws::LazyClient;
use shared::runtime;

const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::permissions_flag(FUNCTION, permissions);
    runtime::init_tracing();
    let targets = runtime::init_or_exit(TargetConfig::from_env());
    let config = runtime::init_or_exit(shared::aws::load_sdk_config(FUNCTION).await);
    let guard = runtime::init_or_exit(incident_ledger::guard_from_env(&config));
    let scale = ScaleUp {
        ecs: LazyClient::new(&config, aws_sdk_ecs::Client::new),
        autoscaling: LazyClient::new(&config, aws_sdk_applicationautoscaling::Client::new),
        rds: LazyClient::new(&config, aws_sdk_rds::Client::new),
        elasticache: LazyClient::new(&config, aws_sdk_elasticache::Client::new),
        targets,
    };
    let deps = Deps { action: scale, guard };
    runtime::run(|event| handler(event, &deps)).await
}
