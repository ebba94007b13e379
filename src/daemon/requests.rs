//! Operator requests from the control socket, and what the daemon tells
//! systemd.

use super::control::Caller;
use super::history::Kind;
use super::{notify, Daemon};
use crate::control::{Reply, Request, StatusReport};
use confd_ha::HaRole;
use coroha_policy::{Input, Operator};

impl Daemon {
    pub(super) fn known_node(&self, name: &str) -> Result<(), Reply> {
        match self.config.node_by_name(name) {
            Some(_) => Ok(()),
            None => Err(Reply::Refused(format!(
                "no node named {name:?} in the configuration"
            ))),
        }
    }

    /// Answer an operator request; some become policy inputs, if the
    /// policy can act on them from here (it says why not).
    pub(super) fn request(&mut self, req: Request, caller: Caller) -> (Option<Input>, Reply) {
        let asked = req.describe().map(|what| format!("{what} by {caller}"));
        if let Some(asked) = &asked {
            tracing::info!("operator request: {asked}");
            if !caller.may_change {
                let why = match &self.config.control.admin_group {
                    Some(g) => format!("only root and members of group {g} may change the cluster"),
                    None => "only root may change the cluster ([control] admin_group names a group that may)".to_string(),
                };
                tracing::warn!("operator request refused: {asked}: {why}");
                self.record_operator(Some(asked.clone()), format!("refused: {why}"));
                return (None, Reply::Refused(why));
            }
        }
        let (input, reply) = self.take_request(req);
        if let Some(Input::Operator(op)) = &input {
            if let Err(why) = self.policy.admit(op) {
                tracing::warn!("operator request refused: {why}");
                self.record_operator(asked, format!("refused: {why}"));
                return (None, Reply::Refused(why.to_string()));
            }
        }
        if let Some(asked) = asked {
            match &reply {
                Reply::Refused(why) => self.record_operator(Some(asked), format!("refused: {why}")),
                _ => self.record_operator(Some(asked), "taken".into()),
            }
        }
        (input, reply)
    }

    /// An operator request that changes something, for the history.
    fn record_operator(&self, asked: Option<String>, outcome: String) {
        if let Some(asked) = asked {
            let epoch = self.policy.brief().epoch;
            let text = format!("{asked}: {outcome}");
            self.history.record(&self.name, epoch, Kind::Operator, text);
        }
    }

    fn take_request(&mut self, req: Request) -> (Option<Input>, Reply) {
        let ok = Reply::Taken;
        let op = |o: Operator| Some(Input::Operator(o));
        match req {
            Request::Status => (None, Reply::Status(Box::new(self.status_report()))),
            Request::History { last } => (None, Reply::History(self.history.last(last))),
            Request::Metrics => {
                let text = self
                    .metrics
                    .render(&self.policy.status(), &self.corosync.view.borrow());
                (None, Reply::Metrics(text))
            }
            Request::Switchover { to } => {
                if let Some(Err(e)) = to.as_deref().map(|n| self.known_node(n)) {
                    return (None, e);
                }
                tracing::info!(
                    "operator: switchover to {}",
                    to.as_deref().unwrap_or("the best other node")
                );
                (op(Operator::Switchover { to }), ok)
            }
            Request::Standby { node, on } => match self.known_node(&node) {
                Err(e) => (None, e),
                Ok(()) => {
                    tracing::info!("operator: standby {node} {}", if on { "on" } else { "off" });
                    (op(Operator::Standby { node, on }), ok)
                }
            },
            Request::ConfirmDown { node } => match self.known_node(&node) {
                Err(e) => (None, e),
                Ok(()) => {
                    tracing::warn!("operator confirms that {node}'s NSO/ConfD is down");
                    (op(Operator::ConfirmDown { node }), ok)
                }
            },
            Request::Pause { on } => {
                tracing::warn!(
                    "operator: {} the cluster",
                    if on { "pause" } else { "resume" }
                );
                (op(Operator::Pause { on }), ok)
            }
            Request::Stop { keep_roles } => {
                if keep_roles {
                    tracing::info!("operator: maintenance stop, every role stays as it is");
                    (op(Operator::Stop { handover: false }), ok)
                } else {
                    (self.stop_signal("operator stop"), ok)
                }
            }
        }
    }

    pub(super) fn status_report(&self) -> StatusReport {
        StatusReport {
            policy: self.policy.status(),
            corosync: self.corosync.view.borrow().clone(),
            last_change: self.last_change.clone(),
            last_hook_failure: self.history.last_hook_failure(),
        }
    }

    /// systemd STATUS, sent when what it says changes (checked after every
    /// step, so only the cheap brief is compared).
    pub(super) fn update_systemd_status(&mut self) {
        let b = self.policy.brief();
        if self.systemd_status == Some(b) {
            return;
        }
        self.systemd_status = Some(b);
        let primary = b.primary.and_then(|id| self.config.node_by_id(id));
        let text = format!(
            "{} (epoch {}), {}, primary {}",
            b.role.map_or("unknown", HaRole::name),
            b.epoch,
            if b.quorate { "quorate" } else { "not quorate" },
            primary.map_or("none", |n| n.name.as_str())
        );
        notify(&[sd_notify::NotifyState::Status(&text)]);
    }
}
