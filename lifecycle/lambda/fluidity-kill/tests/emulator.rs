#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! fluidity-kill against the AWS emulator (moto server): the handler called directly, and the
//! built binary run on every fixture as a user would run it. Run through scripts/test.sh.

use std::path::Path;

use fluidity_kill::{Deps, KillResponse, handler};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::FunctionError;
use shared::ecs::{ServiceRef, ServiceScope};
use shared::testing::iam::SharedCluster;
use shared::testing::{
    create_service, desired_count, emulator_config, ensure_service, fixture_files, function_config, run_binary,
};

async fn ecs() -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::new(&emulator_config().await)
}

/// The function's own client: its calls are recorded as kill's.
async fn function_ecs() -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::new(&function_config(env!("CARGO_PKG_NAME")).await)
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Value, FunctionError> {
    handler(LambdaEvent::new(payload, Context::default()), deps).await
}

fn killed() -> Value {
    serde_json::to_value(KillResponse::KILLED).unwrap()
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_service_at_three_goes_to_zero() {
    let ecs = ecs().await;
    let target = create_service(&ecs, "kill3", 3).await;
    assert_eq!(desired_count(&ecs, &target).await, 3);
    let deps = Deps { ecs: function_ecs().await, services: ServiceScope::only(target.clone()) };
    assert_eq!(invoke(&deps, json!({})).await.unwrap(), killed());
    assert_eq!(desired_count(&ecs, &target).await, 0);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_stopped_service_stays_at_zero_and_kill_succeeds_again() {
    let ecs = ecs().await;
    let target = create_service(&ecs, "kill0", 0).await;
    let deps = Deps { ecs: function_ecs().await, services: ServiceScope::only(target.clone()) };
    for _ in 0..2 {
        assert_eq!(invoke(&deps, json!({})).await.unwrap(), killed());
        assert_eq!(desired_count(&ecs, &target).await, 0);
    }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn overrides_kill_the_named_service_and_leave_the_default_alone() {
    let ecs = ecs().await;
    let default_target = create_service(&ecs, "killdef", 2).await;
    let other = create_service(&ecs, "killother", 3).await;
    let services = ServiceScope::only(default_target.clone()).allowing([other.clone()]);
    let deps = Deps { ecs: function_ecs().await, services };
    let request = json!({"cluster_name": other.cluster, "service_name": other.service});
    assert_eq!(invoke(&deps, request).await.unwrap(), killed());
    assert_eq!(desired_count(&ecs, &other).await, 0);
    assert_eq!(desired_count(&ecs, &default_target).await, 2, "the default service must be untouched");
}

/// A service the deployment does not allow (OverrideServiceArns) is refused before any AWS call:
/// a function error on a direct invoke, a 403 over HTTP. The role could not act on it either.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_override_the_deployment_does_not_allow_is_refused_and_nothing_is_called() {
    let ecs = ecs().await;
    let own = create_service(&ecs, "killown", 2).await;
    let bystander = create_service(&ecs, "killbystander", 3).await;
    let proxy = shared::testing::FaultProxy::start();
    let function = aws_sdk_ecs::Client::new(&proxy.sdk_config(env!("CARGO_PKG_NAME")).await);
    let deps = Deps { ecs: function, services: ServiceScope::only(own.clone()) };
    let request = json!({"cluster_name": bystander.cluster, "service_name": bystander.service});
    let err = invoke(&deps, request.clone()).await.unwrap_err();
    assert_eq!(err.error_type(), "OverrideNotAllowed", "{err}");
    assert!(err.to_string().contains(&bystander.service) && err.to_string().contains(&own.service), "{err}");
    let mut apigw = shared::testing::fixture("fluidity-kill/apigateway-post-kill.json");
    apigw["body"] = json!(request.to_string());
    let answer = invoke(&deps, apigw).await.unwrap();
    assert_eq!(answer["statusCode"], 403, "{answer}");
    assert!(proxy.calls().is_empty(), "no AWS call: {:?}", proxy.calls());
    assert_eq!(desired_count(&ecs, &bystander).await, 3);
    assert_eq!(desired_count(&ecs, &own).await, 2, "nor is its own service touched");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_missing_service_is_a_clear_error_naming_cluster_and_service() {
    let ecs = ecs().await;
    let existing = create_service(&ecs, "killnf", 1).await;
    let missing_service = ServiceRef::new(existing.cluster.clone(), "no-such-service");
    let deps = Deps { ecs: function_ecs().await, services: ServiceScope::only(missing_service) };
    let err = invoke(&deps, json!({})).await.unwrap_err();
    assert_eq!(
        err,
        FunctionError::ServiceNotFound { cluster: existing.cluster.clone(), service: "no-such-service".into() }
    );
    assert!(err.to_string().contains(&existing.cluster));

    let missing_cluster = ServiceRef::new("no-such-cluster", "fluidity-server");
    let deps = Deps { ecs: function_ecs().await, services: ServiceScope::only(missing_cluster) };
    let err = invoke(&deps, json!({})).await.unwrap_err();
    assert_eq!(err.error_type(), "ServiceNotFound");
    assert!(err.to_string().contains("no-such-cluster"), "{err}");

    // Over API Gateway the same failure is an HTTP 404 with the message in the body.
    let mut apigw = shared::testing::fixture("fluidity-kill/apigateway-post-kill.json");
    apigw["body"] = json!("{}");
    let answer = invoke(&deps, apigw).await.unwrap();
    assert_eq!(answer["statusCode"], 404);
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "SERVICE_NOT_FOUND");
    assert!(body["error"]["message"].as_str().unwrap().contains("no-such-cluster"));
}

/// How each fixture is expected to be answered: which service it stops and the shape of the answer.
enum Expect {
    /// Stops the service named by the environment; the answer is the kill JSON itself.
    EnvTarget,
    /// Stops the service the request names (`fluidity` / `fluidity-server`).
    OverrideTarget,
    /// Stops the environment's service; the answer is an HTTP response with the kill JSON as body.
    EnvTargetOverHttp,
}

fn expectation(file: &Path) -> Expect {
    match file.file_name().unwrap().to_str().unwrap() {
        "direct.json" | "eventbridge-nightly.json" => Expect::EnvTarget,
        "overrides.json" => Expect::OverrideTarget,
        "apigateway-post-kill.json" | "function-url.json" => Expect::EnvTargetOverHttp,
        other => panic!("fixture {other} has no expectation in this test; add one"),
    }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_fixture_run_through_the_binary_leaves_the_service_stopped() {
    let ecs = ecs().await;
    let env_target = create_service(&ecs, "killbin", 3).await;
    let override_target = ServiceRef::new("fluidity", "fluidity-server");
    // overrides.json names fluidity/fluidity-server, which the deployment must allow.
    let envs = [
        ("ECS_CLUSTER_NAME", env_target.cluster.as_str()),
        ("ECS_SERVICE_NAME", env_target.service.as_str()),
        ("OVERRIDE_SERVICE_ARNS", shared::testing::FIXTURE_OVERRIDE_ARN),
    ];

    let files = fixture_files("fluidity-kill");
    assert_eq!(files.len(), 5, "direct, overrides, schedule, API Gateway, Function URL");
    for file in files {
        ensure_service(&ecs, &env_target, 3).await;
        ensure_service(&ecs, &override_target, 3).await;
        let run = run_binary(env!("CARGO_BIN_EXE_fluidity-kill"), &file, &envs);
        assert_eq!(run.status, 0, "{}: {:?}\n{}", file.display(), run.stdout, run.stderr);
        let (stopped, untouched) = match expectation(&file) {
            Expect::EnvTarget => {
                assert_eq!(run.stdout, killed(), "{}", file.display());
                (&env_target, &override_target)
            }
            Expect::OverrideTarget => {
                assert_eq!(run.stdout, killed(), "{}", file.display());
                (&override_target, &env_target)
            }
            Expect::EnvTargetOverHttp => {
                assert_eq!(run.stdout["statusCode"], 200, "{}", file.display());
                let body: Value = serde_json::from_str(run.stdout["body"].as_str().unwrap()).unwrap();
                assert_eq!(body, killed(), "{}", file.display());
                (&env_target, &override_target)
            }
        };
        assert_eq!(desired_count(&ecs, stopped).await, 0, "{}", file.display());
        assert_eq!(desired_count(&ecs, untouched).await, 3, "{}", file.display());
        // Logs are JSON lines on stderr carrying the request id.
        let line = run.stderr.lines().find(|l| l.contains("kill: desiredCount set to 0")).expect("a kill log line");
        let log: Value = serde_json::from_str(line).expect("JSON log line");
        assert!(log["spans"][0]["requestId"].as_str().unwrap().starts_with("local-"), "{line}");
    }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn invalid_fixtures_fail_with_a_named_problem_and_change_nothing() {
    let ecs = ecs().await;
    let target = create_service(&ecs, "killinv", 2).await;
    let envs = [("ECS_CLUSTER_NAME", target.cluster.as_str()), ("ECS_SERVICE_NAME", target.service.as_str())];
    let files = fixture_files("fluidity-kill/invalid");
    assert!(files.len() >= 4);
    for file in files {
        let run = run_binary(env!("CARGO_BIN_EXE_fluidity-kill"), &file, &envs);
        assert_eq!(run.status, 1, "{}", file.display());
        assert_eq!(run.stdout["errorType"], "InvalidRequest", "{}: {:?}", file.display(), run.stdout);
        assert!(run.stdout["errorMessage"].as_str().unwrap().starts_with("invalid request: `"), "{:?}", run.stdout);
        assert_eq!(desired_count(&ecs, &target).await, 2, "{}", file.display());
    }
}

#[test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
fn a_missing_environment_variable_is_an_init_error_naming_it() {
    let event = shared::testing::fixtures_dir().join("fluidity-kill/direct.json");
    let run = run_binary(env!("CARGO_BIN_EXE_fluidity-kill"), &event, &[("ECS_CLUSTER_NAME", "fluidity")]);
    assert_eq!(run.status, 1);
    assert_eq!(run.stdout["errorType"], "Runtime.InitError");
    assert_eq!(run.stdout["errorMessage"], "environment variable ECS_SERVICE_NAME is required but not set");
}

/// IAM world (deployments/tests/check_iam.py checks every call below against lambda.yaml's
/// KillRole, rendered for this cluster and service): kill its own service and an allowed override,
/// in a cluster it shares with a service it must never touch.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_kill_in_a_shared_cluster() {
    let setup = ecs().await;
    let cluster = SharedCluster::create(&setup, "iamkill", 1).await;
    let world = cluster.lambda_world(env!("CARGO_PKG_NAME")).write();
    let deps = Deps { ecs: aws_sdk_ecs::Client::new(&world.config().await), services: cluster.scope() };
    assert_eq!(invoke(&deps, json!({})).await.unwrap(), killed());
    assert_eq!(invoke(&deps, cluster.naming_allowed()).await.unwrap(), killed());
    assert_eq!(desired_count(&setup, &cluster.bystander).await, 2);
}
