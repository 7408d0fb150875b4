//! The two frames every function runs in: the incident actions' ([`action`]) and the lifecycle
//! functions' ([`lifecycle`]).

pub mod action;
pub mod lifecycle;
