//! HTTP in the lab: each node's listener (`[http] listen`), HAProxy in
//! front of the nodes as a load balancer that follows the primary, and a
//! Prometheus server that scrapes a node.

use super::{addr, sh, Lab};
use std::fs;
use std::process::{Child, Command, Stdio};

impl Lab {
    /// `GET path` on node `id`'s HTTP listener (`[http] listen`): the
    /// status code and the body, or none when nothing answers.
    pub fn http_get(&self, id: u32, path: &str) -> Option<(u16, String)> {
        let out = self.in_node(
            id,
            &format!(
                "exec 3<>/dev/tcp/127.0.0.1/9647 && printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
            ),
        );
        parse_http(&String::from_utf8_lossy(&out.stdout))
    }

    /// A Prometheus server in node `id`'s namespace scraping its coroha's
    /// `/metrics` every second (Debian's package `prometheus`).
    pub fn prometheus(&self, id: u32) -> Prometheus {
        let dir = self.node(id).dir.join("prometheus");
        fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("prometheus.yml");
        fs::write(
            &cfg,
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: coroha\n    \
             static_configs:\n      - targets: ['127.0.0.1:9647']\n",
        )
        .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.node(id).ns, "prometheus"])
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:9090")
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus (Debian package prometheus)");
        Prometheus {
            child,
            ns: self.node(id).ns.clone(),
        }
    }

    /// HAProxy in the bridge's namespace (address 10.213.0.250), sending
    /// what reaches 127.0.0.1:8000 there to the node whose coroha answers
    /// 200 on `/primary`: the check of docs/haproxy.cfg, in HTTP mode and
    /// with faster timings. The lab's nodes must answer HTTP on their
    /// addresses ([`Lab::http_on_node_address`]).
    pub fn haproxy(&self) -> Haproxy {
        // An address on the bridge to reach the nodes from, and loopback
        // (down in a new namespace) for the front end.
        let _ = sh(&format!(
            "ip netns exec {b} ip addr add 10.213.0.250/24 dev br0; ip netns exec {b} ip link set lo up",
            b = self.bridge
        ));
        let servers: String = self
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "    server n{id} {a}:9647 check\n",
                    id = n.id,
                    a = addr(n.id)
                )
            })
            .collect();
        let cfg = self.dir.join("haproxy.cfg");
        fs::write(
            &cfg,
            format!(
                "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
                 frontend nso\n    bind 127.0.0.1:8000\n    default_backend primary\n\
                 backend primary\n    option httpchk\n    http-check send meth HEAD uri /primary\n\
                 \x20   http-check expect status 200\n\
                 \x20   default-server inter 200ms fall 1 rise 1 on-marked-down shutdown-sessions\n{servers}"
            ),
        )
        .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.bridge, "haproxy", "-db", "-f"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.dir.join("haproxy.log")).unwrap())
            .spawn()
            .expect("haproxy (Debian package haproxy)");
        Haproxy {
            child,
            bridge: self.bridge.clone(),
        }
    }
}

/// HAProxy running in the lab's bridge namespace; stopped when dropped.
pub struct Haproxy {
    child: Child,
    bridge: String,
}

impl Haproxy {
    /// `GET path` through HAProxy: the status code and the body, or none
    /// when it answers nothing.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.bridge, "bash", "-c"])
            .arg(format!(
                "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
            ))
            .output()
            .ok()?;
        parse_http(&String::from_utf8_lossy(&out.stdout))
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code and body of an HTTP response.
fn parse_http(text: &str) -> Option<(u16, String)> {
    let code = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((code, body.to_string()))
}

/// A Prometheus server in a node's namespace; stopped when dropped.
pub struct Prometheus {
    child: Child,
    ns: String,
}

impl Prometheus {
    /// `GET path` on the Prometheus API: the status code and the body.
    fn api(&self, path: &str) -> Option<(u16, String)> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "bash", "-c"])
            .arg(format!(
                // The path is printf's argument, not its format: it holds
                // percent signs.
                "exec 3<>/dev/tcp/127.0.0.1/9090 && printf '%s\\r\\n\\r\\n' 'GET {path} HTTP/1.0' >&3 && cat <&3"
            ))
            .output()
            .ok()?;
        parse_http(&String::from_utf8_lossy(&out.stdout))
    }

    /// What Prometheus says of its scrape target (health, last error).
    pub fn target_health(&self) -> String {
        let Some((_, body)) = self.api("/api/v1/targets") else {
            return "Prometheus does not answer".into();
        };
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let target = &answer["data"]["activeTargets"][0];
        format!("{} {}", target["health"], target["lastError"])
    }

    /// The value of the instant query `expr` (one series), if it has one.
    pub fn query(&self, expr: &str) -> Option<String> {
        // Percent-encode what a query needs beyond letters and digits.
        let q: String = expr
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (code, body) = self.api(&format!("/api/v1/query?query={q}"))?;
        let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
        if code != 200 {
            return None;
        }
        let value = answer["data"]["result"][0]["value"][1].as_str()?;
        Some(value.to_string())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
