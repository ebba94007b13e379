use super::*;

const MINIMAL: &str = r#"
[[node]]
name = "n1"
id = 1
address = "10.0.0.1"
"#;

#[test]
fn minimal_config_gets_safe_defaults() {
    let c = Config::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!(c.cluster.group, "coroha");
    assert_eq!(c.ha.ipc, "127.0.0.1:4565");
    assert_eq!(c.policy.failback, Failback::Never);
    assert_eq!(c.policy.on_quorum_loss, QuorumLossAction::Benone);
    assert!(c.policy.secondary_dead);
    assert_eq!(c.nodes[0].get_ref().priority, 100);
}

#[test]
fn unknown_key_names_line_and_column() {
    let text = format!("{MINIMAL}colour = \"red\"\n");
    let e = Config::parse(&text, "x.toml").unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].column), (6, 1), "{}", e[0]);
    assert!(e[0].message.contains("unknown field `colour`"), "{}", e[0]);
    assert!(e[0].to_string().starts_with("x.toml:6:1: "));
}

#[test]
fn bad_duration_says_what_was_expected() {
    let text = format!("[policy]\nstartup_settle = \"soon\"\n{MINIMAL}");
    let e = Config::parse(&text, "x.toml").unwrap_err();
    assert_eq!(e[0].line, 2, "{}", e[0]);
    assert!(
        e[0].message.contains("expected numbers with units"),
        "{}",
        e[0]
    );
}

#[test]
fn durations_are_read_as_humantime_writes_them() {
    for (text, ms) in [
        ("500ms", 500),
        ("5s", 5_000),
        ("2m", 120_000),
        ("1h30m", 5_400_000),
        ("1h 30m", 5_400_000),
        ("10.045s", 10_045),
    ] {
        assert_eq!(Dur::parse(text), Ok(Dur::ms(ms)), "{text}");
    }
    // Too long to count in milliseconds: refused, not capped.
    for text in ["18446744073709551616s", "18446744073709551615s"] {
        assert!(Dur::parse(text).is_err(), "{text}");
    }
    let text = format!("[policy]\nstartup_settle = \"18446744073709551616s\"\n{MINIMAL}");
    let e = Config::parse(&text, "x.toml").unwrap_err();
    assert_eq!(e[0].line, 2, "{}", e[0]);
}

#[test]
fn duplicate_ids_point_at_the_second_node() {
    let text = format!("{MINIMAL}\n[[node]]\nname = \"n2\"\nid = 1\naddress = \"10.0.0.2\"\n");
    let e = Config::parse(&text, "x.toml").unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, 7, "{}", e[0]);
    assert!(e[0].message.contains("id 1 is used twice"));
}

#[test]
fn relay_must_name_a_node() {
    let text = format!("{MINIMAL}relay_via = \"n9\"\n");
    let e = Config::parse(&text, "x.toml").unwrap_err();
    assert!(
        e[0].message
            .contains("relay_via \"n9\" is not a configured node"),
        "{}",
        e[0]
    );
}

#[test]
fn fence_action_needs_a_fence_hook() {
    let text = format!("[policy]\non_quorum_loss = \"fence\"\n{MINIMAL}");
    let e = Config::parse(&text, "x.toml").unwrap_err();
    assert!(e[0].message.contains("needs [hooks] fence"), "{}", e[0]);
    assert_eq!(
        (e[0].line, e[0].column),
        (2, 1),
        "points at the key: {}",
        e[0]
    );
}

#[test]
fn token_and_token_file_together_point_at_token_file() {
    let text = format!("[ha]\ntoken = \"a\"\n  token_file = \"/f\"\n{MINIMAL}");
    let e = Config::parse(&text, "x.toml").unwrap_err();
    assert_eq!((e[0].line, e[0].column), (3, 3), "{}", e[0]);
}

#[test]
fn failback_forms() {
    for (text, want) in [
        ("never", Failback::Never),
        ("immediately", Failback::Immediately),
        ("after 5m", Failback::After(Dur::ms(300_000))),
    ] {
        let c = Config::parse(&format!("[policy]\nfailback = \"{text}\"\n{MINIMAL}"), "t").unwrap();
        assert_eq!(c.policy.failback, want);
    }
    let e = Config::parse(
        &format!("[policy]\nfailback = \"sometimes\"\n{MINIMAL}"),
        "t",
    )
    .unwrap_err();
    assert!(e[0].message.contains("expected \"never\""));
}

