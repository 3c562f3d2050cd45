//! Names or ids: finds the one record a user meant in a JSON list of records.

use serde_json::Value;

use super::CliError;

/// How many names a "no such" error lists.
const SHOWN: usize = 10;

/// The one item whose `id` is `wanted`; else the one whose `fields` (tried in order, such
/// as `name` then `environment_id`) equal it; else the one whose `name` equals it ignoring
/// case. Two matches at the same step are ambiguous and refused.
pub fn one<'a>(
    what: &str,
    items: &'a [Value],
    wanted: &str,
    fields: &[&str],
) -> Result<&'a Value, CliError> {
    let wanted = wanted.trim();
    if wanted.is_empty() {
        return Err(CliError::Usage(format!(
            "the {what} is empty; give a name or an id"
        )));
    }
    let text = |item: &'a Value, field: &str| item.get(field).and_then(Value::as_str);
    if let Some(item) = items.iter().find(|i| text(i, "id") == Some(wanted)) {
        return Ok(item);
    }
    let steps = fields
        .iter()
        .map(|field| {
            items
                .iter()
                .filter(|i| text(i, field) == Some(wanted))
                .collect::<Vec<_>>()
        })
        .chain(std::iter::once(
            items
                .iter()
                .filter(|i| text(i, "name").is_some_and(|n| n.eq_ignore_ascii_case(wanted)))
                .collect(),
        ));
    for matches in steps {
        match matches.as_slice() {
            [] => continue,
            [one] => return Ok(one),
            several => {
                let ids: Vec<String> = several
                    .iter()
                    .map(|i| {
                        format!(
                            "{} ({})",
                            text(i, "id").unwrap_or("?"),
                            text(i, "name").unwrap_or("?")
                        )
                    })
                    .collect();
                return Err(CliError::Usage(format!(
                    "{wanted:?} names {} {what}s: {}; give the id instead",
                    several.len(),
                    ids.join(", ")
                )));
            }
        }
    }
    let mut names: Vec<&str> = items.iter().filter_map(|i| text(i, "name")).collect();
    let known = if names.is_empty() {
        format!("there are no {what}s you can see")
    } else {
        let more = names.len().saturating_sub(SHOWN);
        names.truncate(SHOWN);
        let mut list = names.join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        format!("the {what}s you can see are: {list}")
    };
    Err(CliError::Usage(format!(
        "no {what} is named {wanted:?} or has that id; {known}"
    )))
}

/// Whether the text has the shape of an id (a UUID), so it can be fetched directly.
pub fn looks_like_id(text: &str) -> bool {
    let text = text.trim();
    text.len() == 36
        && text.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}
