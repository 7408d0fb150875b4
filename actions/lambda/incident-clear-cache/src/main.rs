use incident_clear_cache::{ClearCache, Deps, PasswordSource, handler, permissions, reboot};
use incident_core::config::TargetConfig;
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
    let clear = ClearCache {
        secrets: LazyClient::new(&config, aws_sdk_secretsmanager::Client::new),
        elasticache: LazyClient::new(&config, aws_sdk_elasticache::Client::new),
        targets,
        passwords: PasswordSource::from_env(),
        reboot_poll: reboot::DEFAULT_POLL,
    };
    let deps = Deps { action: clear, guard };
    runtime::run(|event| handler(event, &deps)).await
}
