//! The one entry point every binary's `main` calls.
//!
//! Under Lambda (`AWS_LAMBDA_RUNTIME_API` is set) it runs `lambda_runtime`. Anywhere else it runs
//! one event locally: JSON from the file named by the first argument, or from stdin when there is
//! no argument or it is `-`; it prints to stdout exactly what Lambda would return (the response,
//! or `{"errorType", "errorMessage"}` with exit status 1) and logs to stderr.

use std::fmt::Debug;
use std::future::Future;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Context, Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::Instrument;
use tracing_subscriber::filter::Targets;

use crate::ConfigError;

/// Local runs get this much time unless `AWS_LAMBDA_FUNCTION_TIMEOUT` (seconds) says otherwise.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Structured JSON logs on stderr. The level comes from `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else info.
/// Each line carries the spans it was logged in: the runtime's `requestId`, and the actions' `incidentId`.
///
/// `RUST_LOG` takes a level, `target=level` pairs, or both, comma-separated
/// (`debug`, `warn,fluidity_sleep=debug`); a value it cannot read falls back to info. The filter
/// is tracing-subscriber's `Targets`, not `EnvFilter`: the same forms without span-field filters,
/// and without a regex engine compiled into every function.
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let settings = crate::settings::Settings::from_env();
    let directive =
        settings.optional("RUST_LOG").or_else(|| settings.optional("AWS_LAMBDA_LOG_LEVEL").map(lambda_level));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .with_span_list(true)
        .flatten_event(true)
        .with_target(false)
        .with_max_level(tracing::Level::TRACE)
        .finish()
        .with(log_filter(directive.as_deref()))
        .try_init();
}

/// The filter for a `RUST_LOG`-style directive; `None` or one it cannot read means info.
pub fn log_filter(directive: Option<&str>) -> Targets {
    let info = || Targets::new().with_default(tracing::Level::INFO);
    directive.and_then(|directive| directive.parse().ok()).unwrap_or_else(info)
}

/// Lambda's log levels in tracing's terms: FATAL, which tracing has not, is error.
fn lambda_level(level: String) -> String {
    match level.to_ascii_lowercase().as_str() {
        "fatal" => "error".to_owned(),
        other => other.to_owned(),
    }
}

/// `<binary> --permissions` prints the function's declared IAM permissions as JSON and exits: the
/// deployment checks compare them with the function's role. Call it first thing in `main`.
pub fn permissions_flag(function: &str, permissions: fn() -> Vec<crate::iam::Permission>) {
    if std::env::args().nth(1).as_deref() == Some("--permissions") {
        let mut declared = permissions();
        declared.sort();
        declared.dedup();
        println!("{}", json!({"function": function, "permissions": declared}));
        std::process::exit(0);
    }
}

/// Unwraps the result of cold-start configuration, or reports it as an init error and exits.
pub fn init_or_exit<T>(result: Result<T, ConfigError>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => {
            tracing::error!(error = %err, "init failed");
            println!("{}", json!({ "errorType": "Runtime.InitError", "errorMessage": err.to_string() }));
            std::process::exit(1);
        }
    }
}

/// Runs the handler under Lambda, or once locally. See the module docs.
pub async fn run<F, Fut, R, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(LambdaEvent<Value>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: Serialize,
    E: Into<Diagnostic> + Debug,
{
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return lambda_runtime::run(service_fn(handler)).await;
    }
    let code = run_local(handler).await;
    std::process::exit(code);
}

async fn run_local<F, Fut, R, E>(handler: F) -> i32
where
    F: Fn(LambdaEvent<Value>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: Serialize,
    E: Into<Diagnostic> + Debug,
{
    let event = match read_local_event(std::env::args().nth(1).as_deref()) {
        Ok(event) => event,
        Err(message) => {
            println!("{}", json!({ "errorType": "InvalidRequestContent", "errorMessage": message }));
            return 1;
        }
    };
    let ctx = local_context();
    let span = tracing::info_span!("Lambda runtime invoke", requestId = %ctx.request_id);
    let invocation = async {
        match handler(LambdaEvent::new(event, ctx)).await {
            Ok(response) => {
                match serde_json::to_string(&response) {
                    Ok(text) => println!("{text}"),
                    Err(e) => println!(
                        "{}",
                        json!({ "errorType": "Runtime.SerializationError", "errorMessage": e.to_string() })
                    ),
                }
                0
            }
            Err(err) => {
                let diagnostic: Diagnostic = err.into();
                tracing::error!(errorType = %diagnostic.error_type, "{}", diagnostic.error_message);
                println!("{}", json!({ "errorType": diagnostic.error_type, "errorMessage": diagnostic.error_message }));
                1
            }
        }
    };
    invocation.instrument(span).await
}

fn read_local_event(path: Option<&str>) -> Result<Value, String> {
    let (text, from) = match path {
        None | Some("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read the event from stdin: {e}"))?;
            (text, "stdin".to_owned())
        }
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the event file {path}: {e}"))?;
            (text, path.to_owned())
        }
    };
    serde_json::from_str(&text).map_err(|e| format!("the event in {from} is not valid JSON: {e}"))
}

fn local_context() -> Context {
    let timeout = crate::settings::Settings::from_env()
        .optional("AWS_LAMBDA_FUNCTION_TIMEOUT")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(LOCAL_TIMEOUT, Duration::from_secs);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut ctx = Context::default();
    ctx.request_id = format!("local-{}", uuid::Uuid::new_v4());
    ctx.deadline = u64::try_from((now + timeout).as_millis()).unwrap_or(u64::MAX);
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn the_documented_log_directives_filter_as_env_filter_did() {
        let default = log_filter(None);
        assert!(
            default.would_enable("fluidity_sleep", &Level::INFO)
                && !default.would_enable("fluidity_sleep", &Level::DEBUG)
        );
        let debug = log_filter(Some("debug"));
        assert!(debug.would_enable("aws_smithy_runtime", &Level::DEBUG) && !debug.would_enable("x", &Level::TRACE));
        let mixed = log_filter(Some("warn,fluidity_sleep=debug"));
        assert!(mixed.would_enable("fluidity_sleep", &Level::DEBUG));
        assert!(mixed.would_enable("fluidity_sleep::metrics", &Level::DEBUG), "a target's modules inherit its level");
        assert!(!mixed.would_enable("aws_config", &Level::INFO) && mixed.would_enable("aws_config", &Level::WARN));
        assert!(!log_filter(Some("off")).would_enable("fluidity_sleep", &Level::ERROR));
        let unreadable = log_filter(Some("fluidity_sleep=loud"));
        assert!(
            unreadable.would_enable("x", &Level::INFO) && !unreadable.would_enable("x", &Level::DEBUG),
            "falls back to info"
        );
    }

    #[test]
    fn lambda_log_levels_are_read_in_any_case_and_fatal_is_error() {
        assert_eq!(lambda_level("WARN".into()), "warn");
        assert_eq!(lambda_level("FATAL".into()), "error");
        let fatal = log_filter(Some(&lambda_level("FATAL".into())));
        assert!(fatal.would_enable("x", &Level::ERROR) && !fatal.would_enable("x", &Level::WARN));
    }
}
