//! `fluidity-drain-watcher`: the sidecar form, for an app in any language. It runs beside the app
//! in the task, polls the deployment's SSM state and prints one EMF line per poll to stdout
//! (CloudWatch Logs turns it into the `App/Drain` `ShutdownReady` metric the reaper reads). The app
//! learns that it is draining from either or both of:
//! - `DRAIN_FILE`: a path (on a volume shared with the app) rewritten after every poll with
//!   `{"draining": true|false, "shutdownReady": true|false}`, replaced atomically;
//! - `DRAIN_HTTP_PORT`: `GET http://127.0.0.1:<port>/drain` answers the same JSON (the containers
//!   of an awsvpc task share localhost).
//!
//! Logs go to stderr. The process exits on SIGTERM, which ECS sends when the task stops.

use std::sync::Arc;

use fluidity_drain::{DrainConfig, DrainConfigError, DrainWatcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    shared::runtime::init_tracing();
    let (config, file, port) = match settings() {
        Ok(settings) => settings,
        Err(err) => {
            tracing::error!(error = %err, "drain watcher cannot start");
            eprintln!("fluidity-drain-watcher: {err}");
            std::process::exit(1);
        }
    };
    tracing::info!(parameter = %config.parameter, task_id = %config.task_id, "drain watcher started");
    let sdk = match shared::aws::load_sdk_config("fluidity-drain-watcher").await {
        Ok(sdk) => sdk,
        Err(err) => {
            tracing::error!(error = %err, "drain watcher cannot start");
            eprintln!("fluidity-drain-watcher: {err}");
            std::process::exit(1);
        }
    };
    let polled = Arc::new(Notify::new());
    let on_poll = Arc::clone(&polled);
    let watcher = DrainWatcher::spawn(aws_sdk_ssm::Client::new(&sdk), config, move |line| {
        println!("{line}");
        on_poll.notify_one();
    });
    if let Some(path) = file {
        tokio::spawn(write_file(watcher.clone(), path, polled));
    }
    if let Some(port) = port {
        tokio::spawn(serve(watcher.clone(), port));
    }
    stopped().await;
}

fn settings() -> Result<(DrainConfig, Option<std::path::PathBuf>, Option<u16>), DrainConfigError> {
    let config = DrainConfig::from_env()?;
    let file = std::env::var_os("DRAIN_FILE").filter(|p| !p.is_empty()).map(std::path::PathBuf::from);
    let port = match std::env::var("DRAIN_HTTP_PORT") {
        Err(_) => None,
        Ok(text) => Some(text.trim().parse::<u16>().ok().filter(|p| *p > 0).ok_or(DrainConfigError::Invalid {
            name: "DRAIN_HTTP_PORT",
            problem: format!("{text:?} is not a port number (1-65535)"),
        })?),
    };
    Ok((config, file, port))
}

/// After every poll: the status to a temporary file, then renamed over `path`, so the app never
/// reads half a file.
async fn write_file(watcher: DrainWatcher, path: std::path::PathBuf, polled: Arc<Notify>) {
    let temporary = path.with_extension("tmp");
    loop {
        polled.notified().await;
        let written = tokio::fs::write(&temporary, watcher.status_json()).await;
        if let Err(err) = written.and(tokio::fs::rename(&temporary, &path).await) {
            tracing::warn!(path = %path.display(), "could not write the drain file: {err}");
        }
    }
}

/// `GET /drain` → the status; anything else → 404. One request per connection.
async fn serve(watcher: DrainWatcher, port: u16) {
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(port, "cannot serve the drain status: {err}");
            return;
        }
    };
    while let Ok((mut stream, _)) = listener.accept().await {
        let watcher = watcher.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let n = stream.read(&mut request).await.unwrap_or(0);
            let found = request[..n].starts_with(b"GET /drain ") || request[..n].starts_with(b"GET /drain?");
            let (status, body) = if found { ("200 OK", watcher.status_json()) } else { ("404 Not Found", "{}".into()) };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

async fn stopped() {
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
