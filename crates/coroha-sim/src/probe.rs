//! The simulator's NSO/ConfD model on its own: no corosync, no coroha, no
//! clock. An order goes to one node and is applied at once; what comes out
//! is its reply and the notifications each node raised, in the order the
//! model raised them. `tests/conformance.rs` drives fake-confd's model
//! (itself replayed against the ConfD 8.2.5 captures) through the same
//! steps and holds the two to the same answers, so the simulator cannot
//! drift from the server it stands for.

use crate::confd::{Confd, Idx};
use crate::{default_config, Sim, SimOptions};
use confd_ha::{HaEvent, HaFailure, HaOrder, HaReply};

/// Something a node said: the reply to an order on its HA socket, or a
/// notification on its HA_INFO stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Said {
    Reply(Result<HaReply, HaFailure>),
    Event(HaEvent),
}

/// The server model of a simulated cluster of `n` nodes, all reachable,
/// each NSO/ConfD running in NONE.
pub struct ServerProbe {
    sim: Sim,
}

impl ServerProbe {
    pub fn new(nodes: usize) -> ServerProbe {
        let mut sim = Sim::new(SimOptions::new(default_config(nodes), 0));
        // The boot faults and writes Sim::new scheduled never run: the probe
        // applies orders directly and does not advance the queue.
        for i in 0..nodes {
            sim.powered[i] = true;
            sim.confd[i] = Confd::new();
        }
        sim.tap = Some(vec![]);
        ServerProbe { sim }
    }

    fn said(&mut self) -> Vec<(Idx, Said)> {
        self.sim.tap.replace(vec![]).unwrap_or_default()
    }

    /// Serve `order` on `node`'s HA socket.
    pub fn order(&mut self, node: Idx, order: HaOrder) -> Vec<(Idx, Said)> {
        // The order id and coroha pid only route the reply; the tap takes it.
        self.sim.apply_order(node, 0, 0, order);
        self.said()
    }

    /// The node's NSO/ConfD process is killed (TCP connections close).
    pub fn kill(&mut self, node: Idx) -> Vec<(Idx, Said)> {
        self.sim.confd_stop(node, "killed by the probe");
        self.said()
    }

    /// A killed node's NSO/ConfD starts again, in NONE with its data.
    pub fn start(&mut self, node: Idx) -> Vec<(Idx, Said)> {
        if self.sim.confd[node].running {
            return vec![];
        }
        self.sim.confd[node] = self.sim.confd[node].restarted(false);
        self.said()
    }
}
