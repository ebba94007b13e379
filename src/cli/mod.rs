//! The operator's commands that talk to something running: `coroha ha`
//! (the local NSO/ConfD's HA socket, by hand) and the control-socket
//! commands (`coroha status`, `switchover`, `standby`, `stop`,
//! `confirm-down`).

pub mod control;
pub mod generate;
pub mod ha;
pub mod outcome;
#[cfg(test)]
pub(crate) mod samples;
