//! coroha: a failover manager for NSO/ConfD HA, fed by corosync.
//!
//! Data flow: [`corosync`] (membership and messages) → `coroha_policy` (the
//! pure election) → [`ha`] (orders to the local NSO/ConfD over `confd_ha`).
//! [`daemon`] wires them together; [`cli`] is the operator's side, and
//! [`control`] the protocol between the two.

pub mod cli;
pub mod control;
pub mod corosync;
pub mod daemon;
pub mod ha;
pub mod retry;
