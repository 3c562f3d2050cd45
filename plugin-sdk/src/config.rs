//! The admin's configuration for a plugin binding.

use std::fmt::Display;
use std::str::FromStr;

use crate::bindings::host;

/// Reads one key of the binding's configuration from the host. Values are returned as the
/// admin typed them; [`Config`] adds trimming, parsing and error messages.
///
/// Only works inside `evaluate` or `validate` (during `check_config` the configuration is
/// passed in instead), and only in a plugin running in Gatehouse.
pub fn get(key: &str) -> Option<String> {
    host::config(key)
}

/// A binding's configuration: string keys and values set by the admin.
///
/// `check_config` receives the configuration being bound; `evaluate` and `validate` read the
/// bound one with [`Config::binding`]. Values are trimmed, and an empty value counts as
/// unset, so `key=` in an admin form means "use the default".
#[derive(Debug, Clone)]
pub struct Config {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Pairs(Vec<(String, String)>),
    // Each lookup is one host call, so keys a plugin never reads are never copied.
    Binding,
}

impl Config {
    /// A configuration from key–value pairs, as `check_config` receives it. Also the way to
    /// build one in a test.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Config
    where
        K: Into<String>,
        V: Into<String>,
    {
        let pairs = pairs
            .into_iter()
            .map(|(key, value)| (key.into(), value.into()))
            .collect();
        Config {
            source: Source::Pairs(pairs),
        }
    }

    /// The configuration of the binding being evaluated, read from the host key by key.
    pub fn binding() -> Config {
        Config {
            source: Source::Binding,
        }
    }

    /// The trimmed value of `key`, or `None` when it is unset or blank.
    pub fn get(&self, key: &str) -> Option<String> {
        let raw = match &self.source {
            Source::Pairs(pairs) => pairs
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
            Source::Binding => get(key),
        }?;
        let value = raw.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// The value of `key`, or an error telling the admin to set it.
    pub fn require(&self, key: &str) -> Result<String, ConfigError> {
        self.get(key).ok_or_else(|| ConfigError::Missing {
            key: key.to_owned(),
        })
    }

    /// The value of `key` parsed with [`FromStr`], or `None` when it is unset.
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.parse_with(key, str::parse::<T>)
    }

    /// The value of `key` parsed with [`FromStr`], or `default` when it is unset.
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.parse(key)?.unwrap_or(default))
    }

    /// The value of `key` parsed by `parse`, or `None` when it is unset. A parse error
    /// becomes a [`ConfigError::Invalid`] naming the key and the value.
    pub fn parse_with<T, E: Display>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        parse(&value)
            .map(Some)
            .map_err(|reason| ConfigError::invalid(key, &value, reason))
    }

    /// The comma-separated items of `key`, trimmed, without empty ones; empty when unset.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Refuses keys that are not in `known`, so that a typo such as `timzone` is caught when
    /// the admin binds the plugin instead of silently falling back to a default. The
    /// generated `check-config` calls this with the plugin's declared config keys.
    pub fn reject_unknown_keys(&self, known: &[String]) -> Result<(), ConfigError> {
        let Source::Pairs(pairs) = &self.source else {
            return Ok(());
        };
        match pairs.iter().find(|(key, _)| !known.contains(key)) {
            Some((key, _)) => Err(ConfigError::Unknown {
                key: key.clone(),
                known: known.to_vec(),
            }),
            None => Ok(()),
        }
    }
}

/// A configuration the plugin cannot work with. Its text is shown to the admin, so it
/// names the key and says what to set instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required key is not set.
    #[error("config key `{key}` is not set; add it to the binding")]
    Missing {
        /// The key.
        key: String,
    },
    /// A key's value cannot be used.
    #[error("config key `{key}` has the value `{value}`, which is not valid: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// The value as the admin gave it.
        value: String,
        /// Why it is not valid, ideally with an example of a valid value.
        reason: String,
    },
    /// A key the plugin does not read.
    #[error(
        "config key `{key}` is not one this plugin reads; {}",
        known_keys(known)
    )]
    Unknown {
        /// The key.
        key: String,
        /// The keys the plugin reads.
        known: Vec<String>,
    },
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] for `key`, for checks that [`Config::parse_with`] cannot
    /// express, such as a value that is only wrong together with another one.
    pub fn invalid(key: &str, value: &str, reason: impl Display) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }
}

// Lets `?` turn a ConfigError into check_config's `Err(String)`.
impl From<ConfigError> for String {
    fn from(error: ConfigError) -> String {
        error.to_string()
    }
}

fn known_keys(known: &[String]) -> String {
    if known.is_empty() {
        "this plugin takes no configuration".to_owned()
    } else {
        format!("use one of: {}", known.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset_and_values_are_trimmed() {
        let config = Config::from_pairs([("start", "  09:00 "), ("end", "   ")]);
        assert_eq!(config.get("start").as_deref(), Some("09:00"));
        assert_eq!(config.get("end"), None);
        assert_eq!(config.parse_or("end", 5_u32), Ok(5));
    }

    #[test]
    fn parse_errors_name_the_key_and_value() {
        let config = Config::from_pairs([("required", "two")]);
        let error = config.parse::<u32>("required").unwrap_err();
        assert_eq!(
            error.to_string(),
            "config key `required` has the value `two`, which is not valid: invalid digit found in string"
        );
    }

    #[test]
    fn missing_required_key_says_to_set_it() {
        let error = Config::from_pairs::<&str, &str>([])
            .require("group")
            .unwrap_err();
        assert_eq!(
            String::from(error),
            "config key `group` is not set; add it to the binding"
        );
    }

    #[test]
    fn lists_drop_empty_items() {
        let config = Config::from_pairs([("kinds", " flow, ,plugin-assembly,")]);
        assert_eq!(config.list("kinds"), ["flow", "plugin-assembly"]);
        assert!(config.list("absent").is_empty());
    }

    #[test]
    fn unknown_keys_are_refused_with_the_known_ones() {
        let known = vec!["timezone".to_owned(), "days".to_owned()];
        let config = Config::from_pairs([("timezone", "UTC"), ("timzone", "UTC")]);
        assert_eq!(
            config.reject_unknown_keys(&known).unwrap_err().to_string(),
            "config key `timzone` is not one this plugin reads; use one of: timezone, days"
        );
        let config = Config::from_pairs([("anything", "1")]);
        assert_eq!(
            config.reject_unknown_keys(&[]).unwrap_err().to_string(),
            "config key `anything` is not one this plugin reads; this plugin takes no configuration"
        );
    }

    #[test]
    fn the_last_of_repeated_keys_wins() {
        let config = Config::from_pairs([("days", "mon"), ("days", "sat")]);
        assert_eq!(config.get("days").as_deref(), Some("sat"));
    }
}
