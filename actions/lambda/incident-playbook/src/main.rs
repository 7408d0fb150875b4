use incident_ledger::DynamoLedger;
use incident_playbook::check::Clients;
use incident_playbook::invoke::Functions;
use incident_playbook::store::Store;
use incident_playbook::{Clock, Deps, config_from_env, handler, permissions};
use shared::aws::LazyClient;
use shared::runtime;
use shared::settings::Settings;

const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::permissions_flag(FUNCTION, permissions);
    runtime::init_tracing();
    let (targets, playbooks) = runtime::init_or_exit(config_from_env());
    let functions = runtime::init_or_exit(Functions::from_env());
    let table = runtime::init_or_exit(Settings::from_env().required("LEDGER_TABLE"));
    let config = runtime::init_or_exit(shared::aws::load_sdk_config(FUNCTION).await);
    let dynamodb = incident_ledger::client(&config);
    let deps = Deps {
        targets,
        playbooks,
        functions,
        lambda: LazyClient::new(&config, incident_playbook::invoke::client),
        clients: Clients::new(&config),
        store: Store { dynamodb: dynamodb.clone(), table: table.clone() },
        ledger: DynamoLedger { dynamodb, table },
        clock: Clock::default(),
    };
    runtime::run(|event| handler(event, &deps)).await
}
