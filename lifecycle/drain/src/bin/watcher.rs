//! `fluidity-drain-watcher`: the sidecar form. Runs beside any app in the task, polls the
//! deployment's SSM state and prints one EMF line per poll to stdout (CloudWatch Logs turns it
//! into the `App/Drain` `ShutdownReady` metric). Logs go to stderr.

use fluidity_drain::{DrainConfig, DrainWatcher};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    shared::runtime::init_tracing();
    let config = shared::runtime::init_or_exit(DrainConfig::from_env());
    tracing::info!(parameter = %config.parameter, task_id = %config.task_id, "drain watcher started");
    let sdk = shared::aws::load_sdk_config().await;
    let _watcher = DrainWatcher::spawn(aws_sdk_ssm::Client::new(&sdk), config, |line| println!("{line}"));
    // Serve until the task stops (ECS sends SIGTERM); the watcher runs in the background.
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