#[test]
fn access_check_needs_its_secret_file_and_ipc_is_checked() {
    let text = format!("[ha]\naccess_check = \"sha256\"\nipc = \"localhost\"\n{MINIMAL}");
    let e = Config::parse(&text, "x.toml").unwrap_err();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].message.contains("go together") && e[0].line == 2,
        "{}",
        e[0]
    );
    assert!(
        e[1].message.contains("expected host:port or unix:/path") && e[1].line == 3,
        "{}",
        e[1]
    );
    let ok = format!("[ha]\nipc = \"unix:/tmp/nso/nso-ipc\"\naccess_check = \"md5\"\naccess_secret_file = \"/etc/ipc\"\n{MINIMAL}");
    assert!(Config::parse(&ok, "x.toml").is_ok());
}

#[test]
fn token_is_never_rendered() {
    let text = format!("[ha]\ntoken = \"hunter2\"\n{MINIMAL}");
    let c = Config::parse(&text, "t").unwrap();
    assert!(!c.to_toml().contains("hunter2"));
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn effective_config_round_trips() {
    let c = Config::parse(MINIMAL, "t").unwrap();
    let again = Config::parse(&c.to_toml(), "t").unwrap();
    assert_eq!(again.to_toml(), c.to_toml());
}

#[test]
fn syntax_error_is_located() {
    let e = Config::parse("[cluster\ngroup = 1\n", "s.toml").unwrap_err();
    assert_eq!(e[0].line, 1);
    assert!(e[0].column > 1);
}

#[test]
fn reload_applies_policy_hooks_and_priorities_and_names_what_needs_a_restart() {
    let old = Config::parse(MINIMAL, "t.toml").unwrap();
    let text = "[cluster]\ngroup = \"other\"\n\n[policy]\nfailback = \"immediately\"\n\n[hooks]\non_primary = [\"/bin/true\"]\n\n[[node]]\nname = \"n1\"\nid = 1\naddress = \"10.0.0.1\"\npriority = 7\n";
    let new = Config::parse(text, "t.toml").unwrap();
    let r = old.reload(&new);
    assert_eq!(r.applied, ["[policy]", "[hooks]", "node n1"]);
    assert_eq!(r.needs_restart, ["[cluster]"]);
    assert_eq!(r.config.policy.failback, Failback::Immediately);
    assert_eq!(r.config.nodes[0].get_ref().priority, 7);
    assert_eq!(r.config.cluster.group, "coroha", "the running group stays");
    let moved = Config::parse(&MINIMAL.replace("10.0.0.1", "10.0.0.9"), "t.toml").unwrap();
    let r = old.reload(&moved);
    assert!(r.applied.is_empty());
    assert_eq!(r.needs_restart, ["[[node]] names, ids or addresses"]);
    assert_eq!(r.config.nodes[0].get_ref().address, "10.0.0.1");
}

#[test]
fn a_config_without_a_fence_hook_is_warned_about_with_its_location() {
    let text = format!("[hooks]\non_primary = [\"/bin/true\"]\n{MINIMAL}");
    let c = Config::parse(&text, "w.toml").unwrap();
    let w = c.warnings(&text);
    assert_eq!(w.len(), 3, "{w:?}");
    assert_eq!(w[0].0, 0, "points at the [hooks] table");
    assert!(w[0].1.contains("no [hooks] fence:"), "{}", w[0].1);
    assert!(w[1].1.contains("no [hooks] fence_node"), "{}", w[1].1);
    assert!(w[2].1.contains("on_quorum_loss"), "{}", w[2].1);
    let fenced = format!(
        "[hooks]\nfence = [\"systemctl\", \"restart\", \"ncs\"]\n\
         fence_node = [\"stonith_admin\", \"--reboot\", \"{{node}}\"]\n\
         [policy]\non_quorum_loss = \"fence\"\n{MINIMAL}"
    );
    let c = Config::parse(&fenced, "w.toml").unwrap();
    assert!(c.warnings(&fenced).is_empty(), "{:?}", c.warnings(&fenced));
}

#[test]
fn an_address_with_a_port_and_a_bare_listen_port_are_refused_where_written() {
    let text =
        "[http]\nlisten = \"9647\"\n[[node]]\nname = \"n1\"\nid = 1\naddress = \"10.0.0.1:4570\"\n";
    let e = Config::parse(text, "x.toml").unwrap_err();
    let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 2], "{e:?}");
    assert!(e[0].message.contains("without a port"), "{}", e[0]);
    assert!(
        e[1].message.contains("an IP address and a port"),
        "{}",
        e[1]
    );
    let fixed = text
        .replace("\"9647\"", "\"127.0.0.1:9647\"")
        .replace(":4570", "");
    assert!(Config::parse(&fixed, "x.toml").is_ok());
}

