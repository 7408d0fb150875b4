//! A world in the emulator for the playbook: a ledger table, an ECS service behind the target
//! `api`, an alarm on it, the actions deployed as Lambda functions (the emulator's Invoke runs their
//! built binaries, scripts/emulator_invoke.py), and the on-call topic with a queue subscribed to it,
//! read back as the on-call engineer's pager would receive the page.
#![allow(clippy::unwrap_used, dead_code)] // test code: a panic is the failure report

use std::process::Command;

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
use chrono::{DateTime, TimeZone, Utc};
use incident_ledger::DynamoLedger;
use incident_playbook::check::Clients;
use incident_playbook::invoke::Functions;
use incident_playbook::run::Run;
use incident_playbook::store::Store;
use incident_playbook::{Clock, Deps, handler};
use serde_json::{Value, json};
use shared::ecs::ServiceRef;
use shared::testing::{
    action_event, create_service, emulator_config, emulator_endpoint, fixture, function_config, unique,
};

pub const NOT_BUILT: &str = "the actions' binaries are built by `cargo test --workspace --all-targets` (scripts/test.sh); \
    by hand: cargo build --bins -p incident-restart-service -p incident-scale-up -p incident-notify-human";

pub struct World {
    pub deps: Deps,
    /// The target map the functions read.
    pub targets: String,
    pub setup: SdkConfig,
    pub api: ServiceRef,
    pub alarm: String,
    pub table: String,
    pub topic_arn: String,
    pub queue_url: String,
    /// When the alarm entered ALARM: the clock starts here.
    pub alarm_at: DateTime<Utc>,
}

/// A world whose playbook `api-errors` runs `steps` on the target `api` for a new alarm; `extra`
/// adds to each action's environment (budgets, say).
pub async fn world(steps: Value, extra: &[(&str, &str)]) -> World {
    for binary in ["incident-restart-service", "incident-scale-up", "incident-notify-human"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../target/debug").join(binary);
        assert!(path.exists() || std::env::var_os("CARGO_TARGET_DIR").is_some(), "{binary} is not built: {NOT_BUILT}");
    }
    let setup = emulator_config().await;
    let api = create_service(&aws_sdk_ecs::Client::new(&setup), "playbook", 2).await;
    let alarm = unique("api-5xx");
    let targets = json!({
        "api": {"kind": "ecs_service", "cluster": api.cluster, "service": api.service,
            "desiredCount": {"low": 2, "medium": 2, "high": 3, "critical": 6}, "maxCount": 8},
        "playbooks": {"api-errors": {"alarms": [alarm], "target": "api", "priority": "high",
            "verifyWithinMinutes": 10, "steps": steps}}
    })
    .to_string();
    let table = incident_ledger::testing::create_table(&setup).await;
    let (topic_arn, queue_url) = inbox(&setup).await;
    let stack = unique("pb");
    // moto keeps a new service's deployment IN_PROGRESS for ever: without a cooldown, restart_service
    // takes it as stuck and restarts (as it would a rollout stuck past its cooldown).
    let mut env = vec![
        ("TARGETS_JSON", targets.as_str()),
        ("LEDGER_TABLE", table.as_str()),
        ("SNS_TOPIC_ARN", topic_arn.as_str()),
        ("RESTART_COOLDOWN_SECONDS", "0"),
    ];
    env.extend_from_slice(extra);
    let functions = deploy_actions(&setup, &stack, &env).await;
    put_alarm(&setup, &alarm, StateValue::Alarm).await;
    let deps = deps(&targets, functions, &table).await;
    let alarm_at = Utc.with_ymd_and_hms(2026, 12, 5, 2, 15, 0).unwrap();
    deps.clock.advance(alarm_at - deps.clock.now());
    World { deps, targets, setup, api, alarm, table, topic_arn, queue_url, alarm_at }
}

async fn deps(targets: &str, functions: Functions, table: &str) -> Deps {
    let config = function_config("incident-playbook").await;
    deps_on(&config, targets, functions, table)
}

/// The playbook's dependencies, its calls through `config` (the function's own, or an IAM world's).
pub fn deps_on(config: &SdkConfig, targets: &str, functions: Functions, table: &str) -> Deps {
    let (targets_config, playbooks) = {
        let t = incident_core::config::TargetConfig::parse(targets, "test").unwrap();
        let p = incident_playbook::playbooks::Playbooks::parse(targets, "test", &t).unwrap();
        (t, p)
    };
    let dynamodb = incident_ledger::client(config);
    Deps {
        targets: targets_config,
        playbooks,
        functions,
        lambda: shared::aws::LazyClient::new(config, incident_playbook::invoke::client),
        clients: Clients::new(config),
        store: Store { dynamodb: dynamodb.clone(), table: table.to_owned() },
        ledger: DynamoLedger { dynamodb, table: table.to_owned() },
        clock: Clock::fixed(Utc::now()),
    }
}

