//! What one plugin call may use, with the defaults every plugin gets and the ceilings no
//! override may pass.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Instructions a call may run. A warm Rust gate runs a few thousand and a Python gate a
/// few million; a billion is about a second of busy guest code, well past any real rule.
pub const DEFAULT_FUEL: u64 = 1_000_000_000;

/// Wall time a call may take, whatever the plugin does, waits inside WASI included.
pub const DEFAULT_WALL_TIME: Duration = Duration::from_secs(1);

/// Linear memory a call may grow to. A componentize-py plugin starts at about 20 MiB.
pub const DEFAULT_MEMORY_BYTES: usize = 128 << 20;

/// Table elements, summed over the call's tables. Python components declare a few
/// thousand function-table entries.
pub const DEFAULT_TABLE_ELEMENTS: usize = 50_000;

/// Core instances, tables and memories a component may create. Rust plugins use a handful;
/// Python components link about a dozen core modules.
pub const DEFAULT_INSTANCES: usize = 64;
pub const DEFAULT_TABLES: usize = 64;
pub const DEFAULT_MEMORIES: usize = 8;

/// Bytes a call may write to its log, through `host.log`, stdout and stderr together.
pub const DEFAULT_LOG_BYTES: usize = 64 << 10;

/// Bytes of text a call may return: reasons, messages and findings.
pub const DEFAULT_OUTPUT_BYTES: usize = 64 << 10;

/// The ceiling for a memory override. The pooling allocator reserves this much address
/// space per slot, so it bounds every override.
pub const MAX_MEMORY_BYTES: usize = 1 << 30;

/// The ceiling for a wall-time override: a gate that needs longer is doing I/O it should not.
pub const MAX_WALL_TIME: Duration = Duration::from_secs(60);

/// Limits for one plugin's calls. Admins override any of them per plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    pub fuel: u64,
    #[serde(with = "millis")]
    pub wall_time: Duration,
    pub memory_bytes: usize,
    pub table_elements: usize,
    pub instances: usize,
    pub tables: usize,
    pub memories: usize,
    pub log_bytes: usize,
    pub output_bytes: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            fuel: DEFAULT_FUEL,
            wall_time: DEFAULT_WALL_TIME,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            table_elements: DEFAULT_TABLE_ELEMENTS,
            instances: DEFAULT_INSTANCES,
            tables: DEFAULT_TABLES,
            memories: DEFAULT_MEMORIES,
            log_bytes: DEFAULT_LOG_BYTES,
            output_bytes: DEFAULT_OUTPUT_BYTES,
        }
    }
}

/// A limit override that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginLimitsError {
    #[error("limit `{name}` must be greater than zero")]
    Zero { name: &'static str },
    #[error("limit `{name}` is {value}, above the host's ceiling of {ceiling}")]
    AboveCeiling {
        name: &'static str,
        value: String,
        ceiling: String,
    },
}

impl PluginLimits {
    /// Checks that every limit is usable and within what the engine was sized for.
    pub fn validate(&self) -> Result<(), PluginLimitsError> {
        let counts: [(&'static str, u64); 8] = [
            ("fuel", self.fuel),
            ("wall_time", self.wall_time.as_millis() as u64),
            ("memory_bytes", self.memory_bytes as u64),
            ("table_elements", self.table_elements as u64),
            ("instances", self.instances as u64),
            ("tables", self.tables as u64),
            ("memories", self.memories as u64),
            ("log_bytes", self.log_bytes as u64),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, v)| *v == 0) {
            return Err(PluginLimitsError::Zero { name });
        }
        if self.output_bytes == 0 {
            return Err(PluginLimitsError::Zero {
                name: "output_bytes",
            });
        }
        if self.memory_bytes > MAX_MEMORY_BYTES {
            return Err(PluginLimitsError::AboveCeiling {
                name: "memory_bytes",
                value: self.memory_bytes.to_string(),
                ceiling: MAX_MEMORY_BYTES.to_string(),
            });
        }
        if self.wall_time > MAX_WALL_TIME {
            return Err(PluginLimitsError::AboveCeiling {
                name: "wall_time",
                value: format!("{} ms", self.wall_time.as_millis()),
                ceiling: format!("{} ms", MAX_WALL_TIME.as_millis()),
            });
        }
        Ok(())
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(PluginLimits::default().validate(), Ok(()));
    }

    #[test]
    fn overrides_above_the_ceiling_are_refused() {
        let limits = PluginLimits {
            memory_bytes: MAX_MEMORY_BYTES + 1,
            ..PluginLimits::default()
        };
        assert!(matches!(
            limits.validate(),
            Err(PluginLimitsError::AboveCeiling {
                name: "memory_bytes",
                ..
            })
        ));
        let limits = PluginLimits {
            fuel: 0,
            ..PluginLimits::default()
        };
        assert_eq!(
            limits.validate(),
            Err(PluginLimitsError::Zero { name: "fuel" })
        );
    }

    #[test]
    fn a_partial_override_keeps_the_other_defaults() {
        let limits: PluginLimits = serde_json::from_str(r#"{"wall_time": 250}"#).unwrap();
        assert_eq!(limits.wall_time, Duration::from_millis(250));
        assert_eq!(limits.fuel, DEFAULT_FUEL);
        assert!(serde_json::from_str::<PluginLimits>(r#"{"walltime": 250}"#).is_err());
    }
}
