//! fake-confd: a stand-in NSO/ConfD node for tests and the lab.
//!
//! - [`model`]: the HA behaviour of one node as observed on ConfD 8.2.5, a
//!   pure state machine (an order, a link event or a join attempt in; the
//!   replies, events and link actions out, in the real server's order).
//! - [`link`]: the messages between fake nodes (ticks, joins, replicated
//!   writes).
//!
//! The `fake-confd` binary puts sockets and timers around them.

pub mod link;
pub mod model;
