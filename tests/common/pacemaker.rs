//! Pacemaker 2.1 beside coroha on the lab's corosync (issue 16,
//! docs/pacemaker.md): one `pacemakerd` per node, in a mount namespace
//! of its own where `/var/lib/pacemaker` and `/var/log/pacemaker` are the
//! node's, and `/usr/sbin` shows the lab's fence agent (`fence_lab.sh`)
//! over the system's, so nothing is written outside the lab's directory.
//! coroha publishes its role as the node attribute `coroha-role`
//! (`[pacemaker] role_attribute`), and an `IPaddr2` address follows it.

use super::{must, sh, wait_for, Lab};
use std::fs;
use std::process::Output;
use std::time::Duration;

/// The address Pacemaker moves to coroha's primary.
pub const VIP: &str = "10.213.0.200";

/// The node attribute coroha publishes its role in.
pub const ROLE_ATTRIBUTE: &str = "coroha-role";

/// coroha.toml's section for it, as docs/pacemaker.md gives it (with a
/// shorter refresh, so that a test of a Pacemaker restart is short).
pub const COROHA_SECTION: &str =
    "[pacemaker]\nrole_attribute = \"coroha-role\"\nrefresh = \"2s\"\n\n";

const FENCE_AGENT: &str = include_str!("fence_lab.sh");

impl Lab {
    /// Run Pacemaker on every node, and publish coroha's role to it; set
    /// before the lab starts. `start_all` then starts it after corosync,
    /// and configures the cluster: the address, its rule, and (with
    /// `stonith`) a fence device that kills a node's namespace.
    pub fn with_pacemaker(&mut self, stonith: bool) {
        self.with_pacemaker_managing(stonith, Manager::Coroha);
    }

    /// Pacemaker with the address following `manager`'s primary.
    pub fn with_pacemaker_managing(&mut self, stonith: bool, manager: Manager) {
        for tool in [
            "pacemakerd",
            "crm_mon",
            "cibadmin",
            "attrd_updater",
            "stonith_admin",
        ] {
            let found = sh(&format!("command -v {tool}")).status.success();
            assert!(
                found,
                "{tool} is not installed (scripts/test.sh installs pacemaker, pacemaker-cli-utils \
                 and resource-agents)"
            );
        }
        self.pacemaker = Some(PacemakerSetup { stonith, manager });
        if stonith {
            // Fencing for coroha goes through Pacemaker's fencer.
            self.hooks = "fence_node = [\"stonith_admin\", \"--reboot\", \"{node}\"]\n".into();
        }
        for i in 0..self.nodes.len() {
            self.write_configs(i);
        }
    }

    pub fn start_pacemaker(&mut self, id: u32) {
        let d = self.node(id).dir.join("pacemaker");
        for sub in [
            "lib/cib",
            "lib/pengine",
            "lib/blackbox",
            "lib/cores",
            "log",
            "sbin",
            "sbin-work",
        ] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        let agent = d.join("sbin/fence_lab");
        fs::write(&agent, FENCE_AGENT).unwrap();
        must(&format!("chmod 755 {}", agent.display()));
        let d = d.display();
        must(&format!("chown -R hacluster:haclient {d}/lib {d}/log"));
        // The node name comes from corosync's nodelist; the host name is
        // set to it as well, for the tools that print it.
        let child = self.spawn(
            id,
            "pacemaker.out",
            &format!(
                "exec unshare -m -u sh -c 'hostname n{id} && \
                 mount --bind {d}/lib /var/lib/pacemaker && \
                 mount --bind {d}/log /var/log/pacemaker && \
                 mount -t overlay overlay -o lowerdir=/usr/sbin,upperdir={d}/sbin,workdir={d}/sbin-work /usr/sbin && \
                 PCMK_logfile=/var/log/pacemaker/pacemaker.log exec pacemakerd'"
            ),
        );
        self.node_mut(id).pacemaker = Some(child);
    }

    /// Stop Pacemaker on a node as systemd does (SIGTERM: it stops its
    /// resources there first, then its daemons) and wait until it is gone.
    pub fn stop_pacemaker(&mut self, id: u32) {
        let mut child = self.node_mut(id).pacemaker.take().expect("running");
        must(&format!("kill -TERM {}", child.id()));
        let _ = child.wait();
        let ns = self.node(id).ns.clone();
        wait_for(
            Duration::from_secs(60),
            "pacemaker's daemons to exit",
            || {
                let out = sh(&format!("ip netns pids {ns} | xargs -r ps -o comm= -p"));
                (!String::from_utf8_lossy(&out.stdout).contains("pacemaker")).then_some(())
            },
        );
    }

