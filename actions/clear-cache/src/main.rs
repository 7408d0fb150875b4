use incident_clear_cache::{Deps, PasswordSource, handler, permissions, reboot};
use shared::aws::LazyClient;
use shared::config::TargetConfig;
use shared::plan::PlanPolicy;
use shared::runtime;

const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::permissions_flag(FUNCTION, permissions);
    runtime::init_tracing();
    let targets = runtime::init_or_exit(TargetConfig::from_env());
    let config = runtime::init_or_exit(shared::aws::load_sdk_config(FUNCTION).await);
    let plans = runtime::init_or_exit(PlanPolicy::from_env(&config));
    let deps = Deps {
        secrets: LazyClient::new(&config, aws_sdk_secretsmanager::Client::new),
        elasticache: LazyClient::new(&config, aws_sdk_elasticache::Client::new),
        targets,
        passwords: PasswordSource::from_env(),
        reboot_poll: reboot::DEFAULT_POLL,
        plans,
    };
    runtime::run(|event| handler(event, &deps)).await
}
