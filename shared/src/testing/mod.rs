//! Helpers for integration tests against the emulator (moto server) and a real Redis.
//! Enabled by the `test-util` feature, which crates turn on in `[dev-dependencies]` only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::SdkConfig;
use aws_sdk_ecs::types::ContainerDefinition;
use serde_json::Value;

use crate::ecs::ServiceRef;

pub mod cloudwatch;
pub mod corpus;
pub mod exact;
pub mod fault_proxy;
pub mod iam;
pub mod profile;

pub use fault_proxy::{ALWAYS, Fault, FaultProxy};

/// The emulator's endpoint. Integration tests refuse to run against anything that is not on loopback.
///
/// Every test that needs the emulator or Redis is marked `#[ignore = "needs the emulator and Redis:
/// ..."]`: a plain `cargo test` lists it as ignored, and the test command (scripts/test.sh) starts
/// both and runs every test with `--include-ignored`, so a missing emulator is a failure there.
pub fn emulator_endpoint() -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
        "AWS_ENDPOINT_URL must point at the local moto server (got {endpoint:?}); \
         run the tests through scripts/test.sh, which starts it"
    );
    endpoint
}

/// The production SDK config, pointed at the emulator through the standard variables, for the
/// tests' own calls (setting up and reading back a world).
pub async fn emulator_config() -> SdkConfig {
    emulator_endpoint();
    crate::aws::config_loader(None).expect("the compiled-in TLS roots").load().await
}

/// The same, for a function's own clients: its requests carry `app/<function>` in their User-Agent,
/// as in production, so the emulator's recording of them can be checked against the function's
/// declared permissions and its IAM policy.
pub async fn function_config(function: &'static str) -> SdkConfig {
    emulator_endpoint();
    crate::aws::config_loader(Some(function)).expect("the compiled-in TLS roots").load().await
}

/// The service the fixtures' overrides.json names (fluidity/fluidity-server), as the
/// `OVERRIDE_SERVICE_ARNS` a deployment that allows it sets.
pub const FIXTURE_OVERRIDE_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/fluidity/fluidity-server";

/// A name no other test (or earlier run against the same emulator) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}-{n}-{}", std::process::id(), &random[..8])
}

/// Creates a cluster, a task definition and a service at `desired`, with unique names.
pub async fn create_service(ecs: &aws_sdk_ecs::Client, prefix: &str, desired: i32) -> ServiceRef {
    let target = ServiceRef::new(unique(&format!("{prefix}-cluster")), unique(&format!("{prefix}-svc")));
    ensure_service(ecs, &target, desired).await;
    target
}

/// Makes sure the named cluster and service exist, with the service at `desired`.
pub async fn ensure_service(ecs: &aws_sdk_ecs::Client, target: &ServiceRef, desired: i32) {
    ecs.create_cluster().cluster_name(&target.cluster).send().await.expect("CreateCluster");
    let family = format!("{}-task", target.service);
    let container =
        ContainerDefinition::builder().name("app").image("public.ecr.aws/nginx/nginx:latest").memory(512).build();
    ecs.register_task_definition()
        .family(&family)
        .container_definitions(container)
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let active = described(ecs, target).await.services().iter().any(|s| s.status() == Some("ACTIVE"));
    if active {
        ecs.update_service()
            .cluster(&target.cluster)
            .service(&target.service)
            .desired_count(desired)
            .send()
            .await
            .expect("UpdateService");
    } else {
        ecs.create_service()
            .cluster(&target.cluster)
            .service_name(&target.service)
            .task_definition(&family)
            .desired_count(desired)
            .send()
            .await
            .expect("CreateService");
    }
}

/// The service's desired count as the emulator holds it now.
pub async fn desired_count(ecs: &aws_sdk_ecs::Client, target: &ServiceRef) -> i32 {
    described(ecs, target).await.services()[0].desired_count()
}

