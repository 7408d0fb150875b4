//! The reaper's settings, read once at cold start; each error names the variable.

use std::time::Duration;

use fluidity_names::service as deployment;
use shared::ConfigError;
use shared::ecs;
use shared::settings::{Settings, invalid};

#[derive(Debug, Clone, PartialEq)]
pub struct ReaperSettings {
    /// `CLUSTER` (required).
    pub cluster: String,
    /// `DEPLOYMENT_NAME`: only this deployment name's services are managed; unset, every service
    /// whose tags and name agree (`svc-<deployment_name>-<deployment_id>`).
    pub deployment_name: Option<String>,
    /// `LISTENER_ARN`: the ALB listener whose rules forward to the deployments' target groups.
    pub listener_arn: Option<String>,
    /// `CONSEC` (3): periods in a row with ShutdownReady = 1.
    pub consec: u32,
    /// `PERIOD` (300): seconds per period, a multiple of 60.
    pub period: i32,
    /// `MIN_AGE_SEC` (120): a service younger than this (since creation) is never retired.
    pub min_age: Duration,
    /// `MAX_AGE_HR` (48): a service draining for longer than this is retired without metrics.
    pub max_age: Duration,
    /// `METRIC_LAG_SEC` (120): the metric window ends this long before now. The drain watchers'
    /// EMF reaches CloudWatch through Logs a minute or two late, so the newest period is often
    /// still empty: read as "not ready", it would keep ready tasks waiting until MAX_AGE.
    pub metric_lag: Duration,
    /// Services handled at once.
    pub concurrency: usize,
}

impl ReaperSettings {
    pub fn new(cluster: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            deployment_name: None,
            listener_arn: None,
            consec: 3,
            period: 300,
            min_age: Duration::from_secs(120),
            max_age: Duration::from_secs(48 * 3600),
            metric_lag: Duration::from_secs(120),
            concurrency: 16,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&Settings::from_env())
    }

    pub fn from_settings(settings: &Settings<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let cluster = settings.required("CLUSTER")?;
        ecs::validate_name("CLUSTER", &cluster).map_err(|e| invalid("CLUSTER", e.to_string()))?;
        let mut s = Self::new(cluster);
        s.deployment_name = settings.parsed("DEPLOYMENT_NAME", |name| {
            deployment::valid_id(name)
                .then(|| name.to_owned())
                .ok_or_else(|| format!("{name:?} is not a deployment name"))
        })?;
        s.listener_arn = settings.optional("LISTENER_ARN");
        s.consec = settings.whole("CONSEC", s.consec, 1..=100)?;
        // CloudWatch accepts only multiples of 60 for standard-resolution metrics, and says so only at
        // query time; refusing at init names the problem before the first run.
        s.period = settings
            .parsed("PERIOD", |text| {
                text.parse::<i32>()
                    .ok()
                    .filter(|p| *p > 0 && p % 60 == 0 && *p <= 86_400)
                    .ok_or_else(|| format!("{text:?} must be a positive multiple of 60 seconds, at most 86400"))
            })?
            .unwrap_or(s.period);
        s.min_age = Duration::from_secs_f64(settings.number("MIN_AGE_SEC", s.min_age.as_secs_f64(), 0.0..=86_400.0)?);
        let max_age_hours = settings.number("MAX_AGE_HR", s.max_age.as_secs_f64() / 3600.0, 0.001..=24.0 * 365.0)?;
        s.max_age = Duration::from_secs_f64(max_age_hours * 3600.0);
        s.metric_lag = Duration::from_secs(settings.whole("METRIC_LAG_SEC", s.metric_lag.as_secs(), 0..=900)?);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<ReaperSettings, String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ReaperSettings::from_settings(&Settings::with(|name: &str| vars.get(name).cloned())).map_err(|e| e.to_string())
    }

    #[test]
    fn settings_refuse_what_cloudwatch_would_refuse_naming_the_variable() {
        let ok = env(&[("CLUSTER", "prod"), ("PERIOD", "120"), ("CONSEC", "2"), ("METRIC_LAG_SEC", "60")]).unwrap();
        assert_eq!((ok.period, ok.consec, ok.metric_lag), (120, 2, Duration::from_secs(60)));
        assert_eq!(env(&[("CLUSTER", "prod")]).unwrap().metric_lag, Duration::from_secs(120), "the default");
        assert!(env(&[("CLUSTER", "prod"), ("METRIC_LAG_SEC", "-5")]).unwrap_err().contains("METRIC_LAG_SEC"));
        for (name, value) in [("PERIOD", "90"), ("PERIOD", "0"), ("PERIOD", "-60"), ("PERIOD", "60.5")] {
            let err = env(&[("CLUSTER", "prod"), (name, value)]).unwrap_err();
            assert!(err.contains("PERIOD") && err.contains("multiple of 60"), "{value}: {err}");
        }
        for value in ["0", "2.5", "-1", "three"] {
            let err = env(&[("CLUSTER", "prod"), ("CONSEC", value)]).unwrap_err();
            assert!(err.contains("CONSEC") && err.contains("whole number"), "{value}: {err}");
        }
        assert!(env(&[]).unwrap_err().contains("CLUSTER"));
    }
}
