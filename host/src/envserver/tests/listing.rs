//! The host's client reads what a development environment holds, over real HTTP: the
//! deploy page offers it as the solutions to deploy.

use super::*;
use crate::environment::http::HttpEnvironments;
use crate::pipeline::ports::EnvironmentError;

#[tokio::test]
async fn the_hosts_client_lists_what_a_development_environment_holds() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = serve(config(dir.path(), Kind::Development), "/envs/dev").await;
    let client = HttpEnvironments::default();
    let none = client
        .solutions(&env.base, Some(TOKEN))
        .await
        .expect("an empty list");
    assert!(none.is_empty(), "{none:?}");

    for (name, version) in [("fabrikam_tools", "2.0.0.0"), ("contoso_app", "1.0.0.3")] {
        let (status, body) = env
            .put(
                &format!("/env/v1/solutions/{name}"),
                package(name, version, false, json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let held = client
        .solutions(&env.base, Some(TOKEN))
        .await
        .expect("the list");
    let read: Vec<(&str, &str, Option<&str>)> = held
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.version.as_str(),
                s.manifest.as_ref().map(|m| m.display_name.as_str()),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            ("contoso_app", "1.0.0.3", Some("contoso_app display")),
            ("fabrikam_tools", "2.0.0.0", Some("fabrikam_tools display")),
        ],
        "by name, with versions and manifests"
    );

    let refused = client.solutions(&env.base, Some("wrong-token")).await;
    assert!(
        matches!(&refused, Err(EnvironmentError::Refused(why)) if why.contains("401")),
        "{refused:?}"
    );
}
