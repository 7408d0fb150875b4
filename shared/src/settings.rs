//! Every function's settings from its environment, read once at cold start. Each error names the
//! variable and what it must be, and stops the function at init (see `runtime::init_or_exit`).
//! The lookup is a parameter, so tests read from a map instead of the process environment.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::ConfigError;

/// The variables a function reads, through one lookup.
pub struct Settings<F> {
    lookup: F,
}

/// The process environment's lookup.
pub type Env = fn(&str) -> Option<String>;

impl Settings<Env> {
    pub fn from_env() -> Self {
        Self { lookup: |name| std::env::var(name).ok() }
    }
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    pub fn with(lookup: F) -> Self {
        Self { lookup }
    }

    /// The value, trimmed; unset and blank are both `None`.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::MissingEnv(name))
    }

    /// The value made into a `T` by `parse`, whose error says what the value must be; `None` when unset.
    pub fn parsed<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.optional(name).map(|text| parse(&text).map_err(|problem| invalid(name, problem))).transpose()
    }

    /// A whole number in `range`, or `default` when unset.
    pub fn whole<T>(&self, name: &'static str, default: T, range: RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        let value = self.parsed(name, |text| {
            text.parse::<T>()
                .ok()
                .filter(|v| range.contains(v))
                .ok_or_else(|| format!("{text:?} must be a whole number from {} to {}", range.start(), range.end()))
        })?;
        Ok(value.unwrap_or(default))
    }

    /// A finite number in `range`, or `default` when unset.
    pub fn number(&self, name: &'static str, default: f64, range: RangeInclusive<f64>) -> Result<f64, ConfigError> {
        let value = self.parsed(name, |text| {
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && range.contains(v))
                .ok_or_else(|| format!("{text:?} must be a number from {} to {}", range.start(), range.end()))
        })?;
        Ok(value.unwrap_or(default))
    }
}

pub fn invalid(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::InvalidEnv { name, problem: problem.into() }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Settings::with(move |name: &str| vars.get(name).cloned())
    }

    #[test]
    fn unset_and_blank_are_the_default() {
        let s = settings(&[("BLANK", "  ")]);
        assert_eq!(s.whole("UNSET", 7u32, 1..=10).unwrap(), 7);
        assert_eq!(s.whole("BLANK", 7u32, 1..=10).unwrap(), 7);
        assert_eq!(s.required("BLANK").unwrap_err().to_string(), "environment variable BLANK is required but not set");
    }

    #[test]
    fn errors_name_the_variable_and_the_rule() {
        let s = settings(&[("N", "2.5"), ("F", "nan"), ("OK", " 4 ")]);
        assert_eq!(
            s.whole("N", 1u32, 1..=100).unwrap_err().to_string(),
            "environment variable N is invalid: \"2.5\" must be a whole number from 1 to 100"
        );
        assert!(s.number("F", 1.0, 0.0..=5.0).unwrap_err().to_string().contains("F is invalid"));
        assert_eq!(s.whole("OK", 1u32, 1..=10).unwrap(), 4);
        let parsed = s.parsed("OK", |t| if t == "4" { Ok(40) } else { Err("four".into()) }).unwrap();
        assert_eq!(parsed, Some(40));
    }
}
