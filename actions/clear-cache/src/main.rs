use incident_clear_cache::{Deps, PasswordSource, handler};
use shared::config::TargetConfig;
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_tracing();
    let targets = runtime::init_or_exit(TargetConfig::from_env());
    let config = shared::aws::load_sdk_config().await;
    let deps = Deps {
        secrets: aws_sdk_secretsmanager::Client::new(&config),
        elasticache: aws_sdk_elasticache::Client::new(&config),
        targets,
        passwords: PasswordSource::from_env(),
        reboot_poll: incident_clear_cache::reboot::DEFAULT_POLL,
    };
    runtime::run(|event| handler(event, &deps)).await
}
