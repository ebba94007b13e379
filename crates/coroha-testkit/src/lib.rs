//! What coroha's tests share: the ConfD 8.2.5 captures
//! (data/confd-8.2.5-ha-vectors.json, byte-exact conversations with a real
//! server), distinct free ports, and where the workspace's binaries are.

use serde::Deserialize;

#[derive(Deserialize, Clone)]
pub struct Case {
    pub name: String,
    pub steps: Vec<Step>,
    /// What happened off the wire (kills, freezes, closes), by time.
    #[serde(default)]
    pub timeline: Vec<Note>,
}

#[derive(Deserialize, Clone)]
pub struct Note {
    pub t_ms: u64,
    pub note: String,
}

#[derive(Deserialize, Clone)]
pub struct Step {
    /// `c2s` or `s2c`.
    pub dir: String,
    /// The exact bytes; empty where that side closed.
    pub hex: String,
    pub decoded: String,
    pub conn: String,
    #[serde(default)]
    pub t_ms: u64,
}

pub fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/confd-8.2.5-ha-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("vectors JSON")
}

/// The MAAPI read-only cases of the IPC captures from the same server
/// (data/confd-8.2.5-maapi-readonly-vectors.json).
pub fn maapi_read_only_cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/confd-8.2.5-maapi-readonly-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("vectors JSON")
}

/// The CDB connections of the IPC captures from the same server, each
/// case reduced to its `cdb_get_txid` socket(s)
/// (data/confd-8.2.5-cdb-txid-vectors.json).
pub fn cdb_txid_cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/confd-8.2.5-cdb-txid-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("vectors JSON")
}

pub fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// The steps of each connection of a case, connections in order of
/// appearance.
pub fn connections(case: &Case) -> Vec<(String, Vec<Step>)> {
    let mut conns: Vec<String> = vec![];
    for s in &case.steps {
        if !conns.contains(&s.conn) {
            conns.push(s.conn.clone());
        }
    }
    conns
        .into_iter()
        .map(|c| {
            let steps = case.steps.iter().filter(|s| s.conn == c).cloned().collect();
            (c, steps)
        })
        .collect()
}

/// Distinct free TCP ports (the listeners are held until all are chosen,
/// or the kernel may hand out the same one twice).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|k| held[k].local_addr().unwrap().port())
}

/// A binary of the workspace, found beside the test's own binary (cargo
/// puts every package's binaries in one target directory). `cargo test
/// --workspace` builds them all before any test runs.
pub fn workspace_bin(beside: &str, name: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(beside).with_file_name(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace` (or `cargo build -p {name}` first)",
        path.display()
    );
    path
}
