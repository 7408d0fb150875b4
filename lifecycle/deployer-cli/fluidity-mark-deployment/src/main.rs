//! `fluidity-mark-deployment --cluster C --name N --id I [--dry-run]`: prints what it changed as
//! JSON on stdout; exit status 0 on success, 1 on failure (with the reason on stderr), 2 on bad usage.

use clap::Parser;
use fluidity_mark_deployment::{MarkRequest, mark, permissions};

#[derive(Parser, Debug)]
#[command(
    name = "fluidity-mark-deployment",
    about = "Mark a deployment active and the older ones of its name draining"
)]
struct Args {
    /// ECS cluster of the services.
    #[arg(long, env = "CLUSTER")]
    cluster: String,
    /// The deployment name (e.g. myapp); services are svc-<name>-<id>.
    #[arg(long = "name", env = "DEPLOYMENT_NAME")]
    deployment_name: String,
    /// The new deployment's id (e.g. 20251028-183000-abc1234).
    #[arg(long = "id", env = "DEPLOYMENT_ID")]
    deployment_id: String,
    /// Report what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    shared::runtime::permissions_flag(env!("CARGO_PKG_NAME"), permissions);
    shared::runtime::init_tracing();
    let args = Args::parse();
    let request = MarkRequest {
        cluster: args.cluster,
        deployment_name: args.deployment_name,
        deployment_id: args.deployment_id,
        dry_run: args.dry_run,
    };
    if let Err(err) = request.validate() {
        eprintln!("fluidity-mark-deployment: {err}");
        std::process::exit(2);
    }
    let config = match shared::aws::load_sdk_config(env!("CARGO_PKG_NAME")).await {
        Ok(config) => config,
        Err(err) => {
            eprintln!("fluidity-mark-deployment: {err}");
            std::process::exit(2);
        }
    };
    let (ecs, ssm) = (aws_sdk_ecs::Client::new(&config), aws_sdk_ssm::Client::new(&config));
    match mark(&ecs, &ssm, &request).await {
        Ok(report) => println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default()),
        Err(err) => {
            eprintln!("fluidity-mark-deployment: {err}");
            std::process::exit(1);
        }
    }
}
