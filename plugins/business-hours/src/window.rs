//! The weekly window and the decision, as plain functions of the configuration and the time.

use std::fmt;

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use gatehouse_plugin_sdk::{Config, ConfigError, Decision};

const MINUTES_PER_DAY: u32 = 24 * 60;

/// A weekly window: on the chosen days, from `start` to `end` in one time zone. When `end`
/// is not later than `start` the window runs past midnight into the next day.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    zone: Tz,
    /// Indexed by days from Monday.
    days: [bool; 7],
    days_spec: String,
    start: u32,
    end: u32,
}

impl BusinessHours {
    /// Reads `timezone` (required), `days` (default `mon-fri`), `start` (default `09:00`)
    /// and `end` (default `17:00`).
    pub fn from_config(config: &Config) -> Result<BusinessHours, ConfigError> {
        let zone_name = config.require("timezone")?;
        let zone = zone_name.parse::<Tz>().map_err(|_| {
            ConfigError::invalid(
                "timezone",
                &zone_name,
                "it is not an IANA time zone name; use one such as `Europe/Berlin`, `America/New_York` or `UTC`",
            )
        })?;
        let days_spec = config.get("days").unwrap_or_else(|| "mon-fri".to_owned());
        let days = parse_days(&days_spec)
            .map_err(|reason| ConfigError::invalid("days", &days_spec, reason))?;
        let start = config
            .parse_with("start", |value| parse_minutes(value, false))?
            .unwrap_or(9 * 60);
        let end = config
            .parse_with("end", |value| parse_minutes(value, true))?
            .unwrap_or(17 * 60);
        if start == end {
            return Err(ConfigError::invalid(
                "end",
                &format_minutes(end),
                "it equals `start`, which leaves an empty window; for whole days set start=00:00 and end=24:00",
            ));
        }
        Ok(BusinessHours {
            zone,
            days,
            days_spec,
            start,
            end,
        })
    }

    /// Approves inside the window; otherwise pending until the window next opens.
    pub fn decide(&self, now: DateTime<Utc>) -> Decision {
        match self.next_opening(now) {
            None => Decision::approve(format!("inside business hours ({self})")),
            Some(opens_at) => {
                let wait_ms = (opens_at - now).num_milliseconds();
                // Rounded up, so that the recheck lands inside the window rather than just before it.
                let wait_seconds = u32::try_from((wait_ms + 999) / 1000)
                    .unwrap_or(u32::MAX)
                    .max(1);
                Decision::pending(format!(
                    "outside business hours ({self}); the window opens {}",
                    opens_at
                        .with_timezone(&self.zone)
                        .format("%a %Y-%m-%d %H:%M %Z"),
                ))
                .recheck_after(wait_seconds)
            }
        }
    }

    /// `None` when `now` is inside a window, otherwise when the next window opens.
    fn next_opening(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&self.zone).date_naive();
        // Yesterday's window may run past midnight; a week ahead always holds the next one.
        let first = today - Days::new(1);
        for offset in 0..=8 {
            let date = first + Days::new(offset);
            if !self.days[date.weekday().num_days_from_monday() as usize] {
                continue;
            }
            let opens = self.instant(date, self.start);
            let closes = if self.end > self.start {
                self.instant(date, self.end)
            } else {
                self.instant(date + Days::new(1), self.end)
            };
            if now < opens {
                return Some(opens);
            }
            if now < closes {
                return None;
            }
        }
        unreachable!("a window with at least one day opens within eight days")
    }

    /// The instant at which the zone's wall clock shows `minutes` past midnight on `date`.
    fn instant(&self, date: NaiveDate, minutes: u32) -> DateTime<Utc> {
        let (date, minutes) = if minutes == MINUTES_PER_DAY {
            (date + Days::new(1), 0)
        } else {
            (date, minutes)
        };
        let mut local = date.and_time(NaiveTime::MIN) + TimeDelta::minutes(i64::from(minutes));
        // A time skipped by a daylight-saving change happens when the clock resumes.
        for _ in 0..MINUTES_PER_DAY {
            match self.zone.from_local_datetime(&local) {
                LocalResult::Single(instant) | LocalResult::Ambiguous(instant, _) => {
                    return instant.with_timezone(&Utc);
                }
                LocalResult::None => local += TimeDelta::minutes(1),
            }
        }
        Utc.from_utc_datetime(&local)
    }
}

impl fmt::Display for BusinessHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}-{} {}",
            self.days_spec,
            format_minutes(self.start),
            format_minutes(self.end),
            self.zone.name()
        )
    }
}

