//! A deadline on the first bytes a client sends once the TLS handshake is done.
//!
//! The webhook port serves HTTP/1.1 and HTTP/2 on one listener; hyper-util tells them apart by
//! reading the start of the connection (the HTTP/2 preface, or anything else), and it waits for
//! those bytes without a limit. Neither timeout of the server covers that wait:
//! `--handshake-timeout` ends with the TLS handshake, and hyper starts the
//! `--header-read-timeout` timer only once HTTP/1 parsing begins. So a client that completes the
//! handshake and then sends nothing — or the first bytes of the HTTP/2 preface and then
//! nothing — would hold its connection for ever. [`PrefaceAcceptor`] reads those bytes itself,
//! under the header-read timeout, closes the connection when they do not come, and hands them
//! back to the connection through [`Rewind`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use bytes::{Buf as _, Bytes};
use tokio::io::{AsyncRead, AsyncReadExt as _, ReadBuf};

/// What an HTTP/2 connection starts with (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Wraps an acceptor (the TLS one): the client's first bytes must follow within `timeout`.
#[derive(Debug, Clone)]
pub(crate) struct PrefaceAcceptor<A> {
    inner: A,
    timeout: Duration,
}

impl<A> PrefaceAcceptor<A> {
    pub(crate) fn new(inner: A, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

type Accepted<T, S> = Pin<Box<dyn Future<Output = io::Result<(Rewind<T>, S)>> + Send>>;

impl<A, I, S> Accept<I, S> for PrefaceAcceptor<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: AsyncRead + Unpin + Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Rewind<A::Stream>;
    type Service = A::Service;
    type Future = Accepted<A::Stream, A::Service>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        let timeout = self.timeout;
        Box::pin(async move {
            let (mut stream, service) = accepted.await?;
            let start = tokio::time::timeout(timeout, read_protocol_start(&mut stream))
                .await
                .map_err(|_elapsed| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent nothing within the header read timeout",
                    )
                })??;
            Ok((Rewind { start, stream }, service))
        })
    }
}

/// Reads until the bytes are the whole HTTP/2 preface or stop matching it (an HTTP/1 request
/// line does so by its second byte), or the client closes: what the protocol choice needs.
async fn read_protocol_start<T: AsyncRead + Unpin>(stream: &mut T) -> io::Result<Bytes> {
    let mut start = [0u8; H2_PREFACE.len()];
    let mut filled = 0;
    while filled < start.len() && start[..filled] == H2_PREFACE[..filled] {
        let read = stream.read(&mut start[filled..]).await?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    Ok(Bytes::copy_from_slice(&start[..filled]))
}

/// A stream that yields `start` before what is still to be read from `stream`.
#[derive(Debug)]
pub(crate) struct Rewind<T> {
    start: Bytes,
    stream: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.start.is_empty() {
            return Pin::new(&mut self.stream).poll_read(cx, buf);
        }
        let n = self.start.len().min(buf.remaining());
        buf.put_slice(&self.start[..n]);
        self.start.advance(n);
        Poll::Ready(Ok(()))
    }
}

// Writes go straight to the connection.
delegate_async_write!(Rewind, stream);

#[cfg(test)]
mod tests {
    use super::*;
    use axum_server::accept::DefaultAcceptor;
    use tokio::io::AsyncWriteExt as _;

    const TIMEOUT: Duration = Duration::from_millis(200);

    /// Accepts the server end of an in-memory connection whose client end is returned.
    fn accept(
        acceptor: &PrefaceAcceptor<DefaultAcceptor>,
    ) -> (
        tokio::io::DuplexStream,
        Accepted<tokio::io::DuplexStream, ()>,
    ) {
        let (client, server) = tokio::io::duplex(1024);
        (client, acceptor.accept(server, ()))
    }

    #[tokio::test]
    async fn the_bytes_read_to_choose_the_protocol_are_replayed() {
        let acceptor = PrefaceAcceptor::new(DefaultAcceptor::new(), TIMEOUT);
        for sent in [
            &b"POST /mutate HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04",
        ] {
            let (mut client, accepted) = accept(&acceptor);
            client.write_all(sent).await.unwrap();
            drop(client);
            let (mut stream, ()) = accepted.await.unwrap();
            let mut received = Vec::new();
            stream.read_to_end(&mut received).await.unwrap();
            assert_eq!(received, sent);
        }
    }

    #[tokio::test]
    async fn an_http1_request_line_is_told_by_its_second_byte() {
        let mut reader = OneByteAtATime(b"POST /mutate HTTP/1.1\r\n");
        let start = read_protocol_start(&mut reader).await.unwrap();
        assert_eq!(&start[..], b"PO");
        assert_eq!(reader.0, b"ST /mutate HTTP/1.1\r\n", "nothing more is read");
    }

    #[tokio::test]
    async fn silence_or_a_partial_preface_is_cut_after_the_timeout() {
        let acceptor = PrefaceAcceptor::new(DefaultAcceptor::new(), TIMEOUT);
        for sent in [&b""[..], b"P", b"PRI * HTTP/2.0\r\n"] {
            let (mut client, accepted) = accept(&acceptor);
            client.write_all(sent).await.unwrap();
            let started = std::time::Instant::now();
            let error = accepted.await.expect_err("the connection is refused");
            assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{sent:?}");
            assert!(started.elapsed() >= TIMEOUT, "{sent:?}");
        }
    }

    #[tokio::test]
    async fn a_client_that_closes_at_once_is_handed_on() {
        let acceptor = PrefaceAcceptor::new(DefaultAcceptor::new(), TIMEOUT);
        let (client, accepted) = accept(&acceptor);
        drop(client);
        let (mut stream, ()) = accepted.await.unwrap();
        assert_eq!(stream.read(&mut [0u8; 8]).await.unwrap(), 0);
    }

    /// A reader that yields one byte per read.
    struct OneByteAtATime(&'static [u8]);

    impl AsyncRead for OneByteAtATime {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some((first, rest)) = self.0.split_first() {
                buf.put_slice(&[*first]);
                self.0 = rest;
            }
            Poll::Ready(Ok(()))
        }
    }
}
