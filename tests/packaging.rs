//! What the Debian package ships beside the binary stays true to it: the
//! hand-written coroha.toml(5) names every key of the schema, the sample
//! configuration parses, and the unit starts the binary where the package
//! puts it. (scripts/test-package.sh builds, installs and purges the
//! package itself.)

use coroha_config::{
    ClusterConfig, ControlConfig, Dur, Failback, HaConfig, HooksConfig, HttpConfig, NodeConfig,
    PolicyConfig, QuorumLossAction, Secret,
};
use std::path::{Path, PathBuf};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every key of a table as serde writes it. The structs are built field
/// by field, with every optional value set: a key added to the schema
/// does not compile here until it is listed, and then the man page must
/// name it.
fn keys_of<T: serde::Serialize>(table: &T) -> Vec<String> {
    match toml::Value::try_from(table).expect("serializes") {
        toml::Value::Table(t) => t.keys().cloned().collect(),
        other => panic!("not a table: {other:?}"),
    }
}

fn every_section() -> Vec<(&'static str, Vec<String>)> {
    let d = Dur::ms(1000);
    let path = || Some(PathBuf::from("/x"));
    vec![
        (
            "[cluster]",
            keys_of(&ClusterConfig {
                group: "g".into(),
                node: Some("n".into()),
                state_dir: "/x".into(),
            }),
        ),
        (
            "[ha]",
            keys_of(&HaConfig {
                ipc: "127.0.0.1:4569".into(),
                token: Some(Secret("t".into())),
                token_file: path(),
                access_check: Some(confd_ha::wire::AccessCheck::Md5),
                access_secret_file: path(),
                protocol: Some(82),
                connect_timeout: d,
                timeout: d,
                besecondary_timeout: d,
                status_interval: d,
                tick_timeout: d,
            }),
        ),
        (
            "[[node]]",
            keys_of(&NodeConfig {
                name: "n".into(),
                id: 1,
                address: "10.0.0.1".into(),
                priority: 1,
                can_primary: true,
                relay_via: Some("r".into()),
            }),
        ),
        (
            "[policy]",
            keys_of(&PolicyConfig {
                failback: Failback::Never,
                on_quorum_loss: QuorumLossAction::Benone,
                startup_settle: d,
                promotion_delay: d,
                orphan_grace: d,
                membership_detect: d,
                lease: Some(d),
                fence_race_delay: d,
                secondary_dead: true,
                fence_hung_primary: true,
                handover_timeout: d,
                max_order_failures: 3,
            }),
        ),
        (
            "[hooks]",
            keys_of(&HooksConfig {
                on_primary: vec!["x".into()],
                on_secondary: vec!["x".into()],
                on_none: vec!["x".into()],
                fence: vec!["x".into()],
                fence_node: vec!["x".into()],
                timeout: d,
            }),
        ),
        (
            "[control]",
            keys_of(&ControlConfig {
                socket: "/x".into(),
                group: Some("g".into()),
                admin_group: Some("g".into()),
            }),
        ),
        (
            "[http]",
            keys_of(&HttpConfig {
                listen: Some("127.0.0.1:1".into()),
                token_file: path(),
                max_connections: 1,
                tls_cert: path(),
                tls_key: path(),
            }),
        ),
    ]
}

#[test]
fn the_config_man_page_names_every_key_in_its_section() {
    let page = std::fs::read_to_string(repo("packaging/coroha.toml.5")).expect("man page");
    let mut missing = vec![];
    for (section, keys) in every_section() {
        // The section's part of the page: from its heading to the next.
        let start = page
            .find(&format!(".SH {section}"))
            .unwrap_or_else(|| panic!("no section {section} in coroha.toml(5)"));
        let rest = &page[start + 4..];
        let part = &rest[..rest.find("\n.SH ").unwrap_or(rest.len())];
        for key in keys {
            // A key is documented as a tagged paragraph: `.B key` (or in a
            // `.BR a ", " b` list of keys).
            let named = part.lines().any(|l| {
                let l = l.trim();
                l == format!(".B {key}")
                    || (l.starts_with(".BR ") && l.split([' ', '"', ',']).any(|w| w == key))
            });
            if !named {
                missing.push(format!("{section} {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "coroha.toml(5) does not describe: {missing:?}"
    );
}

#[test]
fn the_sample_config_parses_and_leaves_only_its_site_values_to_fill_in() {
    let path = repo("packaging/coroha.toml");
    let errors = coroha_config::Config::load_checked(&path, coroha_config::Checks::FileOnly)
        .expect_err("the sample's addresses are placeholders");
    let texts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(texts.len(), 3, "{texts:#?}");
    for (i, text) in texts.iter().enumerate() {
        assert!(
            text.contains(&format!("address \"SITE-ADDRESS-OF-NSO{}\"", i + 1)),
            "{text}"
        );
    }
    // Filled in, the file itself is valid.
    let filled = std::fs::read_to_string(&path)
        .expect("sample")
        .replace("SITE-ADDRESS-OF-NSO", "10.0.10.");
    let dir = std::env::temp_dir().join(format!("coroha-sample-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("coroha.toml");
    std::fs::write(&file, filled).expect("write");
    let loaded = coroha_config::Config::load_checked(&file, coroha_config::Checks::FileOnly);
    std::fs::remove_dir_all(&dir).expect("clean up");
    let (config, _warnings) = loaded.expect("the filled-in sample is valid");
    assert_eq!(config.nodes.len(), 3);
}

#[test]
fn the_unit_starts_the_packaged_binary_with_the_packaged_files() {
    let unit = std::fs::read_to_string(repo("packaging/coroha.service")).expect("unit");
    assert!(unit
        .lines()
        .any(|l| l == "ExecStart=/usr/sbin/coroha run --config /etc/coroha/coroha.toml"));
    assert!(unit
        .lines()
        .any(|l| l == "EnvironmentFile=-/etc/default/coroha"));
    assert!(unit
        .lines()
        .any(|l| l.starts_with("Documentation=man:coroha(8)")));
    let default = std::fs::read_to_string(repo("packaging/default")).expect("default");
    for var in ["COROHA_LOG_FORMAT=", "COROHA_LOG="] {
        assert!(default.lines().any(|l| l.starts_with(var)), "{var}");
    }
}
