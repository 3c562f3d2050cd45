//! The server's words in the command line's: what the API calls a field of the deployment
//! request (`settings.connection_references`, `scheduled_for`) is a flag of
//! `gatehouse deploy` here (`--connection`, `--at`), and a finding about a variable or a
//! connection reference says which `--set` or `--connection` fixes it.

use std::borrow::Cow;

use super::CliError;
use crate::pipeline::gate::Finding;

/// The deployment request's fields, longest first, and the flags of `gatehouse deploy`
/// that set them.
const FLAGS: &[(&str, &str)] = &[
    (
        "settings.connection_references",
        "--connection REF=CONNECTION",
    ),
    ("settings.environment_variables", "--set NAME=VALUE"),
    ("source_environment_id", "--source"),
    ("scheduled_for", "--at"),
    ("solution_name", "--solution"),
    ("pipeline_id", "--pipeline"),
    ("stage_id", "--stage"),
];

/// `text` with the request's field names replaced by the flags that set them. Only whole
/// names are replaced: `stage_id` in `previous_stage_id` stays.
pub fn flags(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for (field, flag) in FLAGS {
        // "bind it in settings.x" reads "bind it with --x" once it is a flag.
        let phrase = format!("in {field}");
        if out.contains(&phrase) {
            out = Cow::Owned(replace_word(&out, &phrase, &format!("with {flag}")));
        }
        if out.contains(field) {
            out = Cow::Owned(replace_word(&out, field, flag));
        }
    }
    out
}

/// Replaces `word` where neither side touches a letter, digit, `_` or `.`.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let part_of_name = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back();
        let after_index = at + word.len();
        let after = rest[after_index..].chars().next();
        // A trailing full stop ends a sentence; it does not continue the name.
        let after_is_name = after.is_some_and(|c| {
            let continues = rest[after_index + c.len_utf8()..].starts_with(part_of_name);
            part_of_name(c) && (c != '.' || continues)
        });
        out.push_str(&rest[..at]);
        if before.is_some_and(part_of_name) || after_is_name {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[after_index..];
    }
    out.push_str(rest);
    out
}

/// A finding's message in the command line's terms, with the flag that fixes it when the
/// finding names the variable or connection reference it is about.
pub fn finding(f: &Finding) -> String {
    let message = flags(&f.message).into_owned();
    let Some(component) = f.component.as_deref().filter(|c| !c.is_empty()) else {
        return message;
    };
    let fix = match f.code.as_str() {
        "missing_environment_variable" => format!("give it with --set {component}=VALUE"),
        "invalid_environment_variable" => format!("fix it with --set {component}=VALUE"),
        "unknown_connection" | "connector_mismatch" => {
            format!("bind another with --connection {component}=CONNECTION")
        }
        "missing_connection_reference" => {
            let flag = "with --connection REF=CONNECTION";
            if message.contains(flag) {
                return message.replace(flag, &format!("with --connection {component}=CONNECTION"));
            }
            format!("bind it with --connection {component}=CONNECTION")
        }
        _ => return message,
    };
    format!("{message}; {fix}")
}

/// A refusal of a request the command line made from its flags, told in those flags.
pub fn refusal(error: CliError) -> CliError {
    match error {
        CliError::Api(mut problem) => {
            problem.detail = flags(&problem.detail).into_owned();
            CliError::Api(problem)
        }
        other => other,
    }
}
