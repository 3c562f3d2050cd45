//! The demo's setup, through the host's and the environments' HTTP APIs, as an admin
//! would do it: users, groups, environments, the sample solution, plugins, the pipeline.
//! Each step is skipped when what it makes already exists, so a second start reuses all.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{
    APPROVERS, CONNECTION, DemoTokens, ENVIRONMENTS, MAKERS, PIPELINE, PLUGINS, SOLUTION, USERS,
    sample_package,
};
use crate::envserver::Kind;

/// The demo's setup, through the host's and the environments' HTTP APIs.
pub(super) struct Setup {
    base: String,
    admin: String,
    client: reqwest::Client,
}

impl Setup {
    pub(super) fn new(base: &str, admin: &str) -> Setup {
        Setup {
            base: base.to_owned(),
            admin: admin.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self.client.request(method.clone(), url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// An API call as the admin that must answer one of `ok`.
    pub(super) async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        ok: &[u16],
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let (status, value) = self.call(method.clone(), &url, &self.admin, body).await?;
        if !ok.contains(&status) {
            bail!("{method} {path} answered {status}: {value}");
        }
        Ok(value)
    }

    /// The item of a list whose `name` is `name`.
    pub(super) async fn find(&self, path: &str, name: &str) -> anyhow::Result<Option<Value>> {
        let list = self
            .api(
                reqwest::Method::GET,
                &format!("{path}?limit=200"),
                None,
                &[200],
            )
            .await?;
        Ok(list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["name"] == name).cloned()))
    }

