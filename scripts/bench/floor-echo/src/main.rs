//! `floor-echo`: answers every event with the event itself. scripts/bench.py measures its init and
//! peak RSS in the same run as the functions' and reports theirs as ratios to it: the least a Rust
//! Lambda on this runtime costs on this machine. Not deployed.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move { Ok::<Value, Error>(event.payload) })).await
}
