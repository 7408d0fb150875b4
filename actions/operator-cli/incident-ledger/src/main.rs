//! `incident-ledger pause|resume|history|restore`: prints its answer as JSON on stdout; exit status
//! 0 on success, 1 on failure (the reason on stderr), 2 on bad usage.

use clap::{Parser, Subcommand};
use incident_core::config::TargetConfig;
use incident_ledger::DynamoLedger;
use incident_ledger::cli::{Command, Context, permissions, run};
use incident_ledger::restore::Clients;
use shared::aws::LazyClient;

#[derive(Parser, Debug)]
#[command(name = "incident-ledger", about = "Pause or resume automation, read an incident's history, restore after it")]
struct Args {
    /// The ledger's DynamoDB table (the actions stack's LedgerTableName output).
    #[arg(long, env = "LEDGER_TABLE")]
    table: String,
    #[command(subcommand)]
    command: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Every mutating action (or those on one target) answers 423 until resumed.
    Pause {
        /// A target of the map (TARGETS_FILE or TARGETS_JSON, as the actions have it).
        #[arg(long)]
        target: Option<String>,
        /// Why: shown in every refusal.
        #[arg(long)]
        reason: String,
        /// Who: shown in every refusal (default: $USER).
        #[arg(long, env = "USER", default_value = "an operator")]
        by: String,
    },
    /// Lifts a pause.
    Resume {
        #[arg(long)]
        target: Option<String>,
    },
    /// What automation did for an incident, oldest first.
    History { incident: String },
    /// Puts back what scale_up raised for an incident, where it is still as automation left it.
    /// Needs the target map (TARGETS_FILE or TARGETS_JSON, as the actions have it).
    Restore {
        incident: String,
        /// Show what it would do, and when, without doing it.
        #[arg(long)]
        dry_run: bool,
        /// Resize RDS classes, node types and Memcached nodes now, not at the next maintenance
        /// window (a reboot or failover now).
        #[arg(long)]
        now: bool,
    },
}

fn fail(code: i32, problem: String) -> ! {
    eprintln!("incident-ledger: {problem}");
    std::process::exit(code)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    shared::runtime::permissions_flag(env!("CARGO_PKG_NAME"), permissions);
    shared::runtime::init_tracing();
    let args = Args::parse();
    let command = match args.command {
        Action::Pause { target, reason, by } => Command::Pause { target, by, reason },
        Action::Resume { target } => Command::Resume { target },
        Action::History { incident } => Command::History { incident },
        Action::Restore { incident, dry_run, now } => Command::Restore { incident, dry_run, now },
    };
    let config = shared::aws::load_sdk_config(env!("CARGO_PKG_NAME")).await.unwrap_or_else(|e| fail(2, e.to_string()));
    let ledger = DynamoLedger { dynamodb: aws_sdk_dynamodb::Client::new(&config), table: args.table };
    let context = context(&command, &config);
    match run(&command, &ledger, &context).await {
        Ok(answer) => println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default()),
        Err(err) => fail(1, err.to_string()),
    }
}

/// The target map when one is set (a restore needs it), and a restore's clients.
fn context(command: &Command, config: &aws_config::SdkConfig) -> Context {
    let configured = std::env::var_os("TARGETS_FILE").is_some() || std::env::var_os("TARGETS_JSON").is_some();
    let restoring = matches!(command, Command::Restore { .. });
    let targets =
        (configured || restoring).then(|| TargetConfig::from_env().unwrap_or_else(|e| fail(2, e.to_string())));
    let clients = restoring.then(|| Clients {
        ecs: LazyClient::new(config, aws_sdk_ecs::Client::new),
        autoscaling: LazyClient::new(config, aws_sdk_applicationautoscaling::Client::new),
        rds: LazyClient::new(config, aws_sdk_rds::Client::new),
        elasticache: LazyClient::new(config, aws_sdk_elasticache::Client::new),
    });
    Context { targets, clients }
}
