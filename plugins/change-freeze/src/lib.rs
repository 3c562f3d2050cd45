//! Rejects deployments inside configured freeze windows unless the notes carry the emergency
//! marker the admin allowed; approves outside them. See the README.

use chrono::{DateTime, FixedOffset, Utc};
use gatehouse_plugin_sdk::prelude::*;

/// One freeze: from `start` (inclusive) to `end` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// As the admin wrote it, for messages.
    pub text: String,
}

/// The freeze calendar and its override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    pub windows: Vec<Window>,
    pub emergency_marker: Option<String>,
}

impl Freeze {
    /// Reads `windows` (required; `start/end` intervals separated by `;`) and
    /// `emergency-marker` (optional; absent means no override).
    pub fn from_config(config: &Config) -> Result<Freeze, ConfigError> {
        let spec = config.require("windows")?;
        let windows = spec
            .split([';', '\n'])
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(parse_window)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| ConfigError::invalid("windows", &spec, reason))?;
        if windows.is_empty() {
            return Err(ConfigError::invalid(
                "windows",
                &spec,
                "it holds no window; use `start/end` intervals such as `2026-12-20T00:00Z/2027-01-02T00:00Z`, separated by `;`",
            ));
        }
        Ok(Freeze {
            windows,
            emergency_marker: config.get("emergency-marker"),
        })
    }

    /// Decides at `now`; `notes` is read only inside a freeze.
    pub fn decide(&self, now: DateTime<Utc>, notes: impl FnOnce() -> String) -> Decision {
        let Some(window) = self.windows.iter().find(|w| w.start <= now && now < w.end) else {
            return Decision::approve("no change freeze is in effect");
        };
        match &self.emergency_marker {
            Some(marker) if notes().contains(marker.as_str()) => Decision::approve(format!(
                "inside the change freeze {}, allowed as an emergency: the notes carry {marker}",
                window.text
            )),
            Some(marker) => Decision::reject(format!(
                "deployments are frozen during {}; deploy after the freeze ends, or for an emergency put {marker} in the notes",
                window.text
            )),
            None => Decision::reject(format!(
                "deployments are frozen during {}; deploy after the freeze ends",
                window.text
            )),
        }
    }
}

fn parse_window(text: &str) -> Result<Window, String> {
    let (start, end) = text.split_once('/').ok_or_else(|| {
        format!(
            "`{text}` is not a `start/end` interval such as `2026-12-20T00:00Z/2027-01-02T00:00Z`"
        )
    })?;
    let start = parse_instant(start.trim())?;
    let end = parse_instant(end.trim())?;
    if end <= start {
        return Err(format!(
            "`{text}` ends before it starts; put the earlier time first"
        ));
    }
    Ok(Window {
        start,
        end,
        text: text.to_owned(),
    })
}

/// RFC 3339, with the seconds optional: `2026-12-20T00:00Z`, `2026-12-20T00:00:00+01:00`.
fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    let with_offset = match text.strip_suffix(['Z', 'z']) {
        Some(local) => format!("{local}+00:00"),
        None => text.to_owned(),
    };
    ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z"]
        .iter()
        .find_map(|format| DateTime::<FixedOffset>::parse_from_str(&with_offset, format).ok())
        .map(|instant| instant.with_timezone(&Utc))
        .ok_or_else(|| {
            format!("`{text}` is not an RFC 3339 time with an offset, such as `2026-12-20T00:00Z` or `2026-12-20T00:00:00+01:00`")
        })
}

struct ChangeFreeze;

impl Plugin for ChangeFreeze {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "change-freeze",
            env!("CARGO_PKG_VERSION"),
            "Rejects deployments inside change-freeze windows unless the notes carry the emergency marker.",
        )
        .config_keys(["windows", "emergency-marker"])
    }

    fn check_config(config: &Config) -> Result<(), String> {
        Freeze::from_config(config)?;
        Ok(())
    }
}

