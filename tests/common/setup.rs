//! Variants of the lab, set up before it starts: fencing, `two_node`,
//! slow role hooks, HTTP on the nodes' addresses.

use super::Lab;

impl Lab {
    /// A `fence_node` hook that does what STONITH does to a node here:
    /// every process of its namespace is killed (a stopped one too), and
    /// its fake-confd's history says it is dead.
    pub fn fence_node_by_killing(&mut self) {
        let d = self.dir.display();
        self.hooks = format!(
            "fence_node = [\"sh\", \"-c\", \"kill -KILL $(ip netns pids crh{tag}$COROHA_FENCE_NODE); \
             echo $(date +%s%3N) dead >> {d}/$COROHA_FENCE_NODE/history\"]\n",
            tag = self.tag
        );
        for i in 0..self.nodes.len() {
            self.write_configs(i);
        }
    }

    /// The recommended setting where clients may reach a node cut off from
    /// quorum (docs/design.md, section 11): on a lapsed lease or a lost
    /// quorum, its own NSO/ConfD is killed rather than told `benone`, so
    /// that a commit still waiting for its unreachable secondaries is never
    /// acknowledged. Also sets up `fence_node` as
    /// [`Lab::fence_node_by_killing`] does.
    pub fn fence_on_quorum_loss(&mut self) {
        self.fence_node_by_killing();
        let d = self.dir.display();
        self.hooks.push_str(&format!(
            "fence = [\"sh\", \"-c\", \"pkill -KILL -f \\\"admin unix:{d}/$COROHA_NODE/admin.sock\\\"; \
             echo $(date +%s%3N) dead >> {d}/$COROHA_NODE/history\"]\n"
        ));
        self.policy.push_str("on_quorum_loss = \"fence\"\n");
        for i in 0..self.nodes.len() {
            self.write_configs(i);
        }
    }

    /// Role hooks that take a second.
    pub fn slow_role_hooks(&mut self) {
        self.hook_delay = "sleep 1; ".into();
        for i in 0..self.nodes.len() {
            self.write_configs(i);
        }
    }

    /// Every node's coroha answers HTTP on all its addresses, so that the
    /// bridge's namespace (a load balancer there) reaches it.
    pub fn http_on_node_address(&mut self) {
        self.http_listen = "0.0.0.0:9647".into();
        for i in 0..self.nodes.len() {
            self.write_configs(i);
        }
    }

    /// Two sites: `site_b` attach through `relay` (`relay_via`, and
    /// `can_primary = false`), as in the simulator's scenario 37.
    pub fn relay_site(&mut self, relay: u32, site_b: &[u32]) {
        self.relayed = site_b.iter().map(|k| (*k, relay)).collect();
        for i in 0..self.nodes.len() {
            self.write_configs(i);
        }
    }

    /// A cluster of two with corosync's `two_node: 1`, which coroha runs
    /// only with a `fence_node` hook ([`Lab::fence_node_by_killing`]).
    pub fn two_node_with_fencing(&mut self) {
        self.quorum = "  two_node: 1\n".into();
        self.fence_node_by_killing();
    }
}
