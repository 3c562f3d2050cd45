//! The five example plugins, end to end: the real components from `target/plugins`, called
//! through the real runtime, asserting what a requester, an approver or an admin would see.
//!
//! Build the components first with `scripts/build-plugins`.

mod support;

use std::sync::{Arc, OnceLock};

use gatehouse::pipeline::{
    ComponentRef, Config, Decision, DeploymentFacts, Finding, PluginWorld, Severity, Timestamp,
    Vote,
};
use gatehouse::plugins::{Invocation, LoadedPlugin, Runtime, RuntimeOptions};

// ---------------------------------------------------------------------------------------
// One runtime, and each plugin loaded once, for the whole test binary.
//
// Every #[tokio::test] has its own tokio runtime, but a `Runtime` and a `LoadedPlugin` are
// not tied to one, so they can live in statics. Loading runs on a thread of its own with
// its own current-thread tokio runtime, because a test's runtime cannot be blocked on from
// inside itself. The Python plugin takes seconds to compile; this way it compiles once.
// ---------------------------------------------------------------------------------------

const EXAMPLE_PLUGINS: [&str; 5] = [
    "business-hours",
    "two-person-rule",
    "change-freeze",
    "solution-policy",
    "change-ticket-py",
];

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(RuntimeOptions::default()).expect("the runtime starts"))
}

/// The component `target/plugins/<name>.wasm`, loaded on first use.
fn plugin(name: &str) -> &'static LoadedPlugin {
    static LOADED: [OnceLock<LoadedPlugin>; EXAMPLE_PLUGINS.len()] =
        [const { OnceLock::new() }; EXAMPLE_PLUGINS.len()];
    let index = EXAMPLE_PLUGINS
        .iter()
        .position(|known| *known == name)
        .unwrap_or_else(|| panic!("`{name}` is not one of the example plugins"));
    LOADED[index].get_or_init(|| load_on_its_own_thread(name))
}

