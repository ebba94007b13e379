//! Issue 16: coroha beside Pacemaker 2.1 on one corosync (network
//! namespaces, root; docs/pacemaker.md). coroha decides NSO/ConfD's
//! roles and publishes its role as the node attribute `coroha-role`;
//! Pacemaker runs an `IPaddr2` address where that attribute is `primary`,
//! and fences nodes for coroha through `stonith_admin`.

#[path = "common/client.rs"]
mod client;
#[path = "common/lab.rs"]
mod lab;
#[path = "common/run.rs"]
mod run;

use lab::{unix_ms, wait_for, Lab, Proc};
use run::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// When the address was sampled, and the nodes that held it.
type Sample = (u64, Vec<u32>);

/// Where the address was, sampled every 20 ms on every node from a
/// thread of its own.
struct AddressWatch {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AddressWatch {
    fn start(lab: &Lab) -> AddressWatch {
        let namespaces: Vec<(u32, String)> =
            lab.nodes.iter().map(|n| (n.id, n.ns.clone())).collect();
        let samples = Arc::new(Mutex::new(vec![]));
        let stop = Arc::new(AtomicBool::new(false));
        let (out, done) = (samples.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                // Stamped when the round begins: a round takes tens of
                // milliseconds (one `ip` per node), and one that began
                // before a moment must not count as seen after it (a
                // round that straddled the address's return once showed
                // it missing "after" the test had seen it back).
                let at = unix_ms();
                let holders = lab::pacemaker::vip_holders_in(&namespaces);
                out.lock().unwrap().push((at, holders));
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        AddressWatch {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// The samples since `t`.
    fn since(&self, t: u64) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= t)
            .cloned()
            .collect()
    }

    /// Never on two nodes at once, over the whole run.
    fn never_on_two(&self) {
        let samples = self.samples.lock().unwrap();
        let two = samples.iter().find(|(_, h)| h.len() > 1);
        assert!(two.is_none(), "the address on two nodes at once: {two:?}");
        assert!(!samples.is_empty(), "the address was never sampled");
    }
}

impl Drop for AddressWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Wait until the address is on node `id` alone; when it got there.
fn address_on(lab: &Lab, id: u32, why: &str) -> u64 {
    wait_for(Duration::from_secs(60), why, || {
        (lab.vip_holders() == [id]).then(unix_ms)
    })
}

/// A 3-node lab with Pacemaker, settled, the address on the primary and
/// watched from the start: the lab, the watch and the primary.
fn settled_pacemaker_lab(stonith: bool) -> Option<(Running, AddressWatch, u32)> {
    let (guard, lab) = lab_with(3, |lab| lab.with_pacemaker(stonith))?;
    let watch = AddressWatch::start(&lab);
    let p = lab.wait_settled(&all(3), SETTLE);
    address_on(&lab, p, "the address on the primary");
    Some(((guard, lab), watch, p))
}

/// One corosync, two managers: each restarts without disturbing what the
/// other decided, and the address follows coroha's primary through a
/// switchover and an NSO/ConfD crash, never on two nodes at once; a
/// Pacemaker standby moves the address only, coroha's moves the primary;
/// in Pacemaker's maintenance mode the address waits for its end.
#[test]
fn pacemaker_keeps_the_address_on_corohas_primary_and_neither_disturbs_the_other() {
    let Some(((_g, mut lab), watch, p)) = settled_pacemaker_lab(false) else {
        return;
    };
    assert_eq!(lab.role_attribute(1, p).as_deref(), Some("primary"));
    let s = without(3, p)[0];
    assert_eq!(lab.role_attribute(1, s).as_deref(), Some("secondary"));

    // Pacemaker restarts (as `systemctl restart pacemaker` does) on a
    // secondary, then on the primary: coroha changes no role. Pacemaker
    // stops the address on the primary while it restarts there, and puts
    // it back once coroha has published the role again.
    let t = unix_ms();
    for id in [s, p] {
        lab.stop_pacemaker(id);
        lab.start_pacemaker(id);
        lab.wait_pacemaker_online(&all(3), Duration::from_secs(90));
    }
    let back = address_on(&lab, p, "the address back on the primary");
    assert!(
        lab.changes_since(t).is_empty(),
        "a Pacemaker restart changed NSO/ConfD roles: {:?}",
        lab.changes_since(t)
    );
    eprintln!(
        "Pacemaker restarted on n{s} and n{p}: no role change; the address back on n{p} {} ms after the start",
        back - t
    );

    // coroha killed and started again on a secondary and on the primary
    // (no handover): NSO/ConfD keeps its roles, and the address does not
    // move or blink, since a restarting coroha publishes nothing before it
    // has read its server's role.
    let t = unix_ms();
    for id in [s, p] {
        lab.signal(id, Proc::Coroha, "KILL");
        lab.start_coroha(id);
    }
    lab.wait_settled_on(&all(3), p, SETTLE);
    std::thread::sleep(Duration::from_secs(3));
    let moved: Vec<_> = watch
        .since(t)
        .into_iter()
        .filter(|(_, h)| h.as_slice() != [p])
        .collect();
    assert!(
        moved.is_empty(),
        "the address left n{p} while coroha restarted: {:?}",
        moved.first()
    );
    assert!(
        lab.changes_since(t).is_empty(),
        "{:?}",
        lab.changes_since(t)
    );

    // A switchover: the address follows.
    let t = unix_ms();
    let to = s;
    coroha_ok(&lab, p, &["switchover", "--to", &format!("n{to}")]);
    lab.wait_settled_on(&all(3), to, SETTLE);
    let moved = address_on(
        &lab,
        to,
        "the address on the new primary after the switchover",
    );
    eprintln!(
        "switchover n{p} -> n{to}: the address there after {} ms",
        moved - t
    );

    // NSO/ConfD dies on the primary: coroha fails over, the address follows.
    let t = unix_ms();
    lab.signal(to, Proc::Fake, "KILL");
    let q = lab.wait_settled(&without(3, to), SETTLE);
    let moved = address_on(&lab, q, "the address on the primary after NSO/ConfD died");
    eprintln!(
        "NSO/ConfD died on n{to}: n{q} primary, the address there after {} ms",
        moved - t
    );
    lab.start_fake(to);
    lab.wait_settled_on(&all(3), q, SETTLE);

    // Pacemaker standby of the primary's node (docs/pacemaker.md): the
    // address leaves it and runs nowhere, since no other node is primary;
    // NSO/ConfD's roles stay. coroha's own standby then moves the primary,
    // and the address follows it.
    let t = unix_ms();
    let standby = |lab: &Lab, value: &str| {
        pcmk_ok(lab, q, &format!("crm_standby --node n{q} --update {value}"));
    };
    standby(&lab, "on");
    wait_for(
        Duration::from_secs(30),
        "the address off the standby node",
        || lab.vip_holders().is_empty().then_some(()),
    );
    assert!(
        lab.changes_since(t).is_empty(),
        "{:?}",
        lab.changes_since(t)
    );
    coroha_ok(&lab, q, &["standby", &format!("n{q}")]);
    let r = lab.wait_settled(&all(3), SETTLE);
    assert_ne!(r, q);
    address_on(&lab, r, "the address on the primary after coroha's standby");
    standby(&lab, "off");
    coroha_ok(&lab, q, &["standby", "--off", &format!("n{q}")]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(lab.vip_holders(), [r], "the address stays on the primary");

    // Pacemaker's maintenance mode (docs/pacemaker.md): coroha still moves
    // the primary, and the address stays where it was until maintenance
    // ends, then follows.
    let maintenance = |lab: &Lab, on: bool| {
        pcmk_ok(
            lab,
            r,
            &format!("crm_attribute --type crm_config --name maintenance-mode --update {on}"),
        );
    };
    maintenance(&lab, true);
    let to = without(3, r)[0];
    coroha_ok(&lab, r, &["switchover", "--to", &format!("n{to}")]);
    lab.wait_settled_on(&all(3), to, SETTLE);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        lab.vip_holders(),
        [r],
        "the address moved in maintenance mode"
    );
    maintenance(&lab, false);
    address_on(
        &lab,
        to,
        "the address on the primary after maintenance mode",
    );

    watch.never_on_two();
    no_overlap(&lab);
}

/// coroha's `fence_node` hook is Pacemaker's `stonith_admin --reboot`: an
/// isolated primary is fenced through Pacemaker's fence device before
/// coroha promotes anybody, and the address follows the new primary.
/// While the device is disabled, `stonith_admin` fails, coroha records
/// the failure and promotes nobody.
#[test]
fn coroha_fences_through_pacemakers_stonith() {
    let Some(((_g, mut lab), watch, p)) = settled_pacemaker_lab(true) else {
        return;
    };
    // Asked on a node that stays in the quorate partition.
    let device = |lab: &Lab, role: &str| {
        pcmk_ok(
            lab,
            without(3, p)[0],
            &format!("crm_resource --resource fence-lab --meta --set-parameter target-role --parameter-value {role}"),
        );
    };
    device(&lab, "Stopped");
    std::thread::sleep(Duration::from_secs(3));
    let t0 = unix_ms();
    lab.link(p, false);
    let survivors = without(3, p);
    let failed = wait_for(Duration::from_secs(30), "a failed stonith_admin", || {
        survivors
            .iter()
            .find_map(|&id| lab.log_time(id, t0, "fence_node hook \"stonith_admin\" failed"))
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        lab.promotions_since(t0).is_empty(),
        "promoted although the fence failed: {:?}",
        lab.promotions_since(t0)
    );
    let recorded = survivors.iter().any(|&id| {
        let out = lab.coroha_cmd(id, &["history", "--json"]);
        let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        reply["history"].as_array().is_some_and(|v| {
            v.iter().any(|e| {
                e["kind"] == "hook_failed"
                    && e["text"].as_str().is_some_and(|t| {
                        t.contains(&format!("fence_node hook against n{p} failed"))
                    })
            })
        })
    });
    assert!(recorded, "the failed fence is not in a survivor's history");
    let t1 = unix_ms();
    device(&lab, "Started");
    let q = lab.wait_settled(&survivors, SETTLE);
    let fenced = wait_for(
        Duration::from_secs(30),
        "Pacemaker's fence device ran",
        || lab.fenced_by_pacemaker(p).first().copied(),
    );
    let reported = lab
        .fence_logged(&survivors, t0)
        .expect("a survivor's coroha took stonith_admin's success as the fence");
    let promoted = lab.promoted_at(q, t0).expect("the new primary's promotion");
    assert!(
        t1 <= fenced && fenced <= reported && reported <= promoted,
        "device started at {t1}, fenced by Pacemaker at {fenced}, reported to coroha at {reported}, \
         n{q} promoted at {promoted}"
    );
    let moved = address_on(&lab, q, "the address on the new primary");
    eprintln!(
        "isolated primary n{p}: stonith_admin failed after {} ms (device disabled); device enabled \
         after {} ms, fenced through Pacemaker {} ms later, n{q} promoted {} ms later, the address \
         there {} ms later",
        failed - t0,
        t1 - t0,
        fenced - t1,
        promoted - t1,
        moved - t1
    );
    lab.link(p, true);
    lab.revive(p);
    lab.wait_pacemaker_online(&all(3), Duration::from_secs(90));
    lab.wait_settled_on(&all(3), q, SETTLE);
    assert_eq!(lab.vip_holders(), [q]);
    watch.never_on_two();
    no_overlap(&lab);
}

/// The side-by-side table of docs/pacemaker.md: the same three events on
/// coroha (the address following `coroha-role`) and on Pacemaker alone
/// (a promotable `ocf:pacemaker:Stateful` clone, the address colocated
/// with its promoted instance), both with the lab's fence device, in one
/// run on the same machine: the time from the event to the address on
/// another node.
#[test]
#[ignore = "benchmark, about 4 minutes a run: COROHA_LAB_RUNS=5 cargo test --release --test lab_pacemaker -- --ignored side_by_side --nocapture"]
fn side_by_side_with_a_pacemaker_promotable_clone() {
    let runs: usize = env_number("COROHA_LAB_RUNS", 3);
    let mut rows = vec![];
    for manager in [Manager::Coroha, Manager::Stateful] {
        let Some((_g, mut lab)) = lab_with(3, |lab| lab.with_pacemaker_managing(true, manager))
        else {
            return;
        };
        let watch = AddressWatch::start(&lab);
        let mut times: [Vec<f64>; 3] = Default::default();
        for _ in 0..runs {
            for (k, event) in Event::ALL.iter().enumerate() {
                let p = primary(&lab, manager);
                let t0 = unix_ms();
                event.apply(&mut lab, manager, p);
                let (q, at) =
                    wait_for(
                        Duration::from_secs(90),
                        "the address elsewhere",
                        || match lab.vip_holders().as_slice() {
                            [q] if *q != p => Some((*q, unix_ms())),
                            _ => None,
                        },
                    );
                times[k].push((at - t0) as f64);
                event.restore(&mut lab, manager, p, q);
            }
        }
        watch.never_on_two();
        for (k, event) in Event::ALL.iter().enumerate() {
            let (median, p95, max) = lab::summary(times[k].clone());
            rows.push(format!(
                "| {} | {manager:?} | {median:.0} ms | {p95:.0} ms | {max:.0} ms |",
                event.name()
            ));
        }
    }
    eprintln!("| event | manager | median | p95 | max |\n|---|---|---|---|---|");
    for row in rows {
        eprintln!("{row}");
    }
}

use lab::pacemaker::Manager;

/// The events of the side-by-side table.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// A planned move to another node.
    Switchover,
    /// NSO dies on the primary (fake-confd killed; for Stateful, its
    /// state removed, which its next monitor reports as a failure).
    Crash,
    /// The primary's link goes down.
    Isolation,
}

impl Event {
    const ALL: [Event; 3] = [Event::Switchover, Event::Crash, Event::Isolation];

