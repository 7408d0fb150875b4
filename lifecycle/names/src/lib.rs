//! What the deployer, the drain watcher, the reaper and sleep agree on, with no AWS SDK and no
//! Lambda runtime, so the drain watcher that applications embed stays small:
//! - [`deployment`]: service names, SSM state parameters, tags;
//! - [`emf`]: CloudWatch Embedded Metric Format lines.

pub mod deployment;
pub mod emf;
