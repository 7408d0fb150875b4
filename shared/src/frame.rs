//! The frame of the lifecycle functions (wake, sleep, kill, reaper): recognise the event source,
//! parse the request, do the work within the Lambda deadline, log a failure, and shape the answer
//! for the source: a function error on direct and scheduled invokes (so the Errors alarm fires), an
//! HTTP status over API Gateway or a Function URL.

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::FunctionError;
use crate::deadline::Deadline;
use crate::events::{EventSource, Inbound};

/// Runs one lifecycle invocation; see the module docs and [`EventSource::respond`].
pub async fn run_lifecycle<Req, Resp, F, Fut>(
    event: LambdaEvent<Value>,
    name: &str,
    work: F,
) -> Result<Value, FunctionError>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(Req, EventSource) -> Fut,
    Fut: std::future::Future<Output = Result<Resp, FunctionError>>,
{
    let deadline = Deadline::from_context(&event.context);
    let inbound = Inbound::classify(event.payload);
    let outcome = match inbound.request::<Req>() {
        Ok(request) => deadline.run(name, work(request, inbound.source)).await,
        Err(err) => Err(err),
    };
    if let Err(err) = &outcome {
        tracing::warn!(source = ?inbound.source, code = err.code(), "{name} failed: {err}");
    }
    inbound.source.respond(outcome)
}
