//! The base every function is built on: settings, the Lambda runtime entry point, the SDK's
//! configuration and HTTP client, the event adapter, errors, the deadline, text helpers, IAM
//! declarations, EMF metrics and the ECS calls several functions make.

pub mod aws;
pub mod deadline;
pub mod ecs;
pub mod emf;
pub mod error;
pub mod events;
pub mod frame;
pub mod http;
pub mod iam;
pub mod runtime;
pub mod settings;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod text;

pub use error::{ConfigError, FunctionError};
