//! Status values for the commands' tests.

use confd_ha::HaRole;
use coroha_policy::freshness::DataState;
use coroha_policy::message::Health;
use coroha_policy::{MemberStatus, Status};

/// A member in sync and healthy.
pub fn member(
    name: &str,
    role: HaRole,
    epoch: u64,
    parent: Option<&str>,
    standby: bool,
) -> MemberStatus {
    MemberStatus {
        id: name[1..].parse().unwrap(),
        name: name.into(),
        role: Some(role),
        epoch,
        parent: parent.map(Into::into),
        health: Health::Ok,
        standby,
        leaving: false,
        txid: None,
        data: DataState::InSync,
        failing: None,
        role_for_ms: None,
    }
}

/// Node n1's status, quorate, with `primary` planned; n1's role is the
/// one its member entry has.
pub fn status(primary: &str, members: Vec<MemberStatus>) -> Status {
    let role = members.iter().find(|m| m.name == "n1").and_then(|m| m.role);
    Status {
        node: "n1".into(),
        role,
        epoch: 3,
        max_epoch: 3,
        health: Health::Ok,
        parent: None,
        standby: false,
        quorate: true,
        ring: None,
        primary: Some(primary.into()),
        plan: None,
        pending: None,
        failing: None,
        stopping: false,
        writable: role == Some(HaRole::Primary),
        paused: false,
        pause_gen: 0,
        members,
        absent: vec![],
        actions: vec![],
    }
}
