//! `incident-ledger pause|resume|history|restore`: prints its answer as JSON on stdout; exit status
//! 0 on success, 1 on failure (the reason on stderr), 2 on bad usage.

use clap::{Parser, Subcommand};
use incident_ledger::{Command, permissions, run};
use shared::aws::LazyClient;
use shared::config::TargetConfig;
use shared::ledger::{Ledger, LedgerSettings};
use shared::settings::Settings;

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
        #[arg(long)]
        dry_run: bool,
    },
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
        Action::Restore { incident, dry_run } => Command::Restore { incident, dry_run },
    };
    let fail = |code: i32, problem: String| -> ! {
        eprintln!("incident-ledger: {problem}");
        std::process::exit(code)
    };
    let settings = LedgerSettings::from_settings(&Settings::from_env()).unwrap_or_else(|e| fail(2, e.to_string()));
    let config = shared::aws::load_sdk_config(env!("CARGO_PKG_NAME")).await.unwrap_or_else(|e| fail(2, e.to_string()));
    let ledger = Ledger { dynamodb: aws_sdk_dynamodb::Client::new(&config), table: args.table, settings };
    // The target map is needed to restore only.
    let scale = matches!(command, Command::Restore { .. }).then(|| incident_scale_up::Deps {
        ecs: LazyClient::new(&config, aws_sdk_ecs::Client::new),
        autoscaling: LazyClient::new(&config, aws_sdk_applicationautoscaling::Client::new),
        rds: LazyClient::new(&config, aws_sdk_rds::Client::new),
        elasticache: LazyClient::new(&config, aws_sdk_elasticache::Client::new),
        targets: TargetConfig::from_env().unwrap_or_else(|e| fail(2, e.to_string())),
        plans: shared::plan::PlanPolicy::default(),
    });
    match run(&command, &ledger, scale.as_ref()).await {
        Ok(answer) => println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default()),
        Err(err) => fail(1, err.to_string()),
    }
}
