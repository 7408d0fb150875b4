use incident_restart_service::{Deps, claims, cooldown_from_env, handler, permissions};
use shared::aws::LazyClient;
use shared::config::TargetConfig;
use shared::runtime;

const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::permissions_flag(FUNCTION, permissions);
    runtime::init_tracing();
    let targets = runtime::init_or_exit(TargetConfig::from_env());
    let cooldown = runtime::init_or_exit(cooldown_from_env());
    let config = runtime::init_or_exit(shared::aws::load_sdk_config(FUNCTION).await);
    let plans = runtime::init_or_exit(shared::plan::PlanPolicy::from_env(&config));
    let claims = runtime::init_or_exit(claims(cooldown, &plans));
    let deps = Deps {
        ecs: LazyClient::new(&config, aws_sdk_ecs::Client::new),
        ec2: LazyClient::new(&config, aws_sdk_ec2::Client::new),
        targets,
        cooldown,
        claims,
        plans,
    };
    runtime::run(|event| handler(event, &deps)).await
}
