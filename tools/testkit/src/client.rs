//! A small HTTPS client for loopback use by the integration tests and the load tool.
//!
//! It is hyper's connection-level client over tokio-rustls (ring), rather than a pooled client
//! such as reqwest, because both users need to control connections exactly: the load tool
//! holds a fixed number of them, and the tests inspect each handshake (negotiated ALPN and TLS
//! version, the certificate the server presented). The server is always verified against a
//! given CA; there is no "insecure" switch.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Why a connection or request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA, client certificate or protocol selection is unusable.
    #[error("client TLS configuration: {0}")]
    Config(String),
    /// The server name is not a valid DNS name or IP address.
    #[error("invalid server name {0:?}")]
    ServerName(String),
    /// TCP connect failed.
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The TLS handshake failed (including certificate verification).
    #[error("TLS handshake: {0}")]
    Handshake(#[source] std::io::Error),
    /// HTTP-level failure (connection closed, protocol error).
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(#[from] http::Error),
}

/// Which HTTP version to speak; it is also the only ALPN protocol offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// `http/1.1`, one request at a time per connection.
    Http1,
    /// `h2`, concurrent streams on one connection.
    Http2,
}

impl HttpVersion {
    fn alpn(self) -> &'static [u8] {
        match self {
            HttpVersion::Http1 => b"http/1.1",
            HttpVersion::Http2 => b"h2",
        }
    }
}

/// What a client trusts and presents.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// PEM of the CA(s) the server certificate must chain to.
    pub ca_pem: Vec<u8>,
    /// HTTP version to negotiate.
    pub version: HttpVersion,
    /// TLS versions offered; empty means 1.3 and 1.2.
    pub tls_versions: Vec<&'static SupportedProtocolVersion>,
    /// Client certificate chain and key (PEM), for servers that require mutual TLS.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl ClientTls {
    /// Trust `ca_pem`, speak `version`, offer TLS 1.3 and 1.2, no client certificate.
    pub fn new(ca_pem: impl Into<Vec<u8>>, version: HttpVersion) -> Self {
        Self {
            ca_pem: ca_pem.into(),
            version,
            tls_versions: Vec::new(),
            client_identity: None,
        }
    }

    /// Builds the rustls client configuration (ring provider).
    pub fn build(&self) -> Result<Arc<ClientConfig>, ClientError> {
        let config_err = |e: &dyn std::fmt::Display| ClientError::Config(e.to_string());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca_pem) {
            roots
                .add(cert.map_err(|e| config_err(&e))?)
                .map_err(|e| config_err(&e))?;
        }
        if roots.is_empty() {
            return Err(ClientError::Config("no CA certificate in PEM".to_owned()));
        }
        let versions: &[&'static SupportedProtocolVersion] = if self.tls_versions.is_empty() {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        } else {
            &self.tls_versions
        };
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)
                .map_err(|e| config_err(&e))?
                .with_root_certificates(roots);
        let mut config = match &self.client_identity {
            None => builder.with_no_client_auth(),
            Some((cert_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| config_err(&e))?;
                let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| config_err(&e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| config_err(&e))?
            }
        };
        config.alpn_protocols = vec![self.version.alpn().to_vec()];
        Ok(Arc::new(config))
    }
}

/// What the TLS handshake negotiated.
#[derive(Debug, Clone)]
pub struct HandshakeInfo {
    /// ALPN protocol the server chose.
    pub alpn: Option<Vec<u8>>,
    /// TLS version.
    pub tls_version: Option<ProtocolVersion>,
    /// The leaf certificate the server presented.
    pub peer_certificate: Option<CertificateDer<'static>>,
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One HTTPS connection.
pub struct Connection {
    sender: Sender,
    authority: String,
    info: HandshakeInfo,
}

/// A response with its body read.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl ClientResponse {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Connects to `addr`, verifying the server's certificate for `server_name`.
pub async fn connect(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Result<Connection, ClientError> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|_| ClientError::ServerName(server_name.to_owned()))?;
    let h2 = config.alpn_protocols.iter().any(|p| p == b"h2");
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(ClientError::Connect)?;
    tcp.set_nodelay(true).map_err(ClientError::Connect)?;
    let tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(ClientError::Handshake)?;
    let session = tls.get_ref().1;
    let info = HandshakeInfo {
        alpn: session.alpn_protocol().map(<[u8]>::to_vec),
        tls_version: session.protocol_version(),
        peer_certificate: session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned()),
    };
    let io = TokioIo::new(tls);
    let sender = if h2 && info.alpn.as_deref() == Some(b"h2".as_slice()) {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        Sender::H2(sender)
    } else {
        let (sender, conn) = http1::handshake(io).await?;
        tokio::spawn(conn);
        Sender::H1(sender)
    };
    Ok(Connection {
        sender,
        authority: format!("{server_name}:{}", addr.port()),
        info,
    })
}

impl Connection {
    /// What the handshake negotiated.
    pub fn info(&self) -> &HandshakeInfo {
        &self.info
    }

    /// True when the connection speaks HTTP/2.
    pub fn is_http2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }

    /// Another handle on the same HTTP/2 connection (a new stream per request); `None` for
    /// HTTP/1, which serves one request at a time.
    pub fn try_clone(&self) -> Option<Connection> {
        match &self.sender {
            Sender::H2(sender) => Some(Connection {
                sender: Sender::H2(sender.clone()),
                authority: self.authority.clone(),
                info: self.info.clone(),
            }),
            Sender::H1(_) => None,
        }
    }

    /// Sends one request and reads the whole response.
    pub async fn send(
        &mut self,
        method: http::Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<ClientResponse, ClientError> {
        let mut builder = Request::builder().method(method);
        builder = match self.sender {
            // HTTP/2 carries the authority in the :authority pseudo-header, taken from the URI.
            Sender::H2(_) => builder.uri(format!("https://{}{path_and_query}", self.authority)),
            Sender::H1(_) => builder
                .uri(path_and_query)
                .header(header::HOST, &self.authority),
        };
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        let request = builder.body(Full::new(body))?;
        let response = match &mut self.sender {
            Sender::H1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
            Sender::H2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
        };
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(ClientResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(
        &mut self,
        path_and_query: &str,
        body: impl Into<Bytes>,
    ) -> Result<ClientResponse, ClientError> {
        self.send(
            http::Method::POST,
            path_and_query,
            Some("application/json"),
            body.into(),
        )
        .await
    }
}

/// A minimal AdmissionReview request for `kind`, as kube-apiserver would send it.
pub fn sample_review(uid: &str, kind: &str, operation: &str) -> String {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "serving.kserve.io", "version": "v1beta1", "kind": kind},
            "resource": {"group": "serving.kserve.io", "version": "v1beta1", "resource": "inferenceservices"},
            "namespace": "default",
            "name": "sklearn-iris",
            "operation": operation,
            "userInfo": {"username": "admin"},
            "object": {
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": kind,
                "metadata": {"name": "sklearn-iris", "namespace": "default"},
                "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                         "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"}}}
            },
            "dryRun": false
        }
    })
    .to_string()
}

/// A kubelet-style probe of the plain-HTTP admin port: `GET path` on a fresh connection, closed
/// after the answer (kubelet opens one per probe); whether it was answered 200.
pub async fn probe(admin: SocketAddr, path: &str) -> std::io::Result<bool> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = TcpStream::connect(admin).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(answer.starts_with(b"HTTP/1.1 200"))
}
