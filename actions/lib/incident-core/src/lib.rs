//! The incident actions' core: what every action (restart_service, scale_up, clear_cache,
//! notify_human) shares and nothing else uses.
//!
//! - [`contract`]: the request the backend sends and the response it reads;
//! - [`config`]: the target map, parsed into typed targets at cold start;
//! - [`action`]: the [`Action`](action::Action) trait, which each action implements (observe,
//!   plan, apply), and [`plan`]: the typed plan and the plan token;
//! - [`driver`]: the one driver, [`run`](driver::run), which is the life of every invocation;
//! - [`guard`]: the incident ledger's guards around it (idempotency, budgets, pause, claims,
//!   records), the failure policy and the deadline's share, on the [`ledger::Ledger`] trait,
//!   whose DynamoDB table is the `incident-ledger` crate's;
//! - [`state`]: the typed, versioned states the records keep; [`metrics`]: EMF per invocation.

pub mod action;
mod answer;
pub mod budget;
pub mod config;
pub mod contract;
pub mod driver;
pub mod guard;
pub mod ledger;
pub mod metrics;
pub mod plan;
pub mod state;
#[cfg(feature = "test-util")]
pub mod testing;
