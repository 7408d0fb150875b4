//! An operator's AWS profiles, as people sign in with them: a `credential_process` (a company's
//! credential helper) and IAM Identity Center (SSO). The operator CLIs are run as binaries with
//! these and no keys in the environment, as on an operator's laptop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `~/.aws/config` with two profiles: `ops-process`, whose credential process prints keys (moto
/// takes any), and `ops-sso`, an Identity Center profile with no cached token (not signed in).
pub struct OperatorProfiles {
    dir: PathBuf,
}

impl OperatorProfiles {
    pub fn write() -> Self {
        let dir = std::env::temp_dir().join(format!("aws-profiles-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("profiles dir");
        let keys = r#"{"Version": 1, "AccessKeyId": "AKIAOPERATOR000000", "SecretAccessKey": "from-the-helper"}"#;
        let helper = dir.join("helper.sh");
        std::fs::write(&helper, format!("#!/bin/sh\necho '{keys}'\n")).expect("helper");
        let chmod = Command::new("chmod").arg("+x").arg(&helper).status().expect("chmod");
        assert!(chmod.success());
        let config = format!(
            "[profile ops-process]\ncredential_process = {}\nregion = us-east-1\n\n\
             [profile ops-sso]\nsso_session = company\nsso_account_id = 123456789012\n\
             sso_role_name = Operator\nregion = us-east-1\n\n\
             [sso-session company]\nsso_start_url = https://company.awsapps.com/start\nsso_region = us-east-1\n",
            helper.display()
        );
        std::fs::write(dir.join("config"), config).expect("config");
        std::fs::write(dir.join("credentials"), "").expect("credentials");
        Self { dir }
    }

    /// Runs `binary` with `args` as an operator signed in with `profile`: no keys in the
    /// environment, the profiles above, the emulator as AWS. The SSO token cache is this folder's.
    pub fn run(&self, binary: &Path, profile: &str, args: &[&str]) -> Output {
        Command::new(binary)
            .args(args)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_REGION")
            .env("AWS_CONFIG_FILE", self.dir.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.join("credentials"))
            .env("HOME", &self.dir)
            .env("AWS_PROFILE", profile)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
    }
}

impl Drop for OperatorProfiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