/// The role the functions run as (moto checks that it exists), made through IAM's query API.
fn ensure_role() -> String {
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "CreateRole")
        .append_pair("Version", "2010-05-08")
        .append_pair("RoleName", "incident-playbook-tests")
        .append_pair("AssumeRolePolicyDocument", &policy.to_string())
        .finish();
    let url = format!("{}/", emulator_endpoint());
    let auth =
        "AWS4-HMAC-SHA256 Credential=testing/20261205/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=x";
    Command::new("curl")
        .args(["-s", "-X", "POST", "-H", &format!("Authorization: {auth}"), "--data", &body, &url])
        .output()
        .expect("curl");
    "arn:aws:iam::123456789012:role/incident-playbook-tests".to_owned()
}

/// The three actions as `<stack>-restart-service` and so on, as the stack names them.
async fn deploy_actions(setup: &SdkConfig, stack: &str, env: &[(&str, &str)]) -> Functions {
    let role = ensure_role();
    let lambda = aws_sdk_lambda::Client::new(setup);
    let empty_zip = [b"PK\x05\x06".as_slice(), &[0u8; 18]].concat();
    let mut names = Vec::new();
    for suffix in ["restart-service", "scale-up", "clear-cache", "notify-human", "rollback-service"] {
        let name = format!("{stack}-{suffix}");
        let mut vars = Environment::builder();
        for (k, v) in env {
            vars = vars.variables(*k, *v);
        }
        let create = lambda.create_function().function_name(&name).role(&role).runtime(Runtime::Providedal2023);
        let create = create.handler("bootstrap").timeout(60).environment(vars.build());
        let code = FunctionCode::builder().zip_file(Blob::new(empty_zip.clone())).build();
        let out = create.code(code).send().await.unwrap();
        names.push(out.function_arn().unwrap().to_owned());
    }
    let [restart_service, scale_up, clear_cache, notify_human, rollback_service] = names.try_into().unwrap();
    Functions { restart_service, scale_up, clear_cache, notify_human, rollback_service }
}

pub async fn put_alarm(setup: &SdkConfig, name: &str, state: StateValue) {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(setup);
    let put = cloudwatch
        .put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count");
    let put = put.statistic(Statistic::Sum).period(60).evaluation_periods(1).threshold(10.0);
    put.comparison_operator(ComparisonOperator::GreaterThanThreshold).send().await.unwrap();
    set_alarm(setup, name, state).await;
}

pub async fn set_alarm(setup: &SdkConfig, name: &str, state: StateValue) {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(setup);
    cloudwatch.set_alarm_state().alarm_name(name).state_value(state).state_reason("test").send().await.unwrap();
}

async fn inbox(setup: &SdkConfig) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(setup);
    let sqs = aws_sdk_sqs::Client::new(setup);
    let topic_arn = sns.create_topic().name(unique("oncall")).send().await.unwrap().topic_arn().unwrap().to_owned();
    let queue_url =
        sqs.create_queue().queue_name(unique("pager")).send().await.unwrap().queue_url().unwrap().to_owned();
    let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{}", queue_url.rsplit('/').next().unwrap());
    sns.subscribe().topic_arn(&topic_arn).protocol("sqs").endpoint(queue_arn).send().await.unwrap();
    (topic_arn, queue_url)
}

impl World {
    /// The alarm's transition as CloudWatch invokes the function with it (the fixture, renamed).
    pub fn alarm_event(&self, state: &str) -> Value {
        let mut event = fixture("incident-playbook/alarm-invocation-LIVE.json");
        event["alarmData"]["alarmName"] = json!(self.alarm);
        event["alarmData"]["state"]["value"] = json!(state);
        event["alarmData"]["state"]["timestamp"] =
            json!(self.alarm_at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string());
        event
    }

    pub fn incident(&self) -> String {
        incident_playbook::trigger::incident_id(&self.alarm, self.alarm_at)
    }

    pub async fn send(&self, event: Value) -> Value {
        handler(action_event(event), &self.deps).await.unwrap()
    }

    pub async fn sweep(&self) -> Value {
        self.send(fixture("incident-playbook/schedule-LIVE.json")).await
    }

    /// The deployment event of the fixture, for this deployment.
    pub async fn deployment(&self, fixture_name: &str, deployment_id: &str) -> Value {
        let mut event = fixture(&format!("incident-playbook/{fixture_name}"));
        event["detail"]["deploymentId"] = json!(deployment_id);
        self.send(event).await
    }

    pub async fn run(&self) -> Run {
        self.deps.store.load(&self.incident()).await.unwrap().expect("the run")
    }

    pub fn advance(&self, minutes: i64) {
        self.deps.clock.advance(chrono::Duration::minutes(minutes));
    }

    /// The pages that reached the on-call queue.
    pub async fn pages(&self) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.setup);
        let out = sqs.receive_message().queue_url(&self.queue_url).max_number_of_messages(10).wait_time_seconds(1);
        let out = out.send().await.unwrap();
        out.messages().iter().map(|m| serde_json::from_str(m.body().unwrap()).unwrap()).collect()
    }

    pub async fn desired(&self) -> i32 {
        shared::testing::desired_count(&aws_sdk_ecs::Client::new(&self.setup), &self.api).await
    }

    /// The incident's history, as `incident-ledger history` lists it.
    pub async fn history(&self) -> Vec<incident_core::ledger::Record> {
        self.deps.ledger.history(&self.incident()).await.unwrap()
    }
}
