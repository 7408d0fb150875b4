//! The library every function is built on: the request/response contract, the target config,
//! the event adapter, the runtime entry point, AWS configuration and the ECS helpers.

pub mod aws;
pub mod config;
pub mod contract;
pub mod deadline;
pub mod deployment;
pub mod ecs;
pub mod error;
pub mod events;
pub mod frame;
pub mod http;
pub mod ledger;
pub mod plan;
pub mod runtime;
pub mod settings;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod text;

pub use error::{ConfigError, FunctionError};
pub use fluidity_names::emf;
