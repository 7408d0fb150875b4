#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The drain watcher against the emulator's SSM: it polls the real parameter and reports through
//! its flags and its EMF lines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fluidity_drain::{DrainConfig, DrainWatcher};
use shared::testing::{emulator_config, unique};

#[tokio::test]
async fn the_watcher_turns_ready_a_grace_period_after_draining() {
    let config = emulator_config().await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let id = unique("d");
    let parameter = shared::deployment::state_parameter("drainapp", &id);
    let put = |value: &'static str| {
        let (ssm, parameter) = (ssm.clone(), parameter.clone());
        async move {
            ssm.put_parameter()
                .name(parameter)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(true)
                .send()
                .await
                .unwrap();
        }
    };
    put("active").await;
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let drain = DrainConfig {
        parameter: parameter.clone(),
        poll: Duration::from_millis(100),
        grace: Duration::from_millis(600),
        deployment_name: "drainapp".into(),
        deployment_id: id.clone(),
        task_id: "task-1".into(),
    };
    let watcher = DrainWatcher::spawn(ssm.clone(), drain, move |line| sink.lock().unwrap().push(line));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(!watcher.is_draining() && !watcher.is_shutdown_ready());

    put("draining").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(watcher.is_draining());
    assert!(!watcher.is_shutdown_ready(), "still within the grace period");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(watcher.is_shutdown_ready());

    let lines = lines.lock().unwrap();
    assert!(lines.len() >= 8, "one EMF line per poll: {}", lines.len());
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["ShutdownReady"], 1);
    assert_eq!(last["deployment_id"], id.as_str());
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["ShutdownReady"], 0);
}
