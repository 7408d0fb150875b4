//! IAM worlds: the emulator enforces no IAM, so the test command checks every AWS call a function
//! makes in a world against the policy its template would give it (`deployments/tests/check_iam.py`).
//!
//! A world names the function, the template and the stack parameters its role is rendered with
//! (the cluster, the service, the target cluster, ...), the stack's own resources its policy refers
//! to (a topic), and what the function must never be allowed to touch (a bystander service in the
//! same cluster). Its clients carry `app/<function>~<world id>` in their User-Agent, so the
//! emulator's recording of each call is matched to its world; the world is written to
//! `target/iam-worlds/<id>.json` for the check.

use std::io::Write;
use std::path::PathBuf;

use aws_config::SdkConfig;
use serde_json::{Map, Value, json};

use crate::ecs::ServiceRef;

/// The emulator's account and region: what a rendered policy's pseudo parameters stand for.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// `arn:aws:ecs:us-east-1:123456789012:service/<cluster>/<service>`.
pub fn service_arn(service: &ServiceRef) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{}/{}", service.cluster, service.service)
}

/// A lifecycle function's cluster: its own service, another that the deployment allows a request to
/// name (`OverrideServiceArns`), and a bystander of another owner, all in one cluster.
pub struct SharedCluster {
    pub own: ServiceRef,
    pub allowed: ServiceRef,
    pub bystander: ServiceRef,
}

impl SharedCluster {
    /// Creates the three services (own and allowed at `desired`, the bystander at 2) with the tests'
    /// own client `setup`.
    pub async fn create(setup: &aws_sdk_ecs::Client, prefix: &str, desired: i32) -> Self {
        let own = super::create_service(setup, prefix, desired).await;
        super::ensure_service(setup, &own, desired).await; // moto: running follows desired through UpdateService
        let allowed = ServiceRef::new(own.cluster.clone(), "other-server");
        super::ensure_service(setup, &allowed, desired).await;
        let bystander = ServiceRef::new(own.cluster.clone(), "production-api-service");
        super::ensure_service(setup, &bystander, 2).await;
        Self { own, allowed, bystander }
    }

    /// lambda.yaml's world for `function` in this cluster, the allowed service as its override, the
    /// bystander untouchable.
    pub fn lambda_world(&self, function: &'static str) -> IamWorldBuilder {
        IamWorld::of(function, "lambda.yaml")
            .parameter("ClusterName", &self.own.cluster)
            .parameter("ServiceName", &self.own.service)
            .parameter("OverrideServiceArns", service_arn(&self.allowed))
            .untouchable("ecs:UpdateService", service_arn(&self.bystander))
            .untouchable("ecs:DescribeServices", service_arn(&self.bystander))
    }

    /// What the function may act on in this world.
    pub fn scope(&self) -> crate::ecs::ServiceScope {
        crate::ecs::ServiceScope::only(self.own.clone()).allowing([self.allowed.clone()])
    }

    /// A request naming the allowed service.
    pub fn naming_allowed(&self) -> Value {
        json!({"cluster_name": self.allowed.cluster, "service_name": self.allowed.service})
    }
}

/// `arn:aws:dynamodb:us-east-1:123456789012:table/<name>`.
pub fn table_arn(name: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
}

/// One world, written when built.
#[derive(Debug, Clone)]
pub struct IamWorld {
    pub id: String,
    function: &'static str,
}

/// What a world is made of, before it is written.
#[derive(Debug, Clone)]
pub struct IamWorldBuilder {
    function: &'static str,
    template: &'static str,
    stack: String,
    parameters: Map<String, Value>,
    targets: Option<Value>,
    resources: Map<String, Value>,
    untouchable: Vec<Value>,
}

impl IamWorld {
    /// A world for `function` deployed by `template` (e.g. `lambda.yaml`).
    pub fn of(function: &'static str, template: &'static str) -> IamWorldBuilder {
        IamWorldBuilder {
            function,
            template,
            stack: format!("iam-{}", &uuid_like()[..8]),
            parameters: Map::new(),
            targets: None,
            resources: Map::new(),
            untouchable: Vec::new(),
        }
    }

    /// Names one more of the stack's resources after the world was written (a table the test made
    /// with the world's own clients).
    pub fn name_resource(&self, logical: &str, value: &str) {
        let path = worlds_dir().join(format!("{}.json", self.id));
        let mut world: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read the world")).expect("JSON");
        world["resources"][logical] = Value::String(value.to_owned());
        std::fs::write(&path, world.to_string()).expect("write the world");
    }

    /// The function's SDK config in this world: production settings, pointed at the emulator, its
    /// calls marked as this world's.
    pub async fn config(&self) -> SdkConfig {
        super::emulator_endpoint();
        let name = aws_config::AppName::new(format!("{}~{}", self.function, self.id)).expect("a valid app name");
        crate::aws::config_loader_named(Some(name)).expect("the compiled-in TLS roots").load().await
    }
}

impl IamWorldBuilder {
    /// The stack's name (`AWS::StackName`), which some policies are scoped by.
    pub fn stack(&self) -> &str {
        &self.stack
    }

    pub fn parameter(mut self, name: &str, value: impl Into<String>) -> Self {
        self.parameters.insert(name.to_owned(), Value::String(value.into()));
        self
    }

    /// The target map the stack is deployed with: the check renders the policy with the parameters
    /// deploy.sh derives from it (deployments/scripts/targets.py: the instances, databases, caches
    /// and secrets the roles are scoped to).
    pub fn targets(mut self, map: &Value) -> Self {
        self.targets = Some(map.clone());
        self
    }

    /// What `!Ref <logical>` of one of the stack's resources is in this world (a topic's ARN).
    pub fn resource(mut self, logical: &str, value: impl Into<String>) -> Self {
        self.resources.insert(logical.to_owned(), Value::String(value.into()));
        self
    }

    /// The rendered policy must deny `action` on `resource`, and no call may touch it.
    pub fn untouchable(mut self, action: &str, resource: impl Into<String>) -> Self {
        self.untouchable.push(json!({"action": action, "resource": resource.into()}));
        self
    }

    /// Writes the world for the check, and returns it. The test passing says only that the calls
    /// were made: their verdict is check_iam.py's, after the tests (it says so on stderr).
    pub fn write(self) -> IamWorld {
        let id = uuid_like()[..12].to_owned();
        let dir = worlds_dir();
        std::fs::create_dir_all(&dir).expect("create target/iam-worlds");
        let mut world = json!({
            "function": self.function, "template": self.template, "stack": self.stack,
            "parameters": self.parameters, "resources": self.resources, "untouchable": self.untouchable,
        });
        if let Some(map) = self.targets {
            world["targets"] = map;
        }
        std::fs::write(dir.join(format!("{id}.json")), world.to_string()).expect("write the IAM world");
        // Straight to the process's stderr: the harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "IAM world {id} of {} written: its calls are judged by deployments/tests/check_iam.py after the tests",
            self.function
        );
        IamWorld { id, function: self.function }
    }
}

/// `target/iam-worlds`, where the check reads the worlds.
pub fn worlds_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::fixtures_dir().join("../target"));
    target.join("iam-worlds")
}

fn uuid_like() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
