use incident_restart_service::lock::lock_prefix_from_env;
use incident_restart_service::{Deps, cooldown_from_env, handler};
use shared::config::TargetConfig;
use shared::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_tracing();
    let targets = runtime::init_or_exit(TargetConfig::from_env());
    let cooldown = runtime::init_or_exit(cooldown_from_env());
    let lock_prefix = runtime::init_or_exit(lock_prefix_from_env());
    let config = shared::aws::load_sdk_config().await;
    let deps = Deps {
        ecs: aws_sdk_ecs::Client::new(&config),
        ec2: aws_sdk_ec2::Client::new(&config),
        ssm: aws_sdk_ssm::Client::new(&config),
        targets,
        cooldown,
        lock_prefix,
    };
    runtime::run(|event| handler(event, &deps)).await
}