#[test]
fn a_besecondary_timeout_below_the_servers_own_is_refused() {
    let text = format!("[ha]\nbesecondary_timeout = \"5s\"\n{MINIMAL}");
    let e = Config::parse(&text, "x.toml").unwrap_err();
    assert_eq!((e.len(), e[0].line), (1, 2), "{e:?}");
    assert!(e[0].message.contains("at least 10000 ms"), "{}", e[0]);
    let ok = text.replace("\"5s\"", "\"10s\"");
    assert!(Config::parse(&ok, "x.toml").is_ok());
}

#[test]
fn every_syntax_error_is_located_not_only_the_first() {
    let text = format!("[policy]\nstartup_settle = 5s\n{MINIMAL}[ha\ntimeout = \"1s\"\n");
    let e = Config::parse(&text, "x.toml").unwrap_err();
    let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 8], "{e:?}");
}

#[test]
fn the_old_metrics_table_is_refused_with_its_new_name() {
    let text = "[metrics]\nlisten = \"127.0.0.1:9647\"\n[[node]]\nname = \"n1\"\nid = 1\naddress = \"10.0.0.1\"\n";
    let e = Config::parse(text, "old.toml").unwrap_err();
    assert_eq!((e.len(), e[0].line), (1, 1), "{e:?}");
    assert!(e[0].message.contains("[metrics] is [http] now"), "{}", e[0]);
}

#[test]
fn an_http_listener_beyond_loopback_without_a_token_is_warned_about() {
    let node = "[[node]]\nname = \"n1\"\nid = 1\naddress = \"10.0.0.1\"\n";
    let open = format!("[http]\nlisten = \"0.0.0.0:9647\"\n{node}");
    let c = Config::parse(&open, "h.toml").unwrap();
    let about_http: Vec<_> = c
        .warnings(&open)
        .into_iter()
        .filter(|(_, w)| w.starts_with("[http]"))
        .collect();
    assert_eq!(about_http.len(), 1, "{about_http:?}");
    for fine in [
        format!("[http]\nlisten = \"127.0.0.1:9647\"\n{node}"),
        format!(
            "[http]\nlisten = \"0.0.0.0:9647\"\ntoken_file = \"/etc/coroha/http.token\"\n\
             tls_cert = \"/etc/coroha/http.pem\"\ntls_key = \"/etc/coroha/http.key\"\n{node}"
        ),
    ] {
        let c = Config::parse(&fine, "h.toml").unwrap();
        assert!(
            c.warnings(&fine)
                .iter()
                .all(|(_, w)| !w.starts_with("[http]")),
            "{fine}"
        );
    }
    // A token beyond loopback without TLS crosses the network in clear.
    let clear = format!(
        "[http]\nlisten = \"0.0.0.0:9647\"\ntoken_file = \"/etc/coroha/http.token\"\n{node}"
    );
    let c = Config::parse(&clear, "h.toml").unwrap();
    let warned: Vec<_> = c
        .warnings(&clear)
        .into_iter()
        .filter(|(_, w)| w.contains("clear text"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
}

#[test]
fn pacemaker_role_attribute_is_off_by_default_and_checked_where_written() {
    let c = Config::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!(c.pacemaker.role_attribute, None);
    assert_eq!(c.pacemaker.refresh.as_ms(), 10_000);

    let text =
        format!("[pacemaker]\nrole_attribute = \"coroha-role\"\nrefresh = \"5s\"\n{MINIMAL}");
    let c = Config::parse(&text, "t.toml").unwrap();
    assert_eq!(c.pacemaker.role_attribute.as_deref(), Some("coroha-role"));
    assert_eq!(c.pacemaker.refresh.as_ms(), 5_000);

    let text =
        format!("[pacemaker]\nrole_attribute = \"coroha role\"\nrefresh = \"100ms\"\n{MINIMAL}");
    let e = Config::parse(&text, "x.toml").unwrap_err();
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(
        (e[0].line, e[0].message.contains("node attribute name")),
        (2, true),
        "{}",
        e[0]
    );
    assert_eq!(
        (e[1].line, e[1].message.contains("at least 1s")),
        (3, true),
        "{}",
        e[1]
    );
}
