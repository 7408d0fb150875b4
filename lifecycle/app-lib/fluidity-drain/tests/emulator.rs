#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The drain watcher against the emulator's SSM: it polls the real parameter and reports through
//! its flags and its EMF lines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fluidity_drain::{DrainConfig, DrainWatcher};
use shared::testing::{emulator_config, unique};

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_watcher_turns_ready_a_grace_period_after_draining() {
    let config = emulator_config().await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let id = unique("d");
    let parameter = fluidity_names::deployment::state_parameter("drainapp", &id);
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

/// The ECS task metadata endpoint (v4), served by a one-shot HTTP server on loopback.
#[test]
fn the_task_id_comes_from_the_metadata_endpoint() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let n = stream.read(&mut request).unwrap();
        let body = r#"{"Cluster":"prod","TaskARN":"arn:aws:ecs:us-east-1:123456789012:task/prod/5e8c0a4b9f2d4d1a","Family":"app"}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).unwrap();
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    let id = fluidity_drain::task_id_from_metadata(&format!("http://127.0.0.1:{port}/v4/abc")).unwrap();
    assert_eq!(id, "5e8c0a4b9f2d4d1a");
    assert!(server.join().unwrap().starts_with("GET /v4/abc/task "), "asked <uri>/task");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = fluidity_drain::task_id_from_metadata(&format!("http://127.0.0.1:{closed}")).unwrap_err();
    assert!(err.contains(&format!("127.0.0.1:{closed}/task")), "{err}");
}