    /// Start Pacemaker everywhere, wait for every node online under one
    /// DC, and configure the cluster from node 1.
    pub(super) fn start_pacemaker_cluster(&mut self, setup: PacemakerSetup) {
        let ids: Vec<u32> = self.nodes.iter().map(|n| n.id).collect();
        for &id in &ids {
            self.start_pacemaker(id);
        }
        self.wait_pacemaker_online(&ids, Duration::from_secs(90));
        self.configure_pacemaker(setup);
    }

    /// Wait until node `ids[0]`'s Pacemaker sees every node of `ids` online.
    pub fn wait_pacemaker_online(&self, ids: &[u32], limit: Duration) {
        let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
        let want = format!("Online: [ {} ]", names.join(" "));
        wait_for(limit, &format!("Pacemaker: {want}"), || {
            let out = self.pcmk(ids[0], "crm_mon -1");
            let text = String::from_utf8_lossy(&out.stdout);
            (text.contains(&want) && text.contains("partition with quorum")).then_some(())
        });
    }

    fn configure_pacemaker(&self, setup: PacemakerSetup) {
        let mut commands = vec![
            format!(
                "crm_attribute --type crm_config --name stonith-enabled --update {}",
                setup.stonith
            ),
            "crm_attribute --type crm_config --name no-quorum-policy --update stop".into(),
            format!(
                "cibadmin --create --scope resources --xml-text '<primitive id=\"vip\" class=\"ocf\" provider=\"heartbeat\" type=\"IPaddr2\">\
                 <instance_attributes id=\"vip-ia\"><nvpair id=\"vip-ip\" name=\"ip\" value=\"{VIP}\"/>\
                 <nvpair id=\"vip-mask\" name=\"cidr_netmask\" value=\"24\"/><nvpair id=\"vip-nic\" name=\"nic\" value=\"eth0\"/></instance_attributes>\
                 <operations><op id=\"vip-monitor\" name=\"monitor\" interval=\"5s\"/></operations></primitive>'"
            ),
        ];
        match setup.manager {
            // docs/pacemaker.md: the address runs only where coroha's role
            // is primary.
            Manager::Coroha => commands.push(format!(
                "cibadmin --create --scope constraints --xml-text '<rsc_location id=\"vip-on-coroha-primary\" rsc=\"vip\">\
                 <rule id=\"vip-on-coroha-primary-rule\" score=\"-INFINITY\" boolean-op=\"or\">\
                 <expression id=\"vip-rule-undefined\" attribute=\"{ROLE_ATTRIBUTE}\" operation=\"not_defined\"/>\
                 <expression id=\"vip-rule-not-primary\" attribute=\"{ROLE_ATTRIBUTE}\" operation=\"ne\" value=\"primary\"/>\
                 </rule></rsc_location>'"
            )),
            Manager::Stateful => commands.extend([
                // As production clusters set it: a promoted instance stays
                // where it is once a move is cleared.
                "crm_attribute --type rsc_defaults --name resource-stickiness --update 1".to_string(),
                format!(
                    "cibadmin --create --scope resources --xml-text '<clone id=\"nso-clone\">\
                     <meta_attributes id=\"nso-clone-meta\"><nvpair id=\"nso-promotable\" name=\"promotable\" value=\"true\"/>\
                     <nvpair id=\"nso-promoted-max\" name=\"promoted-max\" value=\"1\"/></meta_attributes>\
                     <primitive id=\"nso\" class=\"ocf\" provider=\"pacemaker\" type=\"Stateful\">\
                     <instance_attributes id=\"nso-ia\"><nvpair id=\"nso-state\" name=\"state\" value=\"{STATEFUL_STATE}\"/></instance_attributes>\
                     <meta_attributes id=\"nso-meta\"><nvpair id=\"nso-threshold\" name=\"migration-threshold\" value=\"1\"/></meta_attributes>\
                     <operations><op id=\"nso-monitor-promoted\" name=\"monitor\" interval=\"2s\" role=\"Promoted\"/>\
                     <op id=\"nso-monitor\" name=\"monitor\" interval=\"3s\" role=\"Unpromoted\"/></operations>\
                     </primitive></clone>'"
                ),
                "cibadmin --create --scope constraints --xml-text '<rsc_colocation id=\"vip-with-promoted\" score=\"INFINITY\" \
                 rsc=\"vip\" with-rsc=\"nso-clone\" with-rsc-role=\"Promoted\"/>'"
                    .to_string(),
                "cibadmin --create --scope constraints --xml-text '<rsc_order id=\"vip-after-promote\" first=\"nso-clone\" \
                 first-action=\"promote\" then=\"vip\" then-action=\"start\"/>'"
                    .to_string(),
            ]),
        }
        if setup.stonith {
            let hosts: Vec<String> = self.nodes.iter().map(|n| format!("n{}", n.id)).collect();
            commands.push(format!(
                "cibadmin --create --scope resources --xml-text '<primitive id=\"fence-lab\" class=\"stonith\" type=\"fence_lab\">\
                 <instance_attributes id=\"fence-lab-ia\"><nvpair id=\"fence-lab-hosts\" name=\"pcmk_host_list\" value=\"{}\"/>\
                 <nvpair id=\"fence-lab-tag\" name=\"lab_tag\" value=\"{}\"/><nvpair id=\"fence-lab-dir\" name=\"lab_dir\" value=\"{}\"/>\
                 </instance_attributes><operations><op id=\"fence-lab-monitor\" name=\"monitor\" interval=\"60s\"/></operations></primitive>'",
                hosts.join(" "),
                self.tag,
                self.dir.display()
            ));
        }
        for c in commands {
            let out = self.pcmk(1, &c);
            assert!(
                out.status.success(),
                "{c}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// A Pacemaker command line in node `id`'s namespace (its fencer,
    /// attribute manager and CIB answer on abstract sockets there).
    pub fn pcmk(&self, id: u32, cmd: &str) -> Output {
        self.in_node(id, cmd)
    }

    /// The nodes whose `eth0` carries the address now.
    pub fn vip_holders(&self) -> Vec<u32> {
        let namespaces: Vec<(u32, String)> =
            self.nodes.iter().map(|n| (n.id, n.ns.clone())).collect();
        vip_holders_in(&namespaces)
    }

    /// The value of `coroha-role` for node `id` in the CIB, as node
    /// `from` reads it.
    pub fn role_attribute(&self, from: u32, id: u32) -> Option<String> {
        let out = self.pcmk(
            from,
            &format!("attrd_updater --query --name {ROLE_ATTRIBUTE} --node n{id}"),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        text.split("value=\"")
            .nth(1)
            .and_then(|v| v.split('"').next())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// Make the Stateful instance on node `id` fail, as a crashed NSO
    /// would: its next monitor finds no state.
    pub fn fail_stateful(&self, id: u32) {
        let state = self
            .node(id)
            .dir
            .join("pacemaker/lib")
            .join(STATEFUL_STATE.rsplit('/').next().unwrap());
        fs::remove_file(&state).expect("the Stateful instance's state file");
    }

    /// The node whose Stateful instance is promoted, as node `from`'s
    /// Pacemaker reports it.
    pub fn stateful_promoted(&self, from: u32) -> Option<u32> {
        let out = self.pcmk(from, "crm_resource --resource nso-clone --locate");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains("Promoted"))
            .and_then(|l| l.split("running on:").nth(1))
            .and_then(|n| n.split_whitespace().next())
            .and_then(|n| n.strip_prefix('n'))
            .and_then(|n| n.parse().ok())
    }

    /// The times fence_lab turned node `id` off.
    pub fn fenced_by_pacemaker(&self, id: u32) -> Vec<u64> {
        fs::read_to_string(self.node(id).dir.join("fenced"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    }
}

/// Which of the nodes (id, namespace) carry the address on `eth0`.
pub fn vip_holders_in(namespaces: &[(u32, String)]) -> Vec<u32> {
    namespaces
        .iter()
        .filter(|(_, ns)| {
            let out = sh(&format!("ip -n {ns} -o -4 addr show dev eth0"));
            String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP}/"))
        })
        .map(|(id, _)| *id)
        .collect()
}

/// How the lab's Pacemaker is set up.
#[derive(Clone, Copy, Debug)]
pub struct PacemakerSetup {
    /// A fence device (fence_lab) and `stonith-enabled`, and coroha's
    /// `fence_node` hook through `stonith_admin`.
    pub stonith: bool,
    /// Who decides where the address runs.
    pub manager: Manager,
}

/// Who decides where the address runs, for the side-by-side comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manager {
    /// coroha: the address follows `coroha-role`.
    Coroha,
    /// Pacemaker alone, without coroha or fake-confd: a promotable clone
    /// of `ocf:pacemaker:Stateful` stands for NSO, and the address is
    /// colocated with its promoted instance, as a Pacemaker-managed NSO
    /// is usually set up. `migration-threshold=1`, so that a failed
    /// instance is promoted elsewhere (as coroha fails over) rather than
    /// restarted in place.
    Stateful,
}

/// Where a node's Stateful instance keeps its state: Pacemaker's
/// directory, which is the node's own in the lab.
const STATEFUL_STATE: &str = "/var/lib/pacemaker/stateful.state";
