//! The HTTP client every SDK client sends through: HTTP/1.1 over rustls with the ring provider and
//! the Mozilla root certificates compiled in (webpki-roots).
//!
//! Why not the SDK's default client: it loads the platform's certificate bundle and then every
//! file of the certificate directory when each client is built (about 17 million instructions of
//! a 19 million instruction cold start, measured with callgrind), links aws-lc (the larger part
//! of each zip) and HTTP/2, which no AWS API these functions call needs. Here the roots are a
//! static table, so building the client parses nothing and reads no file.
//!
//! What the SDK's client does that matters is kept: certificate verification, the connect timeout
//! (TCP and TLS handshake) and read timeout from the SDK's settings, one connection pool shared by
//! every client, errors classified for the SDK's retries (timeouts and I/O are transient), and
//! connections poisoned after a transient error so a retry does not reuse them.
//!
//! `SSL_CERT_FILE`, when set, replaces the compiled-in roots with the PEM certificates in that file
//! (as OpenSSL and rustls-native-certs treat it): a private CA, or the benchmark's local one.

use std::collections::HashMap;
use std::error::Error;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{CaptureConnection, HttpConnector as TcpConnector, capture_connection};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::ConfigError;

type BoxError = Box<dyn Error + Send + Sync>;

/// The connect and read timeouts a connector was built for.
type Timeouts = (Option<Duration>, Option<Duration>);

/// The client for [`crate::aws::config_loader`]: verification against the compiled-in roots, or
/// against `SSL_CERT_FILE`'s certificates when that variable is set.
pub fn https_client() -> Result<SharedHttpClient, ConfigError> {
    let ca_file = crate::settings::Settings::from_env().optional("SSL_CERT_FILE");
    https_client_trusting(ca_file.as_deref().map(Path::new))
}

/// The same client, trusting the PEM certificates in `ca_file` instead of the compiled-in roots
/// when one is given (what `SSL_CERT_FILE` does).
pub fn https_client_trusting(ca_file: Option<&Path>) -> Result<SharedHttpClient, ConfigError> {
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => compiled_in_roots(),
    };
    // ring, not aws-lc: no C toolchain in the build and a smaller binary (the bench measures it).
    // rustls 0.23.48 deprecates it for lacking post-quantum key exchange, which AWS endpoints
    // do not require; the classical suites it offers are the ones the SDK negotiates today.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| ConfigError::Tls(err.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Https { tls, connectors: RwLock::default() }.into_shared())
}

fn compiled_in_roots() -> rustls::RootCertStore {
    rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

fn roots_from_file(path: &Path) -> Result<rustls::RootCertStore, ConfigError> {
    let problem = |what: String| ConfigError::InvalidEnv { name: "SSL_CERT_FILE", problem: what };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| problem(format!("{} cannot be read: {err}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| problem(format!("{} is not a PEM certificate bundle: {err}", path.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(problem(format!("{} holds no usable CA certificate", path.display())));
    }
    Ok(roots)
}

/// One connector (and so one connection pool) per distinct timeout pair; every client built from
/// the same `SdkConfig` asks with the same settings, so in practice there is one.
#[derive(Debug)]
struct Https {
    tls: rustls::ClientConfig,
    connectors: RwLock<HashMap<Timeouts, SharedHttpConnector>>,
}

impl HttpClient for Https {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        if let Some(connector) = self.connectors.read().ok().and_then(|cache| cache.get(&key).cloned()) {
            return connector;
        }
        let connector = Connector::new(self.tls.clone(), key.0, key.1).into_shared();
        match self.connectors.write() {
            Ok(mut cache) => cache.entry(key).or_insert(connector).clone(),
            Err(_) => connector,
        }
    }
}

#[derive(Debug)]
struct Connector {
    client: Client<ConnectWithin<HttpsConnector<TcpConnector>>, SdkBody>,
    read_timeout: Option<Duration>,
}

impl Connector {
    fn new(tls: rustls::ClientConfig, connect_timeout: Option<Duration>, read_timeout: Option<Duration>) -> Self {
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        // http as well as https: the emulator, and endpoints a user points AWS_ENDPOINT_URL at.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(ConnectWithin { inner: https, limit: connect_timeout });
        Self { client, read_timeout }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(err) => return HttpConnectorFuture::ready(Err(ConnectorError::user(err.into()))),
        };
        let connection = capture_connection(&mut request);
        if let Some(smithy) = request.extensions().get::<CaptureSmithyConnection>() {
            smithy.set_connection_retriever(move || poisonable(&connection));
        }
        let response = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            // Like the SDK's read timeout: from sending the request until the response's headers.
            let response = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, response)
                    .await
                    .map_err(|_| ConnectorError::timeout(Box::new(TimedOut { what: "response", limit })))?,
                None => response.await,
            };
            let response = response.map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|err| ConnectorError::other(err.into(), None))
        })
    }
}

/// What the SDK's retry strategy needs to take a connection out of the pool after a transient error.
fn poisonable(connection: &CaptureConnection) -> Option<ConnectionMetadata> {
    connection.connection_metadata().as_ref()?;
    let connection = connection.clone();
    let poison = move || {
        if let Some(connected) = connection.connection_metadata().as_ref() {
            connected.poison();
        }
    };
    Some(ConnectionMetadata::builder().proxied(false).poison_fn(poison).build())
}

/// Sorts hyper's errors the way the SDK's own client does: timeouts and I/O are retried.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let chain = || error_chain(&err);
    let hyper_error = chain().find_map(|err| err.downcast_ref::<hyper::Error>());
    if chain().any(|err| err.is::<TimedOut>()) || hyper_error.is_some_and(hyper::Error::is_timeout) {
        return ConnectorError::timeout(err.into());
    }
    match hyper_error {
        Some(hyper) if hyper.is_user() => ConnectorError::user(err.into()),
        Some(hyper) if hyper.is_closed() || hyper.is_canceled() => ConnectorError::io(err.into()),
        Some(hyper) if hyper.is_incomplete_message() => {
            ConnectorError::other(err.into(), Some(ErrorKind::TransientError))
        }
        _ if err.is_connect() || chain().any(|err| err.is::<std::io::Error>()) => ConnectorError::io(err.into()),
        _ => ConnectorError::other(err.into(), None),
    }
}

fn error_chain<'a>(err: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(err), |&err| err.source())
}

#[derive(Debug, thiserror::Error)]
#[error("no {what} within {limit:?}")]
struct TimedOut {
    what: &'static str,
    limit: Duration,
}

/// The connect timeout over TCP connect and TLS handshake together, as the SDK's client applies it.
#[derive(Clone, Debug)]
struct ConnectWithin<C> {
    inner: C,
    limit: Option<Duration>,
}

impl<C> tower_service::Service<Uri> for ConnectWithin<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let limit = self.limit;
        Box::pin(async move {
            match limit {
                Some(limit) => match tokio::time::timeout(limit, connecting).await {
                    Ok(connected) => connected.map_err(Into::into),
                    Err(_) => Err(Box::new(TimedOut { what: "connection", limit }) as BoxError),
                },
                None => connecting.await.map_err(Into::into),
            }
        })
    }
}
