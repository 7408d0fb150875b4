#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The SDK's HTTP client (shared::http) against a TLS server on loopback: it verifies certificates
//! (a server whose CA it was not given is refused), trusts the CA file it is given (SSL_CERT_FILE's
//! route), and sorts timeouts so that the SDK's retries apply. The emulator speaks plain HTTP, so
//! these are the tests of the client's TLS side; the fixtures are in fixtures/tls.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use shared::ConfigError;
use shared::testing::fixtures_dir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ANSWER: &str = r#"{"clusterArns":["arn:aws:ecs:us-east-1:123456789012:cluster/over-tls"]}"#;

fn tls_fixture(name: &str) -> PathBuf {
    fixtures_dir().join("tls").join(name)
}

#[derive(Clone, Copy)]
enum Server {
    /// Answers ListClusters.
    Answers,
    /// Completes the handshake, reads the request and never answers.
    Silent,
    /// Accepts the TCP connection and never starts the handshake.
    NoHandshake,
}

/// A server on 127.0.0.1 with the fixture certificate; returns its port and a count of the
/// connections it accepted.
async fn serve(behaviour: Server) -> (u16, Arc<AtomicUsize>) {
    let certs =
        CertificateDer::pem_file_iter(tls_fixture("server.pem")).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(tls_fixture("server.key")).unwrap();
    #[allow(deprecated)] // the client's provider (shared::http), for a handshake both sides support
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Server::NoHandshake = behaviour {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    drop(tcp);
                    return;
                }
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut request = vec![0; 16 * 1024];
                let _ = tls.read(&mut request).await;
                match behaviour {
                    Server::Answers => {
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{ANSWER}",
                            ANSWER.len()
                        );
                        let _ = tls.write_all(response.as_bytes()).await;
                        let _ = tls.flush().await;
                    }
                    _ => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    (port, accepted)
}

fn ecs(client: SharedHttpClient, port: u16, attempts: u32) -> aws_sdk_ecs::Client {
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "tls-test"))
        .endpoint_url(format!("https://127.0.0.1:{port}"))
        .http_client(client)
        .retry_config(aws_sdk_ecs::config::retry::RetryConfig::standard().with_max_attempts(attempts))
        .timeout_config(
            aws_sdk_ecs::config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(300))
                .read_timeout(Duration::from_millis(300))
                .build(),
        )
        .build();
    aws_sdk_ecs::Client::from_conf(config)
}

fn timed_out<E, R>(err: &aws_sdk_ecs::error::SdkError<E, R>) -> bool {
    matches!(err, aws_sdk_ecs::error::SdkError::DispatchFailure(failure) if failure.is_timeout())
}

#[tokio::test]
async fn a_server_signed_by_the_given_ca_is_trusted() {
    let (port, _) = serve(Server::Answers).await;
    let client = shared::http::https_client_trusting(Some(&tls_fixture("ca.pem"))).unwrap();
    let listed = ecs(client, port, 1).list_clusters().send().await.expect("the call over TLS succeeds");
    assert_eq!(listed.cluster_arns(), ["arn:aws:ecs:us-east-1:123456789012:cluster/over-tls"]);
}

#[tokio::test]
async fn a_server_the_compiled_in_roots_do_not_vouch_for_is_refused() {
    let (port, accepted) = serve(Server::Answers).await;
    let client = shared::http::https_client_trusting(None).unwrap();
    let err = ecs(client, port, 1).list_clusters().send().await.expect_err("an unknown CA is refused");
    let chain = format!("{:?}", aws_smithy_types::error::display::DisplayErrorContext(&err));
    assert!(chain.contains("UnknownIssuer") || chain.contains("certificate"), "not a certificate error: {chain}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "the handshake was attempted once and not retried");
}

/// Both timeouts are transient: the second attempt had its own connection.
async fn times_out_and_is_retried(server: Server) {
    let (port, accepted) = serve(server).await;
    let client = shared::http::https_client_trusting(Some(&tls_fixture("ca.pem"))).unwrap();
    let err = ecs(client, port, 2).list_clusters().send().await.expect_err("nothing answered");
    assert!(timed_out(&err), "{err:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "the retry had a connection of its own");
}

#[tokio::test]
async fn a_silent_server_is_a_read_timeout_and_is_retried() {
    times_out_and_is_retried(Server::Silent).await;
}

#[tokio::test]
async fn a_stalled_handshake_is_a_connect_timeout_and_is_retried() {
    times_out_and_is_retried(Server::NoHandshake).await;
}

#[test]
fn an_unusable_ca_file_is_named_at_init() {
    let missing = tls_fixture("no-such.pem");
    let not_pem = fixtures_dir().join("targets.json");
    for (path, problem) in [(&missing, "cannot be read"), (&not_pem, "no usable CA certificate")] {
        match shared::http::https_client_trusting(Some(path)) {
            Err(ConfigError::InvalidEnv { name: "SSL_CERT_FILE", problem: said }) => {
                assert!(said.contains(problem) && said.contains(&path.display().to_string()), "{said}")
            }
            other => panic!("{}: expected an SSL_CERT_FILE error, got {:?}", path.display(), other.map(|_| ())),
        }
    }
}
