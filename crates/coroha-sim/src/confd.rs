//! A simulated NSO/ConfD node with the real server's HA role semantics (as
//! observed on ConfD 8.2.5, see docs/reference/confd-8.2.5-ha.md): NONE is
//! writable, a secondary is read-only and attaches only to a reachable
//! primary, getting a full copy; writes replicate synchronously to attached
//! secondaries; a secondary whose primary disappears reports NOPRIMARY and
//! falls to NONE; orders are served one at a time and can fail or hang.

use confd_ha::HaRole;

/// Index of a simulated node (node id minus one).
pub type Idx = usize;

#[derive(Clone, Debug)]
pub struct Confd {
    pub running: bool,
    pub hung: bool,
    /// Refuse every order except get_status (like start phase 0: BADSTATE).
    pub refusing: bool,
    pub role: HaRole,
    /// Secondary or relay: where it is attached.
    pub parent: Option<Idx>,
    /// Attached secondaries (direct children) in arrival order.
    pub children: Vec<Idx>,
    /// When it last joined a primary, as a count of joins in the cluster:
    /// a primary lists its secondaries newest first.
    pub joined: u64,
    /// Write ids in the order they were applied: the "CDB".
    pub data: Vec<u64>,
    /// CDB's transaction id of `data`, in microseconds: each commit takes
    /// its primary's clock (one more if that is not later), a secondary
    /// copies its primary's, a restart keeps it, 0 is no data (as captured,
    /// confd-ipc-wire §6).
    pub txid: u64,
    /// The node `cdb_get_txid` tags the id with (confd-ipc-wire §6):
    /// `beprimary` tags an untagged id with the node itself, a commit with
    /// its primary, `benone` on a primary drops the tag; a joining
    /// secondary already at its primary's id keeps its own form.
    pub txid_tag: Option<Idx>,
    /// Orders are served one at a time: when the server is next free.
    pub busy_until: u64,
    /// Every role this node had, with the time it took it.
    pub history: Vec<(u64, HaRole)>,
    /// Since when the link to the parent has carried no ticks.
    pub silent_since: Option<u64>,
    /// Orders that reached a frozen server: (coroha pid, order id, order).
    pub stalled: Vec<(u32, u64, confd_ha::HaOrder)>,
    /// Notifications a frozen server owes its subscriber.
    pub owed: Vec<confd_ha::HaEvent>,
    /// MAAPI read-only mode: commits are refused. Node-wide, kept across
    /// role changes except `benone` on a primary, lost on a restart (as
    /// captured, confd-ipc-wire §4).
    pub read_only: bool,
    /// A read-only call that reached a frozen server: (coroha pid, mode).
    pub stalled_read_only: Option<(u32, bool)>,
}

impl Confd {
    pub fn new() -> Confd {
        Confd {
            running: true,
            hung: false,
            refusing: false,
            role: HaRole::None,
            parent: None,
            children: vec![],
            joined: 0,
            data: vec![],
            txid: 0,
            txid_tag: None,
            busy_until: 0,
            history: vec![(0, HaRole::None)],
            owed: vec![],
            stalled: vec![],
            silent_since: None,
            read_only: false,
            stalled_read_only: None,
        }
    }

    /// The process after a restart: NONE, with its data and transaction
    /// id (and, if given, its role history).
    pub fn restarted(&mut self, keep_history: bool) -> Confd {
        Confd {
            data: std::mem::take(&mut self.data),
            txid: self.txid,
            txid_tag: self.txid_tag,
            history: if keep_history {
                std::mem::take(&mut self.history)
            } else {
                vec![(0, HaRole::None)]
            },
            ..Confd::new()
        }
    }

    /// Serving: running and not frozen.
    pub fn serving(&self) -> bool {
        self.running && !self.hung
    }

    /// A running primary or relay listens for secondaries on its HA port;
    /// any other node refuses the connection (HA_CONNECT).
    pub fn listens(&self) -> bool {
        self.running && matches!(self.role, HaRole::Primary | HaRole::Relay)
    }

    pub fn set_role(&mut self, now: u64, role: HaRole) {
        if self.role != role {
            self.role = role;
            self.history.push((now, role));
        }
        if !matches!(role, HaRole::Secondary | HaRole::Relay) {
            self.parent = None;
            self.silent_since = None;
        }
        if !matches!(role, HaRole::Primary | HaRole::Relay) {
            self.children.clear();
        }
    }

    /// Does `self.data` contain every id in `needed` (both ascending)?
    pub fn has_all(&self, needed: &[u64]) -> Result<(), u64> {
        has_all(&self.data, needed)
    }
}

impl Default for Confd {
    fn default() -> Self {
        Confd::new()
    }
}

/// Whether the ascending list `have` contains all of the ascending `needed`;
/// the first missing id otherwise.
pub fn has_all(have: &[u64], needed: &[u64]) -> Result<(), u64> {
    let mut i = 0;
    for w in needed {
        while i < have.len() && have[i] < *w {
            i += 1;
        }
        if i >= have.len() || have[i] != *w {
            return Err(*w);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_all_finds_the_first_missing_write() {
        assert_eq!(has_all(&[1, 2, 3, 5], &[2, 5]), Ok(()));
        assert_eq!(has_all(&[1, 2, 3, 5], &[2, 4, 5]), Err(4));
        assert_eq!(has_all(&[], &[]), Ok(()));
        assert_eq!(has_all(&[], &[7]), Err(7));
    }
}
