//! The byte streams a fake node serves its clients on: TCP or a unix
//! socket, accepted for as long as the process runs, read as frames.

use confd_ha::wire;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {
    /// Make the close a reset (RST), not a FIN: what the real server does
    /// to a connection whose access check is configured on one side only.
    /// Nothing on a unix socket.
    fn reset_on_close(&self) {}
}

impl Conn for tokio::net::TcpStream {
    fn reset_on_close(&self) {
        let _ = self.set_zero_linger();
    }
}

impl Conn for tokio::net::UnixStream {}

/// Accept connections on a TCP or unix endpoint for as long as the
/// process runs, handing each to `serve`; an error if it cannot listen.
pub async fn accept(
    endpoint: &confd_ha::client::Endpoint,
    serve: impl Fn(Box<dyn Conn>),
) -> Result<(), String> {
    use confd_ha::client::Endpoint;
    match endpoint {
        Endpoint::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            while let Ok((s, _)) = listener.accept().await {
                let _ = s.set_nodelay(true);
                serve(Box::new(s));
            }
        }
        Endpoint::Unix(path) => {
            let _ = std::fs::remove_file(path);
            let listener = tokio::net::UnixListener::bind(path)
                .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
            while let Ok((s, _)) = listener.accept().await {
                serve(Box::new(s));
            }
        }
    }
    Ok(())
}

/// Reads frames; cancel-safe, so it can sit in a `select!`.
pub struct FrameReader<R> {
    inner: R,
    frames: wire::Deframer,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            frames: wire::Deframer::default(),
        }
    }

    /// The next frame; `None` at EOF, on an error or an oversized frame.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 4096];
        loop {
            match self.frames.next_frame() {
                Ok(Some(f)) => return Some(f),
                Ok(None) => {}
                Err(_) => return None,
            }
            match self.inner.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.frames.push(&buf[..n]),
            }
        }
    }
}
