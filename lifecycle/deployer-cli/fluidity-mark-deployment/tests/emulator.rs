#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! fluidity-mark-deployment against the emulator (ECS tags, SSM parameters), as a library and as the CLI.

use std::process::Command;

use fluidity_mark_deployment::{MarkRequest, mark};
use fluidity_names::service::{service_name, state_parameter};
use shared::ecs::ServiceRef;
use shared::testing::iam::{IamWorld, service_arn};
use shared::testing::{emulator_config, ensure_service, unique};

struct World {
    /// The tests' own clients.
    ecs: aws_sdk_ecs::Client,
    ssm: aws_sdk_ssm::Client,
    /// The deployer's (mark's) clients: its calls are recorded as the deployer's.
    mark_ecs: aws_sdk_ecs::Client,
    mark_ssm: aws_sdk_ssm::Client,
    cluster: String,
    name: String,
}

async fn world() -> World {
    let config = emulator_config().await;
    let function = shared::testing::function_config(env!("CARGO_PKG_NAME")).await;
    World {
        ecs: aws_sdk_ecs::Client::new(&config),
        ssm: aws_sdk_ssm::Client::new(&config),
        mark_ecs: aws_sdk_ecs::Client::new(&function),
        mark_ssm: aws_sdk_ssm::Client::new(&function),
        cluster: unique("mark"),
        name: format!("app{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    }
}

impl World {
    async fn deploy(&self, id: &str) {
        ensure_service(&self.ecs, &ServiceRef::new(&self.cluster, service_name(&self.name, id)), 1).await;
    }
    fn request(&self, id: &str, dry_run: bool) -> MarkRequest {
        MarkRequest {
            cluster: self.cluster.clone(),
            deployment_name: self.name.clone(),
            deployment_id: id.into(),
            dry_run,
        }
    }
    async fn state(&self, id: &str) -> Option<String> {
        let out = self.ssm.get_parameter().name(state_parameter(&self.name, id)).send().await.ok()?;
        out.parameter().and_then(|p| p.value()).map(str::to_owned)
    }
    async fn tag(&self, id: &str, key: &str) -> Option<String> {
        let out = self
            .ecs
            .describe_services()
            .cluster(&self.cluster)
            .services(service_name(&self.name, id))
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .unwrap();
        fluidity_names::service::tag(&out.services()[0], key).map(str::to_owned)
    }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn marking_b_makes_it_active_and_a_draining_and_is_idempotent() {
    let w = world().await;
    w.deploy("a1").await;
    let report = mark(&w.mark_ecs, &w.mark_ssm, &w.request("a1", false)).await.unwrap();
    assert_eq!((report.changed, report.draining.len()), (1, 0));
    assert_eq!(w.state("a1").await.as_deref(), Some("active"));

    w.deploy("b2").await;
    let report = mark(&w.mark_ecs, &w.mark_ssm, &w.request("b2", false)).await.unwrap();
    assert_eq!(report.changed, 2, "{report:?}");
    assert_eq!(report.draining[0].previous_state.as_deref(), Some("active"));
    assert_eq!(w.state("a1").await.as_deref(), Some("draining"));
    assert_eq!(w.state("b2").await.as_deref(), Some("active"));
    assert_eq!(w.tag("a1", "state").await.as_deref(), Some("draining"));
    assert_eq!(w.tag("b2", "state").await.as_deref(), Some("active"));
    assert_eq!(w.tag("b2", "deployment_id").await.as_deref(), Some("b2"));

    let again = mark(&w.mark_ecs, &w.mark_ssm, &w.request("b2", false)).await.unwrap();
    assert_eq!(again.changed, 0, "idempotent: {again:?}");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_dry_run_reports_the_changes_and_makes_none() {
    let w = world().await;
    w.deploy("a1").await;
    mark(&w.mark_ecs, &w.mark_ssm, &w.request("a1", false)).await.unwrap();
    w.deploy("b2").await;
    let report = mark(&w.mark_ecs, &w.mark_ssm, &w.request("b2", true)).await.unwrap();
    assert!(report.dry_run);
    assert_eq!(report.changed, 2);
    assert_eq!(w.state("a1").await.as_deref(), Some("active"));
    assert_eq!(w.state("b2").await, None);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_cli_says_what_changed_and_fails_clearly() {
    let w = world().await;
    w.deploy("a1").await;
    let cli = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_fluidity-mark-deployment")).args(args).output().unwrap();
    let out = cli(&["--cluster", &w.cluster, "--name", &w.name, "--id", "a1"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["active"]["changed"], true);
    assert_eq!(report["active"]["parameter"], state_parameter(&w.name, "a1"));

    let out = cli(&["--cluster", &w.cluster, "--name", &w.name, "--id", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found in cluster"));

    let out = cli(&["--cluster", &w.cluster, "--name", "bad name", "--id", "a1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`--name`"));
}

/// IAM world (deployments/tests/check_iam.py checks every call below against reaper.yaml's
/// DeployerPolicy, rendered for this cluster and deployment name): marking in a cluster shared
/// with a service of another owner, which the deployer must never describe or tag.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_mark_in_a_shared_cluster() {
    let w = world().await;
    let bystander = ServiceRef::new(&w.cluster, "production-api-service");
    ensure_service(&w.ecs, &bystander, 2).await;
    let world = IamWorld::of(env!("CARGO_PKG_NAME"), "reaper.yaml")
        .parameter("DeploymentCluster", &w.cluster)
        .parameter("DeploymentName", &w.name)
        .untouchable("ecs:DescribeServices", service_arn(&bystander))
        .untouchable("ecs:TagResource", service_arn(&bystander))
        .write();
    let config = world.config().await;
    let (ecs, ssm) = (aws_sdk_ecs::Client::new(&config), aws_sdk_ssm::Client::new(&config));
    w.deploy("a1").await;
    mark(&ecs, &ssm, &w.request("a1", false)).await.unwrap();
    w.deploy("b2").await;
    let report = mark(&ecs, &ssm, &w.request("b2", false)).await.unwrap();
    assert_eq!(report.changed, 2, "{report:?}");
}

/// The deployer's CLI signed in with a profile and no keys in the environment, as in a CI job
/// with a credential helper, or a person with IAM Identity Center (not signed in: it says so).
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_cli_signs_in_with_a_credential_process_or_an_sso_profile() {
    let w = world().await;
    w.deploy("a1").await;
    let profiles = shared::testing::profile::OperatorProfiles::write();
    let cli = std::path::Path::new(env!("CARGO_BIN_EXE_fluidity-mark-deployment"));
    let args = ["--cluster", w.cluster.as_str(), "--name", w.name.as_str(), "--id", "a1"];
    let marked = profiles.run(cli, "ops-process", &args);
    assert!(marked.status.success(), "{}", String::from_utf8_lossy(&marked.stderr));
    assert_eq!(w.state("a1").await.as_deref(), Some("active"));
    let sso = profiles.run(cli, "ops-sso", &args);
    let said = String::from_utf8_lossy(&sso.stderr).to_lowercase();
    assert!(!sso.status.success() && said.contains("sso") && !said.contains("feature"), "{said}");
}