impl Approver for ChangeFreeze {
    fn evaluate(deployment: &Deployment, _votes: &[Vote]) -> Decision {
        let freeze = match Freeze::from_config(&Config::binding()) {
            Ok(freeze) => freeze,
            Err(error) => return Decision::reject(error.to_string()),
        };
        let Some(now) = i64::try_from(now())
            .ok()
            .and_then(DateTime::from_timestamp_millis)
        else {
            return Decision::reject(format!("the host's time {} ms is out of range", now()));
        };
        freeze.decide(now, || deployment.notes())
    }
}

export_approver!(ChangeFreeze);

#[cfg(test)]
mod tests {
    use super::*;

    const HOLIDAYS: &str = "2026-12-20T00:00Z/2027-01-02T00:00Z";

    fn freeze(pairs: &[(&str, &str)]) -> Freeze {
        Freeze::from_config(&Config::from_pairs(pairs.iter().copied())).unwrap()
    }

    fn config_error(pairs: &[(&str, &str)]) -> String {
        Freeze::from_config(&Config::from_pairs(pairs.iter().copied()))
            .unwrap_err()
            .to_string()
    }

    fn at(text: &str) -> DateTime<Utc> {
        parse_instant(text).unwrap()
    }

    #[test]
    fn outside_every_window_it_approves() {
        let freeze = freeze(&[("windows", HOLIDAYS)]);
        let decision = freeze.decide(at("2026-12-19T23:59:59Z"), || {
            unreachable!("notes are not needed")
        });
        assert_eq!(decision, Decision::approve("no change freeze is in effect"));
        assert!(
            freeze
                .decide(at("2027-01-02T00:00Z"), String::new)
                .is_approve(),
            "the end is exclusive"
        );
    }

    #[test]
    fn inside_a_window_it_rejects_without_an_override() {
        let freeze = freeze(&[("windows", HOLIDAYS)]);
        assert_eq!(
            freeze.decide(at("2026-12-20T00:00Z"), || "[EMERGENCY] fix".to_owned()),
            Decision::reject(
                "deployments are frozen during 2026-12-20T00:00Z/2027-01-02T00:00Z; deploy after the freeze ends"
            )
        );
    }

    #[test]
    fn the_allowed_marker_in_the_notes_overrides_the_freeze() {
        let freeze = freeze(&[("windows", HOLIDAYS), ("emergency-marker", "[EMERGENCY]")]);
        let now = at("2026-12-24T12:00Z");
        assert!(
            freeze
                .decide(now, || "[EMERGENCY] payment outage".to_owned())
                .is_approve()
        );
        assert_eq!(
            freeze.decide(now, || "routine".to_owned()),
            Decision::reject(
                "deployments are frozen during 2026-12-20T00:00Z/2027-01-02T00:00Z; deploy after the freeze ends, or for an emergency put [EMERGENCY] in the notes"
            )
        );
    }

    #[test]
    fn every_window_in_the_list_counts_and_offsets_are_honoured() {
        let freeze = freeze(&[(
            "windows",
            "2026-12-20T00:00Z/2027-01-02T00:00Z; 2026-06-30T18:00:00+02:00/2026-07-01T08:00:00+02:00",
        )]);
        // 16:30 UTC is 18:30 in +02:00.
        assert!(
            freeze
                .decide(at("2026-06-30T16:30Z"), String::new)
                .is_reject()
        );
        assert!(
            freeze
                .decide(at("2026-06-30T15:30Z"), String::new)
                .is_approve()
        );
    }

    #[test]
    fn bad_windows_are_refused_with_an_example() {
        assert_eq!(
            config_error(&[]),
            "config key `windows` is not set; add it to the binding"
        );
        assert!(
            config_error(&[("windows", "2026-12-20")]).contains("is not a `start/end` interval")
        );
        assert_eq!(
            config_error(&[("windows", "2026-12-20/2027-01-02T00:00Z")]),
            "config key `windows` has the value `2026-12-20/2027-01-02T00:00Z`, which is not valid: `2026-12-20` is not an RFC 3339 time with an offset, such as `2026-12-20T00:00Z` or `2026-12-20T00:00:00+01:00`"
        );
        assert!(
            config_error(&[("windows", "2027-01-02T00:00Z/2026-12-20T00:00Z")])
                .contains("ends before it starts")
        );
        assert!(config_error(&[("windows", " ; ")]).contains("holds no window"));
    }
}
