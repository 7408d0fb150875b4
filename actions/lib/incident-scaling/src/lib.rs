//! What scale_up and the restore after an incident read and send: an ECS service's desired count
//! and autoscaling floor, an RDS instance's class, an ElastiCache group's node type and replicas, a
//! Memcached cluster's nodes. Each side's plans (and so the direction) are its own: scale_up's
//! changes only add capacity, the restore's (in `incident-ledger`) only put it back.

pub mod observe;
pub mod send;