async fn described(
    ecs: &aws_sdk_ecs::Client,
    target: &ServiceRef,
) -> aws_sdk_ecs::operation::describe_services::DescribeServicesOutput {
    ecs.describe_services().cluster(&target.cluster).services(&target.service).send().await.expect("DescribeServices")
}

/// The repository's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Reads a fixture as JSON.
pub fn fixture(relative: &str) -> Value {
    let path = fixtures_dir().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()))
}

/// Every `.json` file under `fixtures/<folder>`, sorted.
pub fn fixture_files(folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir().join(folder))
        .unwrap_or_else(|e| panic!("fixtures/{folder}: {e}"))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// The result of running a function's binary locally, as a user would.
#[derive(Debug)]
pub struct LocalRun {
    pub status: i32,
    pub stdout: Value,
    pub stderr: String,
}

impl LocalRun {
    /// The function's answer: the HTTP body for API Gateway / Function URL events, else stdout itself.
    pub fn answer(&self) -> Value {
        match self.stdout.get("statusCode") {
            Some(status) => {
                assert_eq!(status, 200, "HTTP answer: {}", self.stdout);
                serde_json::from_str(self.stdout["body"].as_str().expect("body")).expect("body is JSON")
            }
            None => self.stdout.clone(),
        }
    }
}

