//! The server's words in the command line's.

use crate::cli::client::terms;
use crate::pipeline::gate::{Finding, Severity};

fn finding(code: &str, component: Option<&str>, message: &str) -> Finding {
    Finding {
        severity: Severity::Error,
        code: code.into(),
        message: message.into(),
        component: component.map(str::to_owned),
    }
}

#[test]
fn request_fields_are_named_as_the_flags_that_set_them() {
    assert_eq!(
        terms::flags(
            "connection reference contoso_sql needs a sql connection; bind it in \
             settings.connection_references"
        ),
        "connection reference contoso_sql needs a sql connection; bind it with --connection \
         REF=CONNECTION"
    );
    assert_eq!(
        terms::flags("scheduled_for is 1, past the latest time; check stage_id."),
        "--at is 1, past the latest time; check --stage."
    );
    // Only whole names: a longer name that contains one stays as it is.
    for kept in [
        "previous_stage_id is unknown",
        "my_scheduled_for_x",
        "scheduled_foré",
        "settings.environment_variables_old",
    ] {
        assert_eq!(terms::flags(kept), kept);
    }
}

#[test]
fn findings_about_a_variable_or_a_connection_name_the_flag_that_fixes_them() {
    let cases = [
        (
            finding(
                "missing_connection_reference",
                Some("contoso_sql"),
                "connection reference contoso_sql needs a shared-sql connection; bind it in \
                 settings.connection_references",
            ),
            "connection reference contoso_sql needs a shared-sql connection; bind it with \
             --connection contoso_sql=CONNECTION",
        ),
        (
            finding(
                "missing_environment_variable",
                Some("contoso_ApiUrl"),
                "environment variable contoso_ApiUrl needs a value: it has no default",
            ),
            "environment variable contoso_ApiUrl needs a value: it has no default; give it with \
             --set contoso_ApiUrl=VALUE",
        ),
        (
            finding(
                "unknown_connection",
                Some("sql"),
                "connection reference sql is bound to nope, which is not a connection in this \
                 environment; the sql connections here are: a",
            ),
            "connection reference sql is bound to nope, which is not a connection in this \
             environment; the sql connections here are: a; bind another with --connection \
             sql=CONNECTION",
        ),
        (
            finding(
                "invalid_environment_variable",
                Some("Limit"),
                "environment variable Limit is of type number: x is not a number",
            ),
            "environment variable Limit is of type number: x is not a number; fix it with --set \
             Limit=VALUE",
        ),
        // From an environment that does not name the component: the field becomes the flag.
        (
            finding(
                "missing_connection_reference",
                None,
                "connection reference sql needs a sql connection; bind it in \
                 settings.connection_references",
            ),
            "connection reference sql needs a sql connection; bind it with --connection \
             REF=CONNECTION",
        ),
        (
            finding("publisher-prefix", Some("x_table"), "x is not allowed"),
            "x is not allowed",
        ),
    ];
    for (finding, said) in cases {
        assert_eq!(terms::finding(&finding), said);
    }
}
