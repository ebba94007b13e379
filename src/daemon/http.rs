//! The HTTP listener (`[http] listen`): the health endpoints a load
//! balancer checks, in the manner of Patroni's REST API, the status as
//! JSON and the Prometheus metrics.
//!
//! | path | 200 when | 503 otherwise, with the reason |
//! |---|---|---|
//! | `/primary` | this node's NSO/ConfD is the writable primary of a quorate view | |
//! | `/secondary` | it is a secondary of the current primary, in sync | |
//! | `/health` | the daemon runs and its NSO/ConfD answers | |
//! | `/readiness` | either of the first two | |
//! | `/status` | always: `coroha status --json` | token |
//! | `/metrics` | always: Prometheus text | token |
//!
//! GET and HEAD only (405 for anything else), 404 for other paths. With
//! `[http] token_file`, `/status` and `/metrics` need `Authorization:
//! Bearer <token>` (401 without it); the health endpoints tell only yes
//! or no and answer anybody. Every answer comes from the daemon's main
//! loop, as the control socket's do (`control.rs`); this module only
//! speaks HTTP: hyper serves at most `max_connections` connections at
//! once, each for a bounded time, and axum routes.

use super::control::{ask, Ask, Caller};
use crate::control::{Reply, Request, StatusReport};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use coroha_policy::Probe;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::TlsAcceptor;

/// A client has this long to send a request's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection is closed after this long, whatever it is doing: a
/// health check or a scrape takes milliseconds.
const CONNECTION_LIMIT: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct Http {
    asks: mpsc::Sender<Ask>,
    /// What `/status` and `/metrics` require, if set.
    token: Option<Arc<[u8]>>,
}

/// The routes, answering from `asks`.
pub fn router(asks: mpsc::Sender<Ask>, token: Option<Vec<u8>>) -> Router {
    let probe_route = |probe: Probe| get(move |state| answer_probe(state, probe));
    Router::new()
        .route("/primary", probe_route(Probe::Primary))
        .route("/secondary", probe_route(Probe::Secondary))
        .route("/health", probe_route(Probe::Health))
        .route("/readiness", probe_route(Probe::Readiness))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(Http {
            asks,
            token: token.map(Arc::from),
        })
}

/// Serve `router` on `listener`, over TLS when `tls` is given, at most
/// `max_connections` at once: the next connection is accepted when one
/// closes.
pub fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    tls: Option<TlsAcceptor>,
) {
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!("HTTP listener: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let router = router.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                // The whole connection, handshake included, within the
                // limit: a client that stalls the handshake holds its slot
                // no longer than one that stalls a request.
                let _ = tokio::time::timeout(CONNECTION_LIMIT, async move {
                    match tls {
                        None => serve_one(stream, router).await,
                        Some(tls) => {
                            match tokio::time::timeout(HEAD_TIMEOUT, tls.accept(stream)).await {
                                Ok(Ok(stream)) => serve_one(stream, router).await,
                                Ok(Err(e)) => tracing::debug!("HTTP listener: TLS handshake: {e}"),
                                Err(_) => tracing::debug!("HTTP listener: TLS handshake timed out"),
                            }
                        }
                    }
                })
                .await;
                drop(slot);
            });
        }
    });
}

/// One HTTP/1 connection on `stream`, plain or TLS.
async fn serve_one<S>(stream: S, router: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn status_report(asks: &mpsc::Sender<Ask>) -> Result<StatusReport, Response> {
    match ask(asks, Request::Status, Caller::READER).await {
        Reply::Status(report) => Ok(*report),
        other => Err(not_answered(other)),
    }
}

/// The daemon did not answer as asked (it is stopping).
fn not_answered(reply: Reply) -> Response {
    let why = match reply {
        Reply::Refused(why) => why,
        other => format!("unexpected answer: {other:?}"),
    };
    (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response()
}

async fn answer_probe(State(http): State<Http>, probe: Probe) -> Response {
    let report = match status_report(&http.asks).await {
        Ok(report) => report,
        Err(response) => return response,
    };
    let policy = &report.policy;
    match policy.probe(probe) {
        Ok(()) => {
            let role = policy.role.map_or("unknown", confd_ha::HaRole::name);
            (StatusCode::OK, format!("{}: {role}\n", policy.node)).into_response()
        }
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}: {why}\n", policy.node),
        )
            .into_response(),
    }
}

async fn status(State(http): State<Http>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorized(&http, &headers) {
        return refused;
    }
    match status_report(&http.asks).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(response) => response,
    }
}