    pub(super) async fn run(
        &self,
        plugins_dir: &Path,
        tokens: &mut DemoTokens,
    ) -> anyhow::Result<()> {
        use reqwest::Method;
        let mut ids = std::collections::BTreeMap::new();
        for (login, display, _) in USERS {
            let user = match self.find("/users", login).await? {
                Some(user) => user,
                None => {
                    self.api(
                        Method::POST,
                        "/users",
                        Some(json!({ "name": login, "display_name": display, "role": "user" })),
                        &[201],
                    )
                    .await?
                }
            };
            let id = text(&user["id"])?;
            if !tokens.users.contains_key(login) {
                let issued = self
                    .api(
                        Method::POST,
                        &format!("/users/{id}/tokens"),
                        Some(json!({ "label": "demo" })),
                        &[201],
                    )
                    .await?;
                tokens
                    .users
                    .insert(login.to_owned(), text(&issued["token"])?);
            }
            ids.insert(login, id);
        }
        for group in [MAKERS, APPROVERS] {
            let members: Vec<&String> = USERS
                .iter()
                .filter(|(_, _, g)| *g == group)
                .filter_map(|(login, _, _)| ids.get(login))
                .collect();
            if self.find("/groups", group).await?.is_none() {
                self.api(
                    Method::POST,
                    "/groups",
                    Some(json!({ "name": group, "members": members })),
                    &[201],
                )
                .await?;
            }
        }

        let mut envs = std::collections::BTreeMap::new();
        for (path, name, kind) in ENVIRONMENTS {
            let env = match self.find("/environments", name).await? {
                Some(env) => env,
                None => {
                    self.api(
                        Method::POST,
                        "/environments",
                        Some(json!({
                            "name": name,
                            "kind": kind.as_str(),
                            "environment_id": format!("demo-{path}"),
                            "url": format!("{}/envs/{path}", self.base),
                            "credential": tokens.environments.get(path),
                            "access": [format!("group:{MAKERS}"), format!("group:{APPROVERS}")],
                        })),
                        &[201],
                    )
                    .await?
                }
            };
            let id = text(&env["id"])?;
            // Served somewhere else this time (another --listen): point the record there.
            let url = format!("{}/envs/{path}", self.base);
            if env["url"] != url.as_str() {
                self.api(
                    Method::PATCH,
                    &format!("/environments/{id}"),
                    Some(json!({ "url": url })),
                    &[200],
                )
                .await?;
            }
            let validated = self
                .api(
                    Method::POST,
                    &format!("/environments/{id}/validate?force=true"),
                    None,
                    &[200],
                )
                .await?;
            if validated["validation_status"] != "success" {
                bail!(
                    "the {name} environment did not validate: {}",
                    validated["validation_message"]
                );
            }
            if kind == Kind::Target {
                let url = format!("{}/envs/{path}/env/v1/connections", self.base);
                let token = tokens.environments.get(path).cloned().unwrap_or_default();
                let (status, answer) = self
                    .call(
                        Method::POST,
                        &url,
                        &token,
                        Some(json!({ "name": CONNECTION, "connector": "sql" })),
                    )
                    .await?;
                if status != 201 && status != 409 {
                    bail!(
                        "registering the {CONNECTION} connection in {name} answered {status}: {answer}"
                    );
                }
            }
            envs.insert(path, id);
        }
        self.push_sample(tokens).await?;

        let mut plugins = std::collections::BTreeMap::new();
        for plugin in PLUGINS {
            let record = match self.find("/plugins", plugin).await? {
                Some(record) => record,
                None => {
                    let path = plugins_dir.join(format!("{plugin}.wasm"));
                    let bytes = std::fs::read(&path)
                        .with_context(|| format!("could not read {}", path.display()))?;
                    let response = self
                        .client
                        .post(format!("{}/api/v1/plugins", self.base))
                        .bearer_auth(&self.admin)
                        .header(reqwest::header::CONTENT_TYPE, "application/wasm")
                        .body(bytes)
                        .send()
                        .await?;
                    let status = response.status().as_u16();
                    let value: Value = response.json().await.unwrap_or(Value::Null);
                    if status != 201 {
                        bail!("uploading {plugin} answered {status}: {value}");
                    }
                    value
                }
            };
            plugins.insert(plugin, text(&record["id"])?);
        }

        if self.find("/pipelines", PIPELINE).await?.is_some() {
            return Ok(());
        }
        let pipeline = self
            .api(
                Method::POST,
                "/pipelines",
                Some(json!({
                    "name": PIPELINE,
                    "description": "The demo: Development to QA to Production",
                    "development_environment_ids": [envs["dev"]],
                })),
                &[201],
            )
            .await?;
        let pipeline = text(&pipeline["id"])?;
        let stages = format!("/pipelines/{pipeline}/stages");
        // Every day, all day, so the demo works at any hour; the README shows how to
        // narrow the window.
        let always_open =
            json!({ "timezone": "UTC", "days": "mon-sun", "start": "00:00", "end": "24:00" });
        let qa = self
            .api(
                Method::POST,
                &stages,
                Some(json!({
                    "name": "QA",
                    "description": "Testing, inside business hours",
                    "target_environment_id": envs["qa"],
                    "pre_deployment_step_required": true,
                    "gates": [{ "plugin_id": plugins["business-hours"], "config": always_open }],
                })),
                &[201],
            )
            .await?;
        self.api(
            Method::POST,
            &stages,
            Some(json!({
                "name": "Production",
                "description": "Two approvers must agree",
                "previous_stage_id": qa["id"],
                "target_environment_id": envs["prod"],
                "pre_deployment_step_required": true,
                "gates": [{
                    "plugin_id": plugins["two-person-rule"],
                    "config": { "group": APPROVERS, "required": "2" },
                    "approval_timeout_seconds": 86400,
                }],
            })),
            &[201],
        )
        .await?;
        self.api(
            Method::PUT,
            &format!("/pipelines/{pipeline}/validators"),
            Some(json!({ "validators": [{
                "plugin_id": plugins["solution-policy"],
                "config": { "publisher-prefix": "contoso" },
            }] })),
            &[200],
        )
        .await?;
        for group in [MAKERS, APPROVERS] {
            self.api(
                Method::POST,
                &format!("/pipelines/{pipeline}/shares"),
                Some(json!({ "grantee": format!("group:{group}") })),
                &[200, 201],
            )
            .await?;
        }
        Ok(())
    }

    /// Pushes the sample solution to Development, unless a maker already pushed it.
    async fn push_sample(&self, tokens: &DemoTokens) -> anyhow::Result<()> {
        let url = format!("{}/envs/dev/env/v1/solutions/{SOLUTION}", self.base);
        let token = tokens.environments.get("dev").cloned().unwrap_or_default();
        let (status, _) = self.call(reqwest::Method::GET, &url, &token, None).await?;
        if status == 200 {
            return Ok(());
        }
        let response = self
            .client
            .put(&url)
            .bearer_auth(&token)
            .header(reqwest::header::CONTENT_TYPE, "application/zip")
            .body(sample_package()?)
            .send()
            .await?;
        let status = response.status().as_u16();
        if status != 201 && status != 200 {
            let answer = response.text().await.unwrap_or_default();
            bail!("pushing the sample solution answered {status}: {answer}");
        }
        Ok(())
    }
}

pub(super) fn text(value: &Value) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("expected a string, found {value}"))
}
