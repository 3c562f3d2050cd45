//! What the demo prints once it is up: the tokens, and a walkthrough that runs as
//! printed, from the first deployment to Production approved by both approvers.

use std::path::Path;

use super::setup::{Setup, text};
use super::{CONNECTION, DemoTokens, PIPELINE, SOLUTION};
use crate::pipeline::rules::compare_versions;

/// The version the walkthrough deploys: one above the highest that QA succeeded with,
/// since a stage's versions only move up; `1.0.0.1` the first time.
pub(super) async fn next_version(setup: &Setup) -> anyhow::Result<String> {
    let Some(pipeline) = setup.find("/pipelines", PIPELINE).await? else {
        return Ok("1.0.0.1".into());
    };
    let pipeline_id = text(&pipeline["id"])?;
    let stages = pipeline["stages"].as_array().cloned().unwrap_or_default();
    let qa = match stages.iter().find(|s| s["name"] == "QA") {
        Some(stage) => text(&stage["id"])?,
        None => return Ok("1.0.0.1".into()),
    };
    let mut highest: Option<String> = None;
    let mut after = String::new();
    loop {
        let page = setup
            .api(
                reqwest::Method::GET,
                &format!(
                    "/deployments?pipeline={pipeline_id}&stage={qa}&solution={SOLUTION}\
                     &status=succeeded&limit=200{after}"
                ),
                None,
                &[200],
            )
            .await?;
        for item in page["items"].as_array().into_iter().flatten() {
            let version = text(&item["version"])?;
            let higher = highest
                .as_deref()
                .is_none_or(|h| compare_versions(&version, h) == Some(std::cmp::Ordering::Greater));
            if higher {
                highest = Some(version);
            }
        }
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    Ok(highest.map_or_else(|| "1.0.0.1".into(), |h| bump(&h)))
}

/// `1.0.0.7` → `1.0.0.8`: the last part, plus one.
fn bump(version: &str) -> String {
    match version.rsplit_once('.') {
        Some((head, last)) => match last.parse::<u64>() {
            Ok(n) => format!("{head}.{}", n + 1),
            Err(_) => format!("{version}.1"),
        },
        None => match version.parse::<u64>() {
            Ok(n) => (n + 1).to_string(),
            Err(_) => format!("{version}.1"),
        },
    }
}

/// Prints the tokens and the walkthrough, every command ready to paste.
pub(super) fn print(base: &str, tokens_path: &Path, tokens: &DemoTokens, version: &str) {
    let token = |user: &str| tokens.users.get(user).cloned().unwrap_or_default();
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .map(|dir| dir.display().to_string())
        .unwrap_or_else(|| "target/debug".into());
    let settings = format!(
        "--set contoso_ApiUrl=https://api.contoso.test --connection contoso_sql={CONNECTION}"
    );
    println!();
    println!("Gatehouse demo: {base}");
    println!("  console {base}/ui   API {base}/api/v1   environments {base}/envs/dev|qa|prod");
    println!();
    println!(
        "Tokens (also in {}, readable only by you):",
        tokens_path.display()
    );
    println!("  admin  {}", tokens.admin);
    println!("  maker  {}", token("maker"));
    println!("  alice  {}   (approver)", token("alice"));
    println!("  bob    {}   (approver)", token("bob"));
    println!();
    say(&format!(
        "Try it in another terminal: paste the lines below as they are. They put the CLI \
         ({bin_dir}/gatehouse) on your PATH, sign in as the maker, deploy {SOLUTION} \
         {version} to QA (its business-hours gate lets it through), then on to Production, \
         where the validator wants notes and the two-person rule waits for alice and bob, \
         and wait for it to succeed."
    ));
    println!();
    println!("export PATH=\"{bin_dir}:$PATH\"");
    println!("gatehouse login --server {base} --token {}", token("maker"));
    println!(
        "gatehouse deploy --pipeline \"{PIPELINE}\" --stage QA --solution {SOLUTION} --version {version} \\\n  {settings} --wait"
    );
    println!(
        "id=$(gatehouse deploy --pipeline \"{PIPELINE}\" --stage Production --solution {SOLUTION} --version {version} \\\n  {settings} --notes \"expense limits raised\" --quiet)"
    );
    println!(
        "gatehouse approve \"$id\" --comment \"looks good\" --token {}",
        token("alice")
    );
    println!(
        "gatehouse approve \"$id\" --comment \"ok\" --token {}",
        token("bob")
    );
    println!("gatehouse deployments wait \"$id\"");
    println!();
    say(&format!(
        "Then see where it is installed with `gatehouse solutions {SOLUTION}`, or open the \
         console. Stop with Ctrl-C; start the demo again the same way to carry on where you \
         left off (it will propose the next version)."
    ));
}

/// Prints `text` wrapped at 88 columns.
fn say(text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > 88 {
            println!("{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::bump;

    #[test]
    fn the_next_version_bumps_the_last_part() {
        assert_eq!(bump("1.0.0.1"), "1.0.0.2");
        assert_eq!(bump("1.0.0.9"), "1.0.0.10");
        assert_eq!(bump("2.3"), "2.4");
        assert_eq!(bump("7"), "8");
    }
}
