//! A fault-injecting HTTP proxy between the SDK and the emulator, for the reliability tests.
//!
//! The SDK is pointed at the proxy (`AWS_ENDPOINT_URL`), the proxy forwards to moto. Per operation
//! (`UpdateService`, `Publish`, ...), a test makes it answer the next N calls with throttling
//! (400 or 429), a 500 or 503, added latency, or a dropped connection, each in the error shape of
//! the service's protocol so the SDK classifies it as AWS would. It also records every operation
//! that passed through, which is how the tests count AWS calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_config::SdkConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does instead of (or before) forwarding a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 with the protocol's throttling code (`ThrottlingException`, `Throttling`, `RequestLimitExceeded`).
    Throttle,
    /// 429 `TooManyRequestsException`.
    TooManyRequests,
    /// 500 `InternalFailure`.
    InternalError,
    /// 503 `ServiceUnavailable`.
    Unavailable,
    /// Forward, but only after this long.
    Delay(Duration),
    /// Read the request, then close the connection without answering.
    DropConnection,
    /// Forward the request (the service carries it out), then close the connection without its
    /// answer: the client cannot tell it from a request that never arrived.
    LoseAnswer,
    /// DynamoDB's answer to a write that met a concurrent transaction on one of its items: a
    /// TransactWriteItems cancelled with `TransactionCanceledException [TransactionConflict]`, any
    /// other call `TransactionConflictException`. moto serialises DynamoDB and never answers either.
    TransactionConflict,
}

/// Repeat a fault on every call.
pub const ALWAYS: u32 = u32::MAX;

#[derive(Default)]
struct State {
    /// Operation name -> (fault, calls left to fault).
    faults: HashMap<String, (Fault, u32)>,
    /// Every operation that reached the proxy, in order, faulted or not.
    calls: Vec<String>,
    /// Their request bodies, in the same order.
    bodies: Vec<Vec<u8>>,
    /// The service each was signed for (`ecs`, `rds`, ...), in the same order.
    services: Vec<String>,
}

/// A running proxy; it lives until the test process exits.
#[derive(Clone)]
pub struct FaultProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port, forwarding to the emulator (`AWS_ENDPOINT_URL`).
    pub fn start() -> Self {
        let upstream =
            crate::testing::emulator_endpoint().trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        // Its own thread and runtime: the proxy serves tests on any runtime, and built binaries too.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("proxy runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(serve(client, upstream.clone(), Arc::clone(&shared)));
                }
            });
        });
        Self { url, state }
    }

    /// The production SDK config (retries, timeouts) of `function`, pointed at the proxy. Set on
    /// the loader, the endpoint takes precedence over `AWS_ENDPOINT_URL`, which still names the emulator.
    pub async fn sdk_config(&self, function: &'static str) -> SdkConfig {
        crate::aws::config_loader(Some(function))
            .expect("the compiled-in TLS roots")
            .endpoint_url(&self.url)
            .load()
            .await
    }

    /// Answers the next `times` calls of `operation` with `fault` ([`ALWAYS`] for every call).
    pub fn inject(&self, operation: &str, fault: Fault, times: u32) {
        self.lock().faults.insert(operation.to_owned(), (fault, times));
    }

    /// Stops injecting faults and forgets the recorded calls.
    pub fn reset(&self) {
        let mut state = self.lock();
        state.faults.clear();
        state.calls.clear();
        state.bodies.clear();
        state.services.clear();
    }

    /// Every operation that reached the proxy so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The request bodies of every call of `operation` that reached the proxy, in order: what the
    /// service was sent (JSON, a query form, or CBOR, as the protocol has it).
    pub fn bodies(&self, operation: &str) -> Vec<Vec<u8>> {
        let state = self.lock();
        state.calls.iter().zip(&state.bodies).filter(|(c, _)| *c == operation).map(|(_, b)| b.clone()).collect()
    }

    /// Every call that reached the proxy, in order, as the service received it: the service it was
    /// signed for, the operation and the request body.
    pub fn requests(&self) -> Vec<Received> {
        let state = self.lock();
        let calls = state.calls.iter().zip(&state.services).zip(&state.bodies);
        calls
            .map(|((operation, service), body)| Received {
                service: service.clone(),
                operation: operation.clone(),
                body: body.clone(),
            })
            .collect()
    }

    /// How many calls of `operation` reached the proxy (retries included).
    pub fn count(&self, operation: &str) -> usize {
        self.lock().calls.iter().filter(|c| *c == operation).count()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One request per connection: read it, decide, then forward (with `Connection: close`) or fault.
async fn serve(mut client: TcpStream, upstream: String, state: Arc<Mutex<State>>) {
    let Some(request) = read_request(&mut client).await else { return };
    let operation = request.operation();
    let fault = {
        let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.calls.push(operation.clone());
        state.bodies.push(request.body.clone());
        state.services.push(request.signing_service());
        match state.faults.get_mut(&operation) {
            Some((fault, left)) if *left > 0 => {
                if *left != ALWAYS {
                    *left -= 1;
                }
                Some(*fault)
            }
            _ => None,
        }
    };
    let answer = match fault {
        None => None,
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            None
        }
        Some(Fault::DropConnection) => return,
        Some(Fault::LoseAnswer) => {
            let _ = forward(&request, &upstream).await;
            return;
        }
        Some(Fault::Throttle) => Some(request.error_response(400, "Bad Request", request.protocol().throttling_code())),
        Some(Fault::TooManyRequests) => {
            Some(request.error_response(429, "Too Many Requests", "TooManyRequestsException"))
        }
        Some(Fault::InternalError) => Some(request.error_response(500, "Internal Server Error", "InternalFailure")),
        Some(Fault::Unavailable) => Some(request.error_response(503, "Service Unavailable", "ServiceUnavailable")),
        Some(Fault::TransactionConflict) => Some(request.conflict_response(&operation)),
    };
    let response = match answer {
        Some(response) => response,
        None => match forward(&request, &upstream).await {
            Ok(response) => response,
            Err(err) => request.error_response(502, "Bad Gateway", &format!("ProxyUpstreamError: {err}")),
        },
    };
    let _ = client.write_all(&response).await;
    let _ = client.shutdown().await;
}

