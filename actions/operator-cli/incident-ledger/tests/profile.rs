#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! `incident-ledger` signed in as operators sign in, with no keys in the environment: a profile
//! whose credential process prints keys reads the history; an Identity Center (SSO) profile that is
//! not signed in says so, rather than that the build cannot read such profiles (the `sso` and
//! `credentials-process` features, which the Lambda zips do not carry).

use std::path::Path;

use shared::testing::emulator_config;
use shared::testing::profile::OperatorProfiles;

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn pause_and_history_sign_in_with_a_credential_process_or_an_sso_profile() {
    let table = incident_ledger::testing::create_table(&emulator_config().await).await;
    let profiles = OperatorProfiles::write();
    let cli = Path::new(env!("CARGO_BIN_EXE_incident-ledger"));
    let paused = profiles.run(cli, "ops-process", &["--table", &table, "pause", "--reason", "game day"]);
    assert!(paused.status.success(), "{}", String::from_utf8_lossy(&paused.stderr));
    let history = profiles.run(cli, "ops-process", &["--table", &table, "history", "INC-P"]);
    assert!(history.status.success(), "{}", String::from_utf8_lossy(&history.stderr));
    let sso = profiles.run(cli, "ops-sso", &["--table", &table, "history", "INC-P"]);
    let said = String::from_utf8_lossy(&sso.stderr).to_lowercase();
    assert!(!sso.status.success(), "no token: not signed in");
    assert!(said.contains("sso") && !said.contains("feature"), "the SSO profile was read as one: {said}");
}