async fn metrics(State(http): State<Http>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorized(&http, &headers) {
        return refused;
    }
    match ask(&http.asks, Request::Metrics, Caller::READER).await {
        Reply::Metrics(text) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
        other => not_answered(other),
    }
}

/// The request carries the configured bearer token, or none is needed.
fn authorized(http: &Http, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = &http.token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    if given.is_some_and(|g| same_secret(g, token)) {
        return Ok(());
    }
    Err((
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "a bearer token is needed ([http] token_file)\n",
    )
        .into_response())
}

/// Equal, in a time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::samples::{member, status as sample_status};
    use crate::corosync::CorosyncView;
    use confd_ha::HaRole;
    use coroha_policy::freshness::DataState;
    use coroha_policy::message::Health;
    use coroha_policy::{MemberStatus, Status};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// n1 as primary (writable) with n2 attached and in sync.
    fn primary() -> Status {
        Status {
            writable: true,
            ..sample_status(
                "n1",
                vec![
                    member("n1", HaRole::Primary, 3, None, false),
                    member("n2", HaRole::Secondary, 3, Some("n1"), false),
                ],
            )
        }
    }

    /// The same cluster seen from n2.
    fn secondary() -> Status {
        Status {
            node: "n2".into(),
            role: Some(HaRole::Secondary),
            parent: Some("n1".into()),
            writable: false,
            ..primary()
        }
    }

    fn answers(status: &Status) -> [bool; 4] {
        [
            Probe::Primary,
            Probe::Secondary,
            Probe::Health,
            Probe::Readiness,
        ]
        .map(|p| status.probe(p).is_ok())
    }

    #[test]
    fn the_primary_and_its_secondary_answer_their_own_probes() {
        // primary, secondary, health, readiness
        assert_eq!(answers(&primary()), [true, false, true, true]);
        assert_eq!(answers(&secondary()), [false, true, true, true]);
    }

    #[test]
    fn a_primary_without_its_lease_or_quorum_is_not_the_primary() {
        let read_only = Status {
            writable: false,
            ..primary()
        };
        assert_eq!(answers(&read_only), [false, false, true, false]);
        assert_eq!(
            read_only.probe(Probe::Primary),
            Err("primary without quorum or lease: read-only".into())
        );
        let stopping = Status {
            stopping: true,
            ..primary()
        };
        assert_eq!(answers(&stopping), [false, false, true, false]);
    }

    #[test]
    fn a_secondary_behind_or_of_another_node_is_not_a_secondary() {
        let mut behind = secondary();
        behind.members[1] = MemberStatus {
            data: DataState::Behind,
            ..behind.members[1].clone()
        };
        assert_eq!(behind.probe(Probe::Secondary), Err("data behind".into()));
        let elsewhere = Status {
            parent: Some("n3".into()),
            ..secondary()
        };
        assert_eq!(
            elsewhere.probe(Probe::Secondary),
            Err("attached to n3, not to primary n1".into())
        );
        let no_quorum = Status {
            primary: None,
            ..secondary()
        };
        assert_eq!(answers(&no_quorum), [false, false, true, false]);
    }

    #[test]
    fn a_server_that_does_not_answer_fails_every_probe() {
        let hung = Status {
            health: Health::Hung,
            ..primary()
        };
        assert_eq!(answers(&hung), [false; 4]);
        assert_eq!(hung.probe(Probe::Health), Err("NSO/ConfD is hung".into()));
    }

    /// A daemon main loop that answers with `status` and some metrics.
    fn daemon(status: Status) -> mpsc::Sender<Ask> {
        let (tx, mut rx) = mpsc::channel::<Ask>(4);
        tokio::spawn(async move {
            while let Some((request, _, reply)) = rx.recv().await {
                let answer = match request {
                    Request::Status => Reply::Status(Box::new(StatusReport {
                        policy: status.clone(),
                        corosync: CorosyncView::default(),
                        last_change: None,
                        last_hook_failure: None,
                    })),
                    Request::Metrics => Reply::Metrics("coroha_quorate 1\n".into()),
                    _ => Reply::Refused("not here".into()),
                };
                let _ = reply.send(answer);
            }
        });
        tx
    }

    /// Start a listener for `status` on a free port.
    async fn listener(status: Status, token: Option<&str>, max_connections: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let token = token.map(|t| t.as_bytes().to_vec());
        serve(
            listener,
            router(daemon(status), token),
            max_connections,
            None,
        );
        addr
    }

    /// One request: the status code and the body.
    async fn request(addr: &str, method: &str, path: &str, extra: &str) -> (u16, String) {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        request_on(stream, method, path, extra).await
    }

    /// One request on a connected stream, plain or TLS.
    async fn request_on<S>(mut stream: S, method: &str, path: &str, extra: &str) -> (u16, String)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let head =
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut bytes = vec![];
        // A TLS peer may end without close_notify: what was read counts.
        let _ = stream.read_to_end(&mut bytes).await;
        let text = String::from_utf8_lossy(&bytes);
        let code = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (code, body.to_string())
    }

    #[tokio::test]
    async fn with_a_certificate_it_answers_over_tls_and_nothing_in_clear() {
        let dir = std::env::temp_dir().join(format!("coroha-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, issued.cert.pem()).unwrap();
        std::fs::write(&key, issued.key_pair.serialize_pem()).unwrap();
        let tls = crate::daemon::tls::acceptor(&cert, &key).expect("a valid pair");
        let Err(missing) = crate::daemon::tls::acceptor(&cert, &dir.join("nope.pem")) else {
            panic!("a missing key file was taken");
        };
        assert!(missing.starts_with("[http] tls_key "), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        serve(listener, router(daemon(primary()), None), 4, Some(tls));

        let mut roots = rustls::RootCertStore::empty();
        roots.add(issued.cert.der().clone()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let stream = connector.connect(name, tcp).await.expect("TLS handshake");
        assert_eq!(
            request_on(stream, "GET", "/primary", "").await,
            (200, "n1: primary\n".into())
        );
        // Plain HTTP on the TLS port gets no HTTP answer.
        let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
        plain
            .write_all(b"GET /primary HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = vec![];
        let _ = plain.read_to_end(&mut answer).await;
        assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    }

    #[tokio::test]
    async fn a_load_balancer_finds_the_primary_by_its_status_code() {
        let p = listener(primary(), None, 4).await;
        let s = listener(secondary(), None, 4).await;
        assert_eq!(
            request(&p, "GET", "/primary", "").await,
            (200, "n1: primary\n".into())
        );
        assert_eq!(
            request(&s, "GET", "/primary", "").await,
            (503, "n2: role secondary\n".into())
        );
        assert_eq!(request(&s, "GET", "/secondary", "").await.0, 200);
        assert_eq!(request(&p, "GET", "/secondary", "").await.0, 503);
        for addr in [&p, &s] {
            assert_eq!(request(addr, "GET", "/health", "").await.0, 200);
            assert_eq!(request(addr, "GET", "/readiness", "").await.0, 200);
        }
        // HAProxy's `option httpchk HEAD /primary`.
        let (code, body) = request(&p, "HEAD", "/primary", "").await;
        assert_eq!((code, body.as_str()), (200, ""));
    }

    #[tokio::test]
    async fn other_paths_and_methods_are_refused() {
        let p = listener(primary(), None, 4).await;
        assert_eq!(request(&p, "GET", "/", "").await.0, 404);
        assert_eq!(request(&p, "GET", "/leader", "").await.0, 404);
        let post = "Content-Length: 0\r\n";
        assert_eq!(request(&p, "POST", "/primary", post).await.0, 405);
        assert_eq!(request(&p, "DELETE", "/status", "").await.0, 405);
    }

    #[tokio::test]
    async fn status_and_metrics_need_the_token_when_one_is_set() {
        let p = listener(primary(), Some("s3cret"), 4).await;
        assert_eq!(request(&p, "GET", "/metrics", "").await.0, 401);
        let wrong = "Authorization: Bearer s3cre7\r\n";
        assert_eq!(request(&p, "GET", "/status", wrong).await.0, 401);
        let right = "Authorization: Bearer s3cret\r\n";
        let (code, body) = request(&p, "GET", "/metrics", right).await;
        assert_eq!((code, body.as_str()), (200, "coroha_quorate 1\n"));
        let (code, body) = request(&p, "GET", "/status", right).await;
        assert_eq!(code, 200);
        let report: StatusReport = serde_json::from_str(&body).unwrap();
        assert_eq!(report.policy, primary());
        // The health endpoints answer anybody.
        assert_eq!(request(&p, "GET", "/primary", "").await.0, 200);
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_for_one_to_close() {
        let p = listener(primary(), None, 1).await;
        // One idle connection takes the only slot...
        let idle = tokio::net::TcpStream::connect(&p).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting = tokio::spawn({
            let p = p.clone();
            async move { request(&p, "GET", "/primary", "").await.0 }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "served beyond the limit");
        // ...and the next is served once it closes.
        drop(idle);
        assert_eq!(waiting.await.unwrap(), 200);
    }
}
