//! What the deployer, the drain watcher, the reaper and sleep agree on:
//! - [`deployment`]: service names, SSM state parameters, tags (no AWS SDK, so the drain watcher
//!   that applications embed stays small);
//! - [`service`] (feature `ecs`): the same, read from a described ECS service's tags.

pub mod deployment;
#[cfg(feature = "ecs")]
pub mod service;
