//! coroha: a failover manager for NSO/ConfD HA, fed by corosync.
//!
//! Data flow: `cluster` (corosync events) → `policy` (pure election state
//! machine) → `ha` (orders to the local NSO/ConfD).

pub mod cluster;
pub mod config;
pub mod daemon;
pub mod ha;
pub mod policy;