/// Runs a built function binary on an event file with extra environment variables.
pub fn run_binary(binary: &str, event_file: &Path, envs: &[(&str, &str)]) -> LocalRun {
    let output: Output = Command::new(binary)
        .arg(event_file)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    LocalRun {
        status: output.status.code().unwrap_or(-1),
        stdout: serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{binary} printed non-JSON on stdout ({e}): {stdout}")),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Calls an action handler the way Lambda would, with a fresh context carrying a request id.
pub fn action_event(payload: Value) -> lambda_runtime::LambdaEvent<Value> {
    let mut ctx = lambda_runtime::Context::default();
    ctx.request_id = format!("test-{}", uuid::Uuid::new_v4());
    lambda_runtime::LambdaEvent::new(payload, ctx)
}

/// A real redis-server of the test's own (e.g. with a password), on a free loopback port; stopped on drop.
pub struct TempRedis {
    child: std::process::Child,
    pub port: u16,
}

impl TempRedis {
    pub fn start(extra_args: &[&str]) -> Self {
        Self::start_on(false, extra_args)
    }

    /// A TLS-only server (for `rediss://`), with a self-signed certificate made by openssl in `dir`.
    pub fn start_tls(dir: &Path) -> Self {
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl");
        assert!(made.status.success(), "openssl: {}", String::from_utf8_lossy(&made.stderr));
        let (key, cert) = (key.to_string_lossy().into_owned(), cert.to_string_lossy().into_owned());
        Self::start_on(
            true,
            &[
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                &cert,
                "--tls-auth-clients",
                "no",
            ],
        )
    }

    fn start_on(tls: bool, extra_args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let port_args = if tls {
            vec!["--port".to_owned(), "0".to_owned(), "--tls-port".to_owned(), port.to_string()]
        } else {
            vec!["--port".to_owned(), port.to_string()]
        };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(port_args)
            .args(extra_args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/services.sh installs it)");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "redis-server did not start on {port}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { child, port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for TempRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The parameters of a query-protocol request body (`Action=Publish&Message=...`), as SNS, RDS or
/// EC2 received them.
pub fn query_params(body: &[u8]) -> std::collections::BTreeMap<String, String> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Calls moto's own HTTP API (`/moto-api/...`) with a JSON body.
pub fn moto_api(path: &str, body: &Value) -> String {
    let url = format!("{}{path}", emulator_endpoint());
    let out = Command::new("curl")
        .args(["-sf", "-X", "POST", "-H", "Content-Type: application/json", "--data", &body.to_string(), &url])
        .output()
        .expect("curl");
    assert!(out.status.success(), "moto API {path} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// moto moves a task one step towards STOPPED on every DescribeTasks; keep tasks RUNNING instead.
pub fn keep_tasks_running() {
    moto_api(
        "/moto-api/state-manager/set-transition",
        &serde_json::json!({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 100000}}),
    );
}

/// A Fargate service as the real Fluidity one is: awsvpc networking in a VPC subnet with a security group.
pub struct FargateService {
    pub target: ServiceRef,
    pub task_definition: String,
    pub subnet: String,
    pub security_group: String,
}

pub async fn create_fargate_service(config: &SdkConfig, prefix: &str, desired: i32) -> FargateService {
    let ecs = aws_sdk_ecs::Client::new(config);
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await.expect("CreateVpc");
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_owned();
    let subnet = ec2.create_subnet().vpc_id(&vpc_id).cidr_block("10.0.1.0/24").send().await.expect("CreateSubnet");
    let subnet = subnet.subnet().and_then(|s| s.subnet_id()).expect("subnet id").to_owned();
    let sg = ec2
        .create_security_group()
        .group_name(unique(prefix))
        .description("fluidity tests")
        .vpc_id(&vpc_id)
        .send()
        .await
        .expect("CreateSecurityGroup");
    let security_group = sg.group_id().expect("group id").to_owned();
    let target = ServiceRef::new(unique(&format!("{prefix}-cluster")), unique(&format!("{prefix}-svc")));
    ecs.create_cluster().cluster_name(&target.cluster).send().await.expect("CreateCluster");
    let family = format!("{}-task", target.service);
    let container = ContainerDefinition::builder().name("server").image("fluidity-server:latest").memory(512).build();
    ecs.register_task_definition()
        .family(&family)
        .container_definitions(container)
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .send()
        .await
        .expect("RegisterTaskDefinition");
    ecs.create_service()
        .cluster(&target.cluster)
        .service_name(&target.service)
        .task_definition(&family)
        .desired_count(desired)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .network_configuration(network(&subnet, &security_group))
        .send()
        .await
        .expect("CreateService");
    FargateService { target, task_definition: family, subnet, security_group }
}

pub fn network(subnet: &str, security_group: &str) -> aws_sdk_ecs::types::NetworkConfiguration {
    let vpc = aws_sdk_ecs::types::AwsVpcConfiguration::builder()
        .subnets(subnet)
        .security_groups(security_group)
        .assign_public_ip(aws_sdk_ecs::types::AssignPublicIp::Enabled)
        .build()
        .expect("awsvpc configuration");
    aws_sdk_ecs::types::NetworkConfiguration::builder().awsvpc_configuration(vpc).build()
}

/// An event whose Lambda deadline is `left` from now, as Lambda sets it for a short timeout.
pub fn event_with_deadline(payload: Value, left: std::time::Duration) -> lambda_runtime::LambdaEvent<Value> {
    let mut event = action_event(payload);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    event.context.deadline = u64::try_from((now + left).as_millis()).expect("deadline fits u64");
    event
}

/// Longest error message a bad request may get: it names the problem, it does not echo a megabyte back.
pub const MAX_ERROR_MESSAGE: usize = 1000;

/// Checks that a lifecycle function refused a bad event: a 4xx function error on direct and
/// EventBridge invokes, a 4xx HTTP answer over API Gateway and Function URLs, with a short message.
pub fn assert_lifecycle_rejected(what: &str, result: &Result<Value, crate::FunctionError>) {
    let (status, message) = match result {
        Err(err) => (err.status(), err.to_string()),
        Ok(answer) => {
            let status = answer["statusCode"].as_u64().unwrap_or_else(|| panic!("{what}: accepted: {answer}"));
            let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{what}: body is not JSON: {e}"));
            (u16::try_from(status).unwrap_or(0), body["error"]["message"].as_str().unwrap_or_default().to_owned())
        }
    };
    assert!((400..500).contains(&status), "{what}: expected a 4xx, got {status}: {message}");
    assert!(!message.is_empty() && message.len() <= MAX_ERROR_MESSAGE, "{what}: message of {} bytes", message.len());
}