fn load_on_its_own_thread(name: &str) -> LoadedPlugin {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for loading")
                    .block_on(runtime().load(support::plugin_bytes(name)))
                    .unwrap_or_else(|e| panic!("{name} does not load: {e}"))
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

// ---------------------------------------------------------------------------------------
// Calling the plugins.
// ---------------------------------------------------------------------------------------

/// A time for gates that do not look at the clock: Thursday 2026-11-26 16:43:20 UTC.
const NOW: Timestamp = 1_795_680_200_000;

/// A binding's configuration as key–value pairs, as an admin would type them.
type Binding = [(&'static str, &'static str)];

fn config(pairs: &[(&str, &str)]) -> Config {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

async fn evaluate_call(
    name: &str,
    deployment: DeploymentFacts,
    votes: &[Vote],
    pairs: &[(&str, &str)],
    now: Timestamp,
) -> Invocation<Decision> {
    runtime()
        .evaluate(
            plugin(name),
            Arc::new(deployment),
            votes,
            &config(pairs),
            now,
        )
        .await
}

async fn evaluate(
    name: &str,
    deployment: DeploymentFacts,
    votes: &[Vote],
    pairs: &[(&str, &str)],
    now: Timestamp,
) -> Decision {
    let call = evaluate_call(name, deployment, votes, pairs, now).await;
    call.result
        .unwrap_or_else(|e| panic!("{name} failed: {e}; its log: {:?}", call.log))
}

async fn validate(name: &str, deployment: DeploymentFacts, pairs: &[(&str, &str)]) -> Vec<Finding> {
    let call = runtime()
        .validate(plugin(name), Arc::new(deployment), &config(pairs), NOW)
        .await;
    call.result
        .unwrap_or_else(|e| panic!("{name} failed: {e}; its log: {:?}", call.log))
}

/// The plugin's verdict on a binding: `Err` holds the text shown to the admin.
async fn check_config(name: &str, pairs: &[(&str, &str)]) -> Result<(), String> {
    let call = runtime()
        .check_config(plugin(name), &config(pairs), NOW)
        .await;
    call.result
        .unwrap_or_else(|e| panic!("{name}'s check-config failed: {e}; its log: {:?}", call.log))
}

async fn refusal(name: &str, pairs: &[(&str, &str)]) -> String {
    match check_config(name, pairs).await {
        Err(message) => message,
        Ok(()) => panic!("{name} accepted the configuration {pairs:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Building inputs and expected answers.
// ---------------------------------------------------------------------------------------

/// An RFC 3339 time, such as `2026-01-09T18:00:00+01:00`, in the contract's milliseconds.
fn at(rfc3339: &str) -> Timestamp {
    let instant = chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("`{rfc3339}` is not RFC 3339: {e}"));
    Timestamp::try_from(instant.timestamp_millis()).expect("after 1970")
}

fn seconds_from(now: Timestamp, until: Timestamp) -> u32 {
    u32::try_from((until - now) / 1000).expect("a wait that fits in u32 seconds")
}

fn approve(reason: &str) -> Decision {
    Decision::Approve {
        reason: reason.to_owned(),
    }
}

fn reject(reason: &str) -> Decision {
    Decision::Reject {
        reason: reason.to_owned(),
    }
}

fn pending(message: &str, approvers: &[&str], recheck_after_seconds: Option<u32>) -> Decision {
    Decision::Pending {
        message: message.to_owned(),
        approvers: approvers.iter().map(|a| (*a).to_owned()).collect(),
        recheck_after_seconds,
    }
}

fn error_finding(code: &str, message: &str, component: Option<&str>) -> Finding {
    Finding {
        severity: Severity::Error,
        code: code.to_owned(),
        message: message.to_owned(),
        component: component.map(str::to_owned),
    }
}

fn with_notes(notes: &str) -> DeploymentFacts {
    DeploymentFacts {
        notes: notes.to_owned(),
        ..support::sample_deployment()
    }
}

fn with_comment(mut vote: Vote, comment: &str) -> Vote {
    vote.comment = comment.to_owned();
    vote
}

// ---------------------------------------------------------------------------------------
// Every plugin: what it says about itself, and unknown configuration keys.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_plugin_describes_itself_with_its_name_version_world_and_config_keys() {
    let expected: [(&str, &str, PluginWorld, &[&str]); 5] = [
        (
            "business-hours",
            "business-hours",
            PluginWorld::Approver,
            &["timezone", "days", "start", "end"],
        ),
        (
            "two-person-rule",
            "two-person-rule",
            PluginWorld::Approver,
            &["group", "required"],
        ),
        (
            "change-freeze",
            "change-freeze",
            PluginWorld::Approver,
            &["windows", "emergency-marker"],
        ),
        (
            "solution-policy",
            "solution-policy",
            PluginWorld::Validator,
            &[
                "publisher-prefix",
                "forbidden-kinds",
                "max-package-bytes",
                "production-stages",
            ],
        ),
        (
            "change-ticket-py",
            "change-ticket",
            PluginWorld::Approver,
            &["prefix", "approvers"],
        ),
    ];
    for (file, name, world, config_keys) in expected {
        let plugin = plugin(file);
        let info = plugin.info();
        assert_eq!(info.name, name, "{file}");
        assert_eq!(plugin.world(), world, "{file}");
        let version = semver::Version::parse(&info.version)
            .unwrap_or_else(|e| panic!("{file}'s version {:?} is not semver: {e}", info.version));
        assert_eq!(version, semver::Version::new(0, 1, 0), "{file}");
        assert!(
            !info.description.trim().is_empty(),
            "{file} has a description"
        );
        assert_eq!(info.config_keys, config_keys, "{file}");
    }
}

#[tokio::test]
async fn every_plugin_refuses_a_config_key_it_does_not_read() {
    // Each configuration is valid apart from one misspelt key.
    let cases: [(&str, &Binding, &str); 5] = [
        (
            "business-hours",
            &[("timezone", "Europe/Berlin"), ("timzone", "UTC")],
            "config key `timzone` is not one this plugin reads; use one of: timezone, days, start, end",
        ),
        (
            "two-person-rule",
            &[("group", "release-managers"), ("requierd", "3")],
            "config key `requierd` is not one this plugin reads; use one of: group, required",
        ),
        (
            "change-freeze",
            &[
                ("windows", "2026-12-20T00:00Z/2027-01-02T00:00Z"),
                ("emergency_marker", "[EMERGENCY]"),
            ],
            "config key `emergency_marker` is not one this plugin reads; use one of: windows, emergency-marker",
        ),
        (
            "solution-policy",
            &[("publisher-prefixes", "contoso")],
            "config key `publisher-prefixes` is not one this plugin reads; use one of: publisher-prefix, forbidden-kinds, max-package-bytes, production-stages",
        ),
        (
            "change-ticket-py",
            &[("prefix", "CHG"), ("approver", "group:cab")],
            "unknown key 'approver': this plugin reads only `prefix` and `approvers`; remove it or fix its spelling",
        ),
    ];
    for (name, pairs, message) in cases {
        assert_eq!(refusal(name, pairs).await, message, "{name}");
        let known: Vec<_> = pairs
            .iter()
            .copied()
            .filter(|(key, _)| plugin(name).info().config_keys.iter().any(|k| k == key))
            .collect();
        assert_eq!(
            check_config(name, &known).await,
            Ok(()),
            "{name} accepts the configuration without the misspelt key"
        );
    }
}

// ---------------------------------------------------------------------------------------
// business-hours
// ---------------------------------------------------------------------------------------

const BERLIN_OFFICE: &Binding = &[("timezone", "Europe/Berlin")];

async fn business_hours(pairs: &[(&str, &str)], now: Timestamp) -> Decision {
    evaluate(
        "business-hours",
        support::sample_deployment(),
        &[],
        pairs,
        now,
    )
    .await
}

#[tokio::test]
async fn business_hours_approves_inside_the_window() {
    // Monday 10:00 in Berlin.
    let decision = business_hours(BERLIN_OFFICE, at("2026-01-05T10:00:00+01:00")).await;
    assert_eq!(
        decision,
        approve("inside business hours (mon-fri 09:00-17:00 Europe/Berlin)")
    );
}

#[tokio::test]
async fn business_hours_on_friday_evening_waits_until_monday_morning() {
    let now = at("2026-01-09T18:00:00+01:00");
    let opens = at("2026-01-12T09:00:00+01:00");
    let decision = business_hours(BERLIN_OFFICE, now).await;
    assert_eq!(
        decision,
        pending(
            "outside business hours (mon-fri 09:00-17:00 Europe/Berlin); the window opens Mon 2026-01-12 09:00 CET",
            &[],
            Some(seconds_from(now, opens)),
        )
    );
    assert_eq!(seconds_from(now, opens), 63 * 3600);
}

#[tokio::test]
async fn business_hours_recheck_is_an_hour_shorter_across_the_spring_clock_change() {
    // Berlin moves from CET (+01:00) to CEST (+02:00) on Sunday 2026-03-29.
    let now = at("2026-03-27T18:00:00+01:00");
    let opens = at("2026-03-30T09:00:00+02:00");
    let decision = business_hours(BERLIN_OFFICE, now).await;
    assert_eq!(
        decision,
        pending(
            "outside business hours (mon-fri 09:00-17:00 Europe/Berlin); the window opens Mon 2026-03-30 09:00 CEST",
            &[],
            Some(62 * 3600),
        )
    );
    assert_eq!(seconds_from(now, opens), 62 * 3600);
}

#[tokio::test]
async fn business_hours_same_instant_in_another_time_zone_decides_differently() {
    // Monday 15:00 UTC is 16:00 in Berlin but already Tuesday 00:00 in Tokyo.
    let now = at("2026-01-05T15:00:00Z");
    assert_eq!(
        business_hours(&[("timezone", "Europe/Berlin")], now).await,
        approve("inside business hours (mon-fri 09:00-17:00 Europe/Berlin)")
    );
    assert_eq!(
        business_hours(&[("timezone", "Asia/Tokyo")], now).await,
        pending(
            "outside business hours (mon-fri 09:00-17:00 Asia/Tokyo); the window opens Tue 2026-01-06 09:00 JST",
            &[],
            Some(9 * 3600),
        )
    );
}

#[tokio::test]
async fn business_hours_reads_the_time_from_the_hosts_now() {
    // The same deployment and binding at two recorded times, neither of them the machine's
    // clock: the decision follows the `now` the host passes.
    let monday_morning = at("2026-01-05T07:30:00+01:00");
    let monday_mid_morning = at("2026-01-05T10:00:00+01:00");
    assert_eq!(
        business_hours(BERLIN_OFFICE, monday_morning).await,
        pending(
            "outside business hours (mon-fri 09:00-17:00 Europe/Berlin); the window opens Mon 2026-01-05 09:00 CET",
            &[],
            Some(90 * 60),
        )
    );
    assert_eq!(
        business_hours(BERLIN_OFFICE, monday_mid_morning).await,
        approve("inside business hours (mon-fri 09:00-17:00 Europe/Berlin)")
    );
}

#[tokio::test]
async fn business_hours_honours_configured_days_and_times() {
    let night_shift = &[
        ("timezone", "UTC"),
        ("days", "fri"),
        ("start", "22:00"),
        ("end", "06:00"),
    ];
    // Saturday 03:00 is inside the window that opened on Friday.
    assert_eq!(
        business_hours(night_shift, at("2026-01-10T03:00:00Z")).await,
        approve("inside business hours (fri 22:00-06:00 UTC)")
    );
    // Saturday 07:00 waits for next Friday 22:00.
    let now = at("2026-01-10T07:00:00Z");
    let decision = business_hours(night_shift, now).await;
    assert_eq!(
        decision,
        pending(
            "outside business hours (fri 22:00-06:00 UTC); the window opens Fri 2026-01-16 22:00 UTC",
            &[],
            Some(seconds_from(now, at("2026-01-16T22:00:00Z"))),
        )
    );
}

#[tokio::test]
async fn business_hours_check_config_refuses_an_unknown_time_zone_with_examples() {
    assert_eq!(
        refusal("business-hours", &[("timezone", "Europe/Berln")]).await,
        "config key `timezone` has the value `Europe/Berln`, which is not valid: it is not an IANA time zone name; use one such as `Europe/Berlin`, `America/New_York` or `UTC`"
    );
    assert_eq!(
        refusal("business-hours", &[]).await,
        "config key `timezone` is not set; add it to the binding"
    );
}

#[tokio::test]
async fn business_hours_check_config_refuses_bad_days_naming_the_day() {
    assert_eq!(
        refusal(
            "business-hours",
            &[("timezone", "UTC"), ("days", "mon-funday")]
        )
        .await,
        "config key `days` has the value `mon-funday`, which is not valid: `funday` is not a day of the week; use names such as `mon` and ranges such as `mon-fri`, separated by commas"
    );
}

#[tokio::test]
async fn business_hours_check_config_refuses_bad_times_and_an_empty_window() {
    assert_eq!(
        refusal("business-hours", &[("timezone", "UTC"), ("start", "9:00")]).await,
        "config key `start` has the value `9:00`, which is not valid: use 24-hour HH:MM, such as `09:00`"
    );
    assert_eq!(
        refusal(
            "business-hours",
            &[("timezone", "UTC"), ("start", "10:00"), ("end", "10:00")]
        )
        .await,
        "config key `end` has the value `10:00`, which is not valid: it equals `start`, which leaves an empty window; for whole days set start=00:00 and end=24:00"
    );
}

#[tokio::test]
async fn business_hours_check_config_accepts_a_full_binding() {
    let binding = &[
        ("timezone", "Europe/Berlin"),
        ("days", "mon-thu"),
        ("start", "08:00"),
        ("end", "16:00"),
    ];
    assert_eq!(check_config("business-hours", binding).await, Ok(()));
}

#[tokio::test]
async fn business_hours_fails_closed_when_evaluated_with_an_unusable_binding() {
    assert_eq!(
        business_hours(&[("timezone", "Mars/Olympus")], NOW).await,
        reject(
            "config key `timezone` has the value `Mars/Olympus`, which is not valid: it is not an IANA time zone name; use one such as `Europe/Berlin`, `America/New_York` or `UTC`"
        )
    );
}

// ---------------------------------------------------------------------------------------
// two-person-rule (the sample deployment is requested by `mia`)
// ---------------------------------------------------------------------------------------

const RELEASE_MANAGERS: &Binding = &[("group", "release-managers")];

async fn two_person_rule(pairs: &[(&str, &str)], votes: &[Vote]) -> Decision {
    evaluate(
        "two-person-rule",
        support::sample_deployment(),
        votes,
        pairs,
        NOW,
    )
    .await
}

/// A vote from a member of release-managers; the display name is the id in capitals.
fn release_manager(id: &str, approve: bool) -> Vote {
    support::vote(id, &["developers", "release-managers"], approve)
}

fn waiting_for(approved: u32) -> Decision {
    pending(
        &format!("{approved} of 2 approvals from group release-managers"),
        &["group:release-managers"],
        None,
    )
}

#[tokio::test]
async fn two_person_rule_without_votes_waits_for_the_group() {
    assert_eq!(two_person_rule(RELEASE_MANAGERS, &[]).await, waiting_for(0));
}

#[tokio::test]
async fn two_person_rule_one_member_approval_is_one_of_two() {
    let votes = [release_manager("ravi", true)];
    assert_eq!(
        two_person_rule(RELEASE_MANAGERS, &votes).await,
        waiting_for(1)
    );
}

#[tokio::test]
async fn two_person_rule_two_distinct_members_approve_and_are_named() {
    let votes = [release_manager("ravi", true), release_manager("ana", true)];
    assert_eq!(
        two_person_rule(RELEASE_MANAGERS, &votes).await,
        approve("approved by ANA, RAVI")
    );
}

#[tokio::test]
async fn two_person_rule_counts_the_same_member_twice_once() {
    let votes = [release_manager("ravi", true), release_manager("ravi", true)];
    assert_eq!(
        two_person_rule(RELEASE_MANAGERS, &votes).await,
        waiting_for(1)
    );
}

#[tokio::test]
async fn two_person_rule_ignores_the_requesters_own_approval() {
    // mia requested the deployment; here she is also a release manager.
    let votes = [release_manager("mia", true), release_manager("ravi", true)];
    assert_eq!(
        two_person_rule(RELEASE_MANAGERS, &votes).await,
        waiting_for(1)
    );
}

#[tokio::test]
async fn two_person_rule_ignores_approvals_from_outside_the_group() {
    let votes = [
        support::vote("olga", &["makers"], true),
        release_manager("ravi", true),
    ];
    assert_eq!(
        two_person_rule(RELEASE_MANAGERS, &votes).await,
        waiting_for(1)
    );
}

#[tokio::test]
async fn two_person_rule_a_members_no_rejects_naming_the_voter() {
    let votes = [release_manager("ravi", false)];
    assert_eq!(
        two_person_rule(RELEASE_MANAGERS, &votes).await,
        reject("vetoed by RAVI")
    );
}

#[tokio::test]
async fn two_person_rule_a_veto_rejects_even_after_enough_approvals_and_quotes_the_comment() {
    let votes = [
        release_manager("ana", true),
        release_manager("ravi", true),
        with_comment(release_manager("carol", false), "  not during the audit "),
    ];
    assert_eq!(
        two_person_rule(RELEASE_MANAGERS, &votes).await,
        reject("vetoed by CAROL: not during the audit")
    );
}

#[tokio::test]
async fn two_person_rule_with_required_1_approves_on_one_member() {
    let one = &[("group", "ops"), ("required", "1")];
    assert_eq!(
        two_person_rule(one, &[]).await,
        pending("0 of 1 approvals from group ops", &["group:ops"], None)
    );
    let votes = [support::vote("dave", &["ops"], true)];
    assert_eq!(
        two_person_rule(one, &votes).await,
        approve("approved by DAVE")
    );
}

#[tokio::test]
async fn two_person_rule_check_config_refuses_required_0() {
    assert_eq!(
        refusal("two-person-rule", &[("group", "ops"), ("required", "0")]).await,
        "config key `required` has the value `0`, which is not valid: a gate that needs no approvals approves everything; use 1 or more, or unbind the gate"
    );
}

#[tokio::test]
async fn two_person_rule_check_config_refuses_a_missing_group() {
    assert_eq!(
        refusal("two-person-rule", &[("required", "2")]).await,
        "config key `group` is not set; add it to the binding"
    );
}

// ---------------------------------------------------------------------------------------
// change-freeze
// ---------------------------------------------------------------------------------------

const HOLIDAYS: &str = "2026-12-20T00:00Z/2027-01-02T00:00Z";

const HOLIDAYS_WITH_EMERGENCIES: &Binding =
    &[("windows", HOLIDAYS), ("emergency-marker", "[EMERGENCY]")];

async fn change_freeze(pairs: &[(&str, &str)], notes: &str, now: Timestamp) -> Decision {
    evaluate("change-freeze", with_notes(notes), &[], pairs, now).await
}

fn christmas_eve() -> Timestamp {
    at("2026-12-24T12:00:00Z")
}

#[tokio::test]
async fn change_freeze_rejects_inside_a_window_without_the_marker() {
    assert_eq!(
        change_freeze(
            HOLIDAYS_WITH_EMERGENCIES,
            "Quarterly release",
            christmas_eve()
        )
        .await,
        reject(
            "deployments are frozen during 2026-12-20T00:00Z/2027-01-02T00:00Z; deploy after the freeze ends, or for an emergency put [EMERGENCY] in the notes"
        )
    );
}

#[tokio::test]
async fn change_freeze_approves_inside_a_window_when_the_notes_carry_the_allowed_marker() {
    assert_eq!(
        change_freeze(
            HOLIDAYS_WITH_EMERGENCIES,
            "Payment outage [EMERGENCY] hotfix",
            christmas_eve()
        )
        .await,
        approve(
            "inside the change freeze 2026-12-20T00:00Z/2027-01-02T00:00Z, allowed as an emergency: the notes carry [EMERGENCY]"
        )
    );
}

#[tokio::test]
async fn change_freeze_a_marker_the_binding_does_not_allow_does_not_override() {
    // No marker is configured at all.
    assert_eq!(
        change_freeze(
            &[("windows", HOLIDAYS)],
            "[EMERGENCY] hotfix",
            christmas_eve()
        )
        .await,
        reject(
            "deployments are frozen during 2026-12-20T00:00Z/2027-01-02T00:00Z; deploy after the freeze ends"
        )
    );
    // Another marker is configured, and the match is case-sensitive.
    let urgent = &[("windows", HOLIDAYS), ("emergency-marker", "[URGENT]")];
    for notes in ["[EMERGENCY] hotfix", "[urgent] hotfix"] {
        assert_eq!(
            change_freeze(urgent, notes, christmas_eve()).await,
            reject(
                "deployments are frozen during 2026-12-20T00:00Z/2027-01-02T00:00Z; deploy after the freeze ends, or for an emergency put [URGENT] in the notes"
            ),
            "notes {notes:?}"
        );
    }
}

#[tokio::test]
async fn change_freeze_approves_outside_every_window() {
    let two_windows = &[(
        "windows",
        "2026-12-20T00:00Z/2027-01-02T00:00Z; 2026-06-30T18:00+02:00/2026-07-01T08:00+02:00",
    )];
    for now in [
        "2026-12-19T23:59:59Z",
        // The end is exclusive.
        "2027-01-02T00:00:00Z",
        // 17:30 in +02:00, half an hour before the summer window.
        "2026-06-30T15:30:00Z",
    ] {
        assert_eq!(
            change_freeze(two_windows, "", at(now)).await,
            approve("no change freeze is in effect"),
            "at {now}"
        );
    }
}

#[tokio::test]
async fn change_freeze_every_window_counts_from_its_inclusive_start() {
    let two_windows = &[(
        "windows",
        "2026-12-20T00:00Z/2027-01-02T00:00Z; 2026-06-30T18:00+02:00/2026-07-01T08:00+02:00",
    )];
    assert!(matches!(
        change_freeze(two_windows, "", at("2026-12-20T00:00:00Z")).await,
        Decision::Reject { .. }
    ));
    assert_eq!(
        change_freeze(two_windows, "", at("2026-06-30T18:00:00+02:00")).await,
        reject(
            "deployments are frozen during 2026-06-30T18:00+02:00/2026-07-01T08:00+02:00; deploy after the freeze ends"
        )
    );
}

#[tokio::test]
async fn change_freeze_check_config_refuses_bad_windows() {
    let cases = [
        (
            vec![],
            "config key `windows` is not set; add it to the binding".to_owned(),
        ),
        (
            vec![("windows", "2026-12-20")],
            "config key `windows` has the value `2026-12-20`, which is not valid: `2026-12-20` is not a `start/end` interval such as `2026-12-20T00:00Z/2027-01-02T00:00Z`".to_owned(),
        ),
        (
            vec![("windows", "2026-12-20T00:00/2027-01-02T00:00Z")],
            "config key `windows` has the value `2026-12-20T00:00/2027-01-02T00:00Z`, which is not valid: `2026-12-20T00:00` is not an RFC 3339 time with an offset, such as `2026-12-20T00:00Z` or `2026-12-20T00:00:00+01:00`".to_owned(),
        ),
        (
            vec![("windows", "2027-01-02T00:00Z/2026-12-20T00:00Z")],
            "config key `windows` has the value `2027-01-02T00:00Z/2026-12-20T00:00Z`, which is not valid: `2027-01-02T00:00Z/2026-12-20T00:00Z` ends before it starts; put the earlier time first".to_owned(),
        ),
        (
            vec![("windows", " ; ")],
            // Values are trimmed before they are parsed.
            "config key `windows` has the value `;`, which is not valid: it holds no window; use `start/end` intervals such as `2026-12-20T00:00Z/2027-01-02T00:00Z`, separated by `;`".to_owned(),
        ),
    ];
    for (pairs, message) in cases {
        assert_eq!(refusal("change-freeze", &pairs).await, message, "{pairs:?}");
    }
    assert_eq!(
        check_config("change-freeze", HOLIDAYS_WITH_EMERGENCIES).await,
        Ok(())
    );
}

// ---------------------------------------------------------------------------------------
// solution-policy (a validator; the sample deployment goes to Production with notes)
// ---------------------------------------------------------------------------------------

const STRICT_POLICY: &Binding = &[
    ("publisher-prefix", "contoso, fabrikam"),
    ("forbidden-kinds", "plugin-assembly, custom-connector"),
    ("max-package-bytes", "1000000"),
];

async fn solution_policy(deployment: DeploymentFacts) -> Vec<Finding> {
    validate("solution-policy", deployment, STRICT_POLICY).await
}

#[tokio::test]
async fn solution_policy_finds_nothing_wrong_with_a_compliant_deployment() {
    assert_eq!(solution_policy(support::sample_deployment()).await, []);
}

#[tokio::test]
async fn solution_policy_reports_a_publisher_prefix_outside_the_list() {
    let deployment = DeploymentFacts {
        publisher_prefix: "new".into(),
        ..support::sample_deployment()
    };
    assert_eq!(
        solution_policy(deployment).await,
        [error_finding(
            "publisher-prefix",
            "the publisher prefix `new` is not allowed; move the solution to a publisher whose prefix is one of: contoso, fabrikam",
            None,
        )]
    );
}

#[tokio::test]
async fn solution_policy_reports_each_forbidden_component_naming_it() {
    let mut deployment = support::sample_deployment();
    deployment.components.extend([
        ComponentRef {
            kind: "plugin-assembly".into(),
            name: "Contoso.Plugins".into(),
        },
        ComponentRef {
            kind: "Custom-Connector".into(),
            name: "erp".into(),
        },
    ]);
    assert_eq!(
        solution_policy(deployment).await,
        [
            error_finding(
                "forbidden-component-kind",
                "components of kind `plugin-assembly` may not be deployed; remove `Contoso.Plugins` from the solution",
                Some("plugin-assembly/Contoso.Plugins"),
            ),
            error_finding(
                "forbidden-component-kind",
                "components of kind `Custom-Connector` may not be deployed; remove `erp` from the solution",
                Some("Custom-Connector/erp"),
            ),
        ]
    );
}

#[tokio::test]
async fn solution_policy_reports_a_package_over_the_size_limit() {
    let at_limit = DeploymentFacts {
        package_size: 1_000_000,
        ..support::sample_deployment()
    };
    assert_eq!(solution_policy(at_limit).await, []);
    let over = DeploymentFacts {
        package_size: 1_000_001,
        ..support::sample_deployment()
    };
    assert_eq!(
        solution_policy(over).await,
        [error_finding(
            "package-too-large",
            "the package is 1000001 bytes, over the limit of 1000000 bytes; remove unused components or ask an admin to raise `max-package-bytes`",
            None,
        )]
    );
}

#[tokio::test]
async fn solution_policy_requires_notes_for_production() {
    for notes in ["", "  \n"] {
        assert_eq!(
            solution_policy(with_notes(notes)).await,
            [error_finding(
                "notes-required",
                "deployments to Production need notes; describe the change in the deployment's notes and run it again",
                None,
            )],
            "notes {notes:?}"
        );
    }
}

#[tokio::test]
async fn solution_policy_does_not_require_notes_outside_production() {
    let mut deployment = with_notes("");
    deployment.stage.name = "QA".into();
    deployment.stage.target.name = "QA".into();
    assert_eq!(solution_policy(deployment).await, []);
}

#[tokio::test]
async fn solution_policy_reports_every_broken_rule_at_once() {
    let mut deployment = with_notes("");
    deployment.publisher_prefix = "new".into();
    deployment.package_size = 2_000_000;
    deployment.components.push(ComponentRef {
        kind: "plugin-assembly".into(),
        name: "Contoso.Plugins".into(),
    });
    let findings = solution_policy(deployment).await;
    let codes: Vec<_> = findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "publisher-prefix",
            "forbidden-component-kind",
            "package-too-large",
            "notes-required"
        ]
    );
    assert!(findings.iter().all(|f| f.severity == Severity::Error));
}

#[tokio::test]
async fn solution_policy_check_config_refuses_a_size_that_is_not_a_number_of_bytes() {
    assert_eq!(
        refusal("solution-policy", &[("max-package-bytes", "50MB")]).await,
        "config key `max-package-bytes` has the value `50MB`, which is not valid: use a whole number of bytes, such as `52428800` for 50 MiB"
    );
    assert_eq!(check_config("solution-policy", STRICT_POLICY).await, Ok(()));
}

// ---------------------------------------------------------------------------------------
// change-ticket-py (Python; the sample deployment's notes reference CHG-4711, and it is
// requested by `mia`)
// ---------------------------------------------------------------------------------------

const TICKETS: &Binding = &[("prefix", "CHG")];
const TICKETS_OR_CAB: &Binding = &[("prefix", "CHG"), ("approvers", "group:cab, user:alice")];

const NO_TICKET_REJECTION: &str = "no change ticket is referenced: add the ticket id, such as CHG-1234, to the deployment notes and request the deployment again";

fn waiting_for_the_cab() -> Decision {
    pending(
        "No change ticket (such as CHG-1234) is referenced in the deployment notes: waiting for group:cab, user:alice to approve without one. The requester's own vote does not count.",
        &["group:cab", "user:alice"],
        None,
    )
}

async fn change_ticket(pairs: &[(&str, &str)], notes: &str, votes: &[Vote]) -> Decision {
    evaluate("change-ticket-py", with_notes(notes), votes, pairs, NOW).await
}

#[tokio::test]
async fn change_ticket_approves_when_the_notes_reference_a_ticket_and_logs_it() {
    let call = evaluate_call(
        "change-ticket-py",
        with_notes("Quarterly release. CHG-4711"),
        &[],
        TICKETS,
        NOW,
    )
    .await;
    assert_eq!(
        call.result,
        Ok(approve("change ticket CHG-4711 is referenced in the notes"))
    );
    assert!(
        call.log
            .iter()
            .any(|line| line.message.contains("found change ticket CHG-4711")),
        "the ticket is in the plugin log: {:?}",
        call.log
    );
}

#[tokio::test]
async fn change_ticket_names_every_ticket_referenced() {
    assert_eq!(
        change_ticket(TICKETS, "(CHG-12) and CHG-34, again CHG-12", &[]).await,
        approve("change tickets CHG-12, CHG-34 are referenced in the notes")
    );
}

#[tokio::test]
async fn change_ticket_without_a_ticket_or_approvers_rejects() {
    // Neither a lower-case nor a glued-on ticket counts.
    for notes in ["Quarterly release", "chg-4711", "xCHG-4711", "CHG-4711a"] {
        assert_eq!(
            change_ticket(TICKETS, notes, &[]).await,
            reject(NO_TICKET_REJECTION),
            "notes {notes:?}"
        );
    }
}

#[tokio::test]
async fn change_ticket_without_a_ticket_asks_the_configured_approvers() {
    assert_eq!(
        change_ticket(TICKETS_OR_CAB, "Quarterly release", &[]).await,
        waiting_for_the_cab()
    );
}

#[tokio::test]
async fn change_ticket_without_a_ticket_approves_on_someone_elses_yes() {
    let votes = [support::vote("ravi", &["cab"], true)];
    assert_eq!(
        change_ticket(TICKETS_OR_CAB, "Quarterly release", &votes).await,
        approve("approved without a ticket by RAVI")
    );
}

#[tokio::test]
async fn change_ticket_without_a_ticket_rejects_on_a_no() {
    let votes = [support::vote("ravi", &["cab"], false)];
    assert_eq!(
        change_ticket(TICKETS_OR_CAB, "Quarterly release", &votes).await,
        reject("rejected without a ticket by RAVI")
    );
}

#[tokio::test]
async fn change_ticket_ignores_the_requesters_own_vote() {
    let own_yes = [support::vote("mia", &["cab"], true)];
    assert_eq!(
        change_ticket(TICKETS_OR_CAB, "Quarterly release", &own_yes).await,
        waiting_for_the_cab()
    );
    // The first vote that counts decides, after the requester's.
    let own_yes_then_a_no = [
        support::vote("mia", &["cab"], true),
        support::vote("ravi", &["cab"], false),
    ];
    assert_eq!(
        change_ticket(TICKETS_OR_CAB, "Quarterly release", &own_yes_then_a_no).await,
        reject("rejected without a ticket by RAVI")
    );
}

#[tokio::test]
async fn change_ticket_check_config_reports_every_problem_at_once() {
    assert_eq!(
        refusal(
            "change-ticket-py",
            &[("prefix", "chg"), ("approvers", "cab, user:alice")]
        )
        .await,
        "`prefix` is 'chg': use an upper-case letter followed by upper-case letters or digits, such as `CHG`, without the hyphen or the number; `approvers` entry 'cab' is not `user:<id>` or `group:<name>`: write each entry as `user:<id>` or `group:<name>`, separated by commas, such as `group:change-board, user:alice`"
    );
    assert_eq!(
        refusal("change-ticket-py", &[]).await,
        "`prefix` is required: set it to the change-ticket prefix, such as `CHG` for tickets like CHG-1234"
    );
    assert_eq!(
        check_config("change-ticket-py", TICKETS_OR_CAB).await,
        Ok(())
    );
}

#[tokio::test]
async fn change_ticket_fails_closed_when_evaluated_with_an_unusable_binding() {
    assert_eq!(
        change_ticket(&[("approvers", "group:cab")], "CHG-4711", &[]).await,
        reject(
            "the change-ticket gate is misconfigured, ask an admin to fix it: `prefix` is required: set it to the change-ticket prefix, such as `CHG` for tickets like CHG-1234"
        )
    );
}