    fn name(self) -> &'static str {
        match self {
            Event::Switchover => "planned switchover",
            Event::Crash => "NSO crash on the primary",
            Event::Isolation => "primary isolated (fenced)",
        }
    }

    fn apply(self, lab: &mut Lab, manager: Manager, p: u32) {
        let to = without(3, p)[0];
        match (self, manager) {
            (Event::Switchover, Manager::Coroha) => {
                coroha_ok(lab, p, &["switchover", "--to", &format!("n{to}")]);
            }
            (Event::Switchover, Manager::Stateful) => pcmk_ok(
                lab,
                to,
                &format!("crm_resource --resource nso-clone --move --promoted --node n{to}"),
            ),
            (Event::Crash, Manager::Coroha) => lab.signal(p, Proc::Fake, "KILL"),
            (Event::Crash, Manager::Stateful) => lab.fail_stateful(p),
            (Event::Isolation, _) => lab.link(p, false),
        }
    }

    /// Back to a whole cluster with `q` primary.
    fn restore(self, lab: &mut Lab, manager: Manager, p: u32, q: u32) {
        match (self, manager) {
            (Event::Switchover, Manager::Coroha) => {}
            (Event::Switchover, Manager::Stateful) => {
                pcmk_ok(lab, q, "crm_resource --resource nso-clone --clear")
            }
            (Event::Crash, Manager::Coroha) => lab.start_fake(p),
            (Event::Crash, Manager::Stateful) => {
                pcmk_ok(lab, q, "crm_resource --resource nso-clone --cleanup")
            }
            (Event::Isolation, _) => {
                wait_for(Duration::from_secs(60), "the isolated node fenced", || {
                    (!lab.running(p, Proc::Corosync)).then_some(())
                });
                lab.link(p, true);
                lab.revive(p);
                lab.wait_pacemaker_online(&all(3), Duration::from_secs(90));
                if manager == Manager::Stateful {
                    pcmk_ok(lab, q, "crm_resource --resource nso-clone --cleanup");
                }
            }
        }
        match manager {
            Manager::Coroha => lab.wait_settled_on(&all(3), q, SETTLE),
            Manager::Stateful => wait_for(SETTLE, "every Stateful instance running", || {
                let out = lab.pcmk(q, "crm_resource --resource nso-clone --locate");
                let text = String::from_utf8_lossy(&out.stdout);
                (text.lines().filter(|l| l.contains("running on")).count() == 3).then_some(())
            }),
        }
    }
}

/// The primary: coroha's, or Pacemaker's promoted instance, with the
/// address there.
fn primary(lab: &Lab, manager: Manager) -> u32 {
    let p = match manager {
        Manager::Coroha => lab.wait_settled(&all(3), SETTLE),
        Manager::Stateful => wait_for(SETTLE, "a promoted Stateful instance", || {
            lab.stateful_promoted(1)
        }),
    };
    address_on(lab, p, "the address on the primary");
    p
}

/// A coroha command on node `id` that must succeed.
fn coroha_ok(lab: &Lab, id: u32, args: &[&str]) {
    let out = lab.coroha_cmd(id, args);
    assert!(
        out.status.success(),
        "coroha {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Pacemaker command on node `id` that must succeed.
fn pcmk_ok(lab: &Lab, id: u32, cmd: &str) {
    let out = lab.pcmk(id, cmd);
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