/// Parses `mon-fri`, `mon,wed,fri`, `fri-mon` (wrapping) or `sat` into a set of days.
fn parse_days(spec: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for item in spec
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let (first, last) = match item.split_once('-') {
            Some((first, last)) => (parse_day(first)?, parse_day(last)?),
            None => {
                let day = parse_day(item)?;
                (day, day)
            }
        };
        let mut day = first;
        days[day.num_days_from_monday() as usize] = true;
        while day != last {
            day = day.succ();
            days[day.num_days_from_monday() as usize] = true;
        }
    }
    if days.iter().any(|&on| on) {
        Ok(days)
    } else {
        Err("it names no days; use, for example, `mon-fri` or `mon,wed,fri`".to_owned())
    }
}

fn parse_day(name: &str) -> Result<Weekday, String> {
    name.trim().parse::<Weekday>().map_err(|_| {
        format!("`{}` is not a day of the week; use names such as `mon` and ranges such as `mon-fri`, separated by commas", name.trim())
    })
}

/// Parses 24-hour `HH:MM` into minutes past midnight; `24:00` only when `end_of_day`.
fn parse_minutes(value: &str, end_of_day: bool) -> Result<u32, String> {
    let reason = if end_of_day {
        "use 24-hour HH:MM, such as `17:00`, or `24:00` for midnight at the end of the day"
    } else {
        "use 24-hour HH:MM, such as `09:00`"
    };
    let (hours, minutes) = value.split_once(':').ok_or(reason)?;
    let digits = |part: &str| {
        (part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    match (digits(hours), digits(minutes)) {
        (Some(24), Some(0)) if end_of_day => Ok(MINUTES_PER_DAY),
        (Some(hours @ 0..24), Some(minutes @ 0..60)) => Ok(hours * 60 + minutes),
        _ => Err(reason.to_owned()),
    }
}

fn format_minutes(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use gatehouse_plugin_sdk::Pending;

    use super::*;

    fn hours(pairs: &[(&str, &str)]) -> BusinessHours {
        BusinessHours::from_config(&Config::from_pairs(pairs.iter().copied())).unwrap()
    }

    fn config_error(pairs: &[(&str, &str)]) -> String {
        BusinessHours::from_config(&Config::from_pairs(pairs.iter().copied()))
            .unwrap_err()
            .to_string()
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn recheck_after(decision: &Decision) -> u32 {
        match decision {
            Decision::Pending(Pending {
                recheck_after_seconds: Some(seconds),
                ..
            }) => *seconds,
            other => panic!("expected pending with a recheck, got {other:?}"),
        }
    }

    fn berlin_office() -> BusinessHours {
        hours(&[("timezone", "Europe/Berlin")])
    }

    #[test]
    fn approves_inside_the_window() {
        // Monday 10:00 CET.
        let decision = berlin_office().decide(at("2026-01-05T09:00:00Z"));
        assert_eq!(
            decision,
            Decision::approve("inside business hours (mon-fri 09:00-17:00 Europe/Berlin)")
        );
    }

    #[test]
    fn opening_time_is_inside_and_closing_time_is_outside() {
        let office = berlin_office();
        assert!(office.decide(at("2026-01-05T08:00:00Z")).is_approve());
        assert!(
            office
                .decide(at("2026-01-05T16:00:00Z"))
                .as_pending()
                .is_some()
        );
    }

    #[test]
    fn before_opening_waits_until_the_window_opens() {
        // Monday 07:30 CET; opens 09:00 CET.
        let decision = berlin_office().decide(at("2026-01-05T06:30:00Z"));
        assert_eq!(recheck_after(&decision), 90 * 60);
        assert_eq!(
            decision.as_pending().unwrap().message,
            "outside business hours (mon-fri 09:00-17:00 Europe/Berlin); the window opens Mon 2026-01-05 09:00 CET"
        );
    }

    #[test]
    fn friday_evening_waits_for_monday_morning() {
        // Friday 17:00 CET to Monday 09:00 CET.
        let decision = berlin_office().decide(at("2026-01-09T16:00:00Z"));
        assert_eq!(recheck_after(&decision), (2 * 24 + 16) * 3600);
    }

    #[test]
    fn recheck_rounds_up_to_land_inside_the_window() {
        let decision = berlin_office().decide(at("2026-01-05T07:59:59.500Z"));
        assert_eq!(recheck_after(&decision), 1);
    }

    #[test]
    fn the_zone_decides_which_hours_count() {
        // 15:00 UTC on a Monday is 16:00 in Berlin but 10:00 in New York.
        let now = at("2026-01-05T15:00:00Z");
        assert!(berlin_office().decide(now).is_approve());
        let new_york = hours(&[("timezone", "America/New_York"), ("start", "11:00")]);
        assert_eq!(recheck_after(&new_york.decide(now)), 3600);
    }

    #[test]
    fn a_start_skipped_by_daylight_saving_opens_when_the_clock_resumes() {
        // Berlin skips 02:00-03:00 on Sunday 2026-03-29; 02:30 never happens, so the
        // window opens at 03:00 CEST (01:00 UTC).
        let night = hours(&[
            ("timezone", "Europe/Berlin"),
            ("days", "sun"),
            ("start", "02:30"),
            ("end", "04:00"),
        ]);
        let decision = night.decide(at("2026-03-29T00:30:00Z"));
        assert_eq!(recheck_after(&decision), 30 * 60);
    }

    #[test]
    fn windows_past_midnight_belong_to_the_day_they_open() {
        let night = hours(&[
            ("timezone", "UTC"),
            ("days", "fri"),
            ("start", "22:00"),
            ("end", "06:00"),
        ]);
        // Saturday 03:00 is inside Friday's window.
        assert!(night.decide(at("2026-01-10T03:00:00Z")).is_approve());
        // Saturday 07:00 waits for next Friday 22:00.
        assert_eq!(
            recheck_after(&night.decide(at("2026-01-10T07:00:00Z"))),
            (6 * 24 + 15) * 3600
        );
    }

    #[test]
    fn day_lists_and_wrapping_ranges() {
        let weekend = hours(&[
            ("timezone", "UTC"),
            ("days", "fri-mon"),
            ("start", "00:00"),
            ("end", "24:00"),
        ]);
        assert!(
            weekend.decide(at("2026-01-11T12:00:00Z")).is_approve(),
            "Sunday"
        );
        assert!(
            weekend
                .decide(at("2026-01-07T12:00:00Z"))
                .as_pending()
                .is_some(),
            "Wednesday"
        );
        let some = hours(&[
            ("timezone", "UTC"),
            ("days", "Mon, wed"),
            ("start", "00:00"),
            ("end", "24:00"),
        ]);
        assert!(
            some.decide(at("2026-01-07T12:00:00Z")).is_approve(),
            "Wednesday"
        );
        assert!(
            some.decide(at("2026-01-06T12:00:00Z"))
                .as_pending()
                .is_some(),
            "Tuesday"
        );
    }

    #[test]
    fn the_time_zone_is_required() {
        assert_eq!(
            config_error(&[]),
            "config key `timezone` is not set; add it to the binding"
        );
    }

    #[test]
    fn a_misspelt_zone_is_refused_with_examples() {
        assert_eq!(
            config_error(&[("timezone", "Europe/Berln")]),
            "config key `timezone` has the value `Europe/Berln`, which is not valid: it is not an IANA time zone name; use one such as `Europe/Berlin`, `America/New_York` or `UTC`"
        );
    }

    #[test]
    fn bad_days_are_refused_naming_the_day() {
        assert_eq!(
            config_error(&[("timezone", "UTC"), ("days", "mon-funday")]),
            "config key `days` has the value `mon-funday`, which is not valid: `funday` is not a day of the week; use names such as `mon` and ranges such as `mon-fri`, separated by commas"
        );
        assert!(config_error(&[("timezone", "UTC"), ("days", ",")]).contains("names no days"));
    }

    #[test]
    fn bad_times_are_refused() {
        for bad in ["9", "9:00", "25:00", "12:60", "24:00", "noon"] {
            assert_eq!(
                config_error(&[("timezone", "UTC"), ("start", bad)]),
                format!(
                    "config key `start` has the value `{bad}`, which is not valid: use 24-hour HH:MM, such as `09:00`"
                )
            );
        }
        assert!(
            config_error(&[("timezone", "UTC"), ("end", "24:30")]).contains("`24:00` for midnight")
        );
    }

    #[test]
    fn an_empty_window_is_refused() {
        assert_eq!(
            config_error(&[("timezone", "UTC"), ("start", "10:00"), ("end", "10:00")]),
            "config key `end` has the value `10:00`, which is not valid: it equals `start`, which leaves an empty window; for whole days set start=00:00 and end=24:00"
        );
    }
}
