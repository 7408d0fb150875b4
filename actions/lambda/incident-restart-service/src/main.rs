use incident_core::config::TargetConfig;
use incident_restart_service::{Deps, Restart, check_claims, cooldown_from_env, handler, permissions};
use shared::aws::LazyClient;
use shared::runtime;

const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::permissions_flag(FUNCTION, permissions);
    runtime::init_tracing();
    let targets = runtime::init_or_exit(TargetConfig::from_env());
    let cooldown = runtime::init_or_exit(cooldown_from_env());
    let config = runtime::init_or_exit(shared::aws::load_sdk_config(FUNCTION).await);
    let guard = runtime::init_or_exit(incident_ledger::guard_from_env(&config));
    runtime::init_or_exit(check_claims(cooldown, &guard));
    let restart = Restart {
        ecs: LazyClient::new(&config, aws_sdk_ecs::Client::new),
        ec2: LazyClient::new(&config, aws_sdk_ec2::Client::new),
        targets,
        cooldown,
    };
    let deps = Deps { action: restart, guard };
    runtime::run(|event| handler(event, &deps)).await
}