/// One request as the service received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The SigV4 signing name: `ecs`, `application-autoscaling`, `rds`, `elasticache`, `sns`, ...
    pub service: String,
    pub operation: String,
    pub body: Vec<u8>,
}

struct Request {
    head: Vec<(String, String)>,
    request_line: String,
    body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    AwsJson,
    Ec2Query,
    AwsQuery,
    RpcV2Cbor,
}

impl Protocol {
    fn throttling_code(self) -> &'static str {
        match self {
            Self::AwsJson | Self::RpcV2Cbor => "ThrottlingException",
            Self::Ec2Query => "RequestLimitExceeded",
            Self::AwsQuery => "Throttling",
        }
    }
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn protocol(&self) -> Protocol {
        if self.header("x-amz-target").is_some() {
            Protocol::AwsJson
        } else if self.header("smithy-protocol").is_some() {
            Protocol::RpcV2Cbor
        } else if self.header("authorization").is_some_and(|a| a.contains("/ec2/aws4_request")) {
            Protocol::Ec2Query
        } else {
            Protocol::AwsQuery
        }
    }

    /// The service of the SigV4 credential scope: `Credential=<key>/<date>/<region>/<service>/aws4_request`.
    fn signing_service(&self) -> String {
        let scope = self.header("authorization").and_then(|a| a.split("Credential=").nth(1)).unwrap_or_default();
        scope.split(['/', ',']).nth(3).unwrap_or_default().to_owned()
    }

    /// `UpdateService` from `X-Amz-Target: AmazonEC2ContainerServiceV20141113.UpdateService`,
    /// `Publish` from a query body `Action=Publish&...`, `GetMetricData` from an RPC v2 path.
    fn operation(&self) -> String {
        if let Some(target) = self.header("x-amz-target") {
            return target.rsplit('.').next().unwrap_or(target).to_owned();
        }
        let path = self.request_line.split(' ').nth(1).unwrap_or_default();
        if let Some((_, op)) = path.rsplit_once("/operation/") {
            return op.to_owned();
        }
        String::from_utf8_lossy(&self.body)
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map_or_else(|| format!("(unknown {path})"), str::to_owned)
    }

    /// A transaction conflict, in DynamoDB's awsJson shape.
    fn conflict_response(&self, operation: &str) -> Vec<u8> {
        let body = match operation {
            "TransactWriteItems" => serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
                "CancellationReasons": [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}],
            }),
            _ => serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                "message": "Transaction is ongoing for the item",
            }),
        };
        let body = body.to_string();
        let code = if operation == "TransactWriteItems" {
            "TransactionCanceledException"
        } else {
            "TransactionConflictException"
        };
        format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-errortype: {code}\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn error_response(&self, status: u16, reason: &str, code: &str) -> Vec<u8> {
        let message = "injected by the test fault proxy";
        let (content_type, body): (&str, Vec<u8>) = match self.protocol() {
            Protocol::AwsJson => (
                "application/x-amz-json-1.1",
                serde_json::json!({"__type": code, "message": message}).to_string().into_bytes(),
            ),
            // RPC v2 CBOR's error shape: a CBOR map with `__type` and `message`.
            Protocol::RpcV2Cbor => {
                let mut encoder = aws_smithy_cbor::Encoder::new(Vec::new());
                encoder.map(2).str("__type").str(code).str("message").str(message);
                ("application/cbor", encoder.into_writer())
            }
            Protocol::Ec2Query => (
                "text/xml",
                format!(
                    "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>\
                     <RequestID>fault-proxy</RequestID></Response>"
                )
                .into_bytes(),
            ),
            Protocol::AwsQuery => (
                "text/xml",
                format!(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
                     <RequestId>fault-proxy</RequestId></ErrorResponse>"
                )
                .into_bytes(),
            ),
        };
        let protocol_header =
            if self.protocol() == Protocol::RpcV2Cbor { "smithy-protocol: rpc-v2-cbor\r\n" } else { "" };
        let mut response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\nx-amzn-errortype: {code}\r\n\
             {protocol_header}content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(&body);
        response
    }
}

async fn read_request(client: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head_text = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head_text.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let head: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = head
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request { head, request_line, body })
}

async fn forward(request: &Request, upstream: &str) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    let mut out = Vec::with_capacity(request.body.len() + 1024);
    out.extend_from_slice(request.request_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &request.head {
        if !name.eq_ignore_ascii_case("connection") {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out.extend_from_slice(&request.body);
    server.write_all(&out).await?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await?;
    Ok(response)
}
