//! votequorum's arithmetic as the simulator uses it (one vote per node),
//! checked against corosync's own simulator, corosync-vqsim, by
//! crates/coroha-sim/tests/vqsim.rs.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoteQuorum {
    /// Nodes in the nodelist.
    pub nodes: u32,
    /// `quorum { expected_votes }`, when set.
    pub expected_votes: Option<u32>,
    pub two_node: bool,
    /// `quorum { wait_for_all }`; unset means on with two_node, as in
    /// votequorum.
    pub wait_for_all: Option<bool>,
}

impl VoteQuorum {
    pub fn new(nodes: u32) -> VoteQuorum {
        VoteQuorum {
            nodes,
            expected_votes: None,
            two_node: false,
            wait_for_all: None,
        }
    }

    pub fn expected(&self) -> u32 {
        self.expected_votes.unwrap_or(self.nodes)
    }

    /// Votes needed for quorum (votequorum_info's `quorum`).
    pub fn needed(&self) -> u32 {
        let expected = self.expected();
        if self.two_node && expected == 2 {
            1
        } else {
            expected / 2 + 1
        }
    }

    pub fn waits_for_all(&self) -> bool {
        self.wait_for_all.unwrap_or(self.two_node)
    }

    /// A membership of this many votes satisfies wait_for_all for its
    /// members (they have seen every node at once since they started).
    pub fn sees_all(&self, votes: u32) -> bool {
        votes >= self.expected()
    }

    /// Is a member of a membership of `votes` quorate? `seen_all`: it has
    /// seen all nodes at once since it started.
    pub fn quorate(&self, votes: u32, seen_all: bool) -> bool {
        votes >= self.needed() && (!self.waits_for_all() || seen_all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_of_three_and_five() {
        let q = VoteQuorum::new(3);
        assert_eq!(q.needed(), 2);
        assert!(q.quorate(2, true) && !q.quorate(1, true));
        assert_eq!(VoteQuorum::new(5).needed(), 3);
    }

    #[test]
    fn two_node_needs_one_vote_and_waits_for_all() {
        let q = VoteQuorum {
            two_node: true,
            ..VoteQuorum::new(2)
        };
        assert_eq!(q.needed(), 1);
        assert!(q.waits_for_all());
        assert!(!q.quorate(1, false));
        assert!(q.quorate(1, true));
    }
}
