//! Approves deployments inside a weekly window in one time zone; outside it, waits until
//! the window opens. See the README for the configuration.

mod window;

use chrono::DateTime;
use gatehouse_plugin_sdk::prelude::*;

pub use window::BusinessHours;

struct BusinessHoursGate;

impl Plugin for BusinessHoursGate {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "business-hours",
            env!("CARGO_PKG_VERSION"),
            "Approves deployments inside a weekly time window, such as Mon-Fri 09:00-17:00 Europe/Berlin, and otherwise waits for it to open.",
        )
        .config_keys(["timezone", "days", "start", "end"])
    }

    fn check_config(config: &Config) -> Result<(), String> {
        BusinessHours::from_config(config)?;
        Ok(())
    }
}

impl Approver for BusinessHoursGate {
    fn evaluate(_deployment: &Deployment, _votes: &[Vote]) -> Decision {
        let hours = match BusinessHours::from_config(&Config::binding()) {
            Ok(hours) => hours,
            Err(error) => return Decision::reject(error.to_string()),
        };
        match i64::try_from(now())
            .ok()
            .and_then(DateTime::from_timestamp_millis)
        {
            Some(now) => hours.decide(now),
            None => Decision::reject(format!("the host's time {} ms is out of range", now())),
        }
    }
}

export_approver!(BusinessHoursGate);
