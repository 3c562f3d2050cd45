//! Opening databases: migrations, SQLite's settings and plans, and refused URLs.

use sqlx::Row;

use super::*;
use crate::store::migrate::migrations;

#[tokio::test]
async fn reopening_keeps_the_data_and_applies_nothing_twice() {
    on_each_backend(|db| async move {
        let u = user("ivan", Role::Admin);
        db.store
            .insert_user(&u, &audit("user.create", &u.id))
            .await
            .unwrap();
        let reopened = SqlStore::connect(&db.url)
            .await
            .expect("the same database opens again");
        assert_eq!(reopened.get_user(&u.id).await.unwrap(), u);
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(&reopened.db.reader)
                .await
                .unwrap();
        let known: Vec<i64> = migrations(reopened.backend())
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(applied, known);
        reopened.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused() {
    on_each_backend(|db| async move {
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)",
        )
        .execute(&db.store.db.writer)
        .await
        .unwrap();
        match SqlStore::connect(&db.url).await {
            Err(StoreError::Backend(message)) => {
                assert!(message.contains("schema is at version 9999"), "{message}");
            }
            Ok(_) => panic!("a newer schema was accepted"),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn unsupported_urls_are_refused_with_a_hint() {
    for url in [
        "mysql://localhost/gatehouse",
        "sqlite::memory:",
        "sqlite://",
    ] {
        match SqlStore::connect(url).await {
            Err(StoreError::Backend(message)) => {
                assert!(message.contains("sqlite://<path"), "{url}: {message}");
            }
            Ok(_) => panic!("{url} was accepted"),
            Err(other) => panic!("{url}: unexpected error {other:?}"),
        }
    }
}

#[tokio::test]
async fn sqlite_files_and_folders_are_created_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/nested/gatehouse.db");
    let store = SqlStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(path.exists());
    for pool in [&store.db.writer, &store.db.reader] {
        let row = sqlx::query("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>(0), "wal");
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(foreign_keys, 1);
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(synchronous, 1, "NORMAL");
    }
    store.close().await;
}

/// SQLite's plan for `sql`, one line per step.
async fn sqlite_plan(store: &SqlStore, sql: &str, binds: &[&str]) -> String {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
    for bind in binds {
        query = query.bind(bind.to_string());
    }
    let rows = query.fetch_all(&store.db.reader).await.unwrap();
    rows.iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn sqlite_lists_by_pipeline_and_claims_through_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&format!("sqlite://{}", dir.path().join("g.db").display()))
        .await
        .unwrap();
    let by_pipeline = sqlite_plan(
        &store,
        "SELECT document, revision FROM deployments WHERE pipeline_id = $1 AND id < $2 ORDER BY id DESC LIMIT 50",
        &["p", "z"],
    )
    .await;
    assert!(
        by_pipeline.contains("deployments_pipeline"),
        "{by_pipeline}"
    );
    assert!(
        !by_pipeline.contains("TEMP B-TREE"),
        "sorted by the index: {by_pipeline}"
    );
    let claim = crate::store::deployments::claim_sql(Backend::Sqlite);
    let due = sqlite_plan(&store, &claim, &["owner", "10", "5", "10"]).await;
    assert!(due.contains("USING INDEX deployments_due"), "{due}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_find_the_database_locked() {
    on_each_backend(|db| async move {
        let writers: Vec<_> = (0..16)
            .map(|w| {
                let store = db.store.clone();
                tokio::spawn(async move {
                    for i in 0..10 {
                        let d = deployment(&format!("target-{w}"), &i.to_string(), Some(1));
                        store
                            .insert_deployment(
                                &d,
                                &[event(&d, 1, "requested")],
                                &audit("deployment.create", &d.id),
                            )
                            .await
                            .unwrap();
                        let d = DeploymentRecord {
                            status: DeploymentStatus::Validating,
                            ..d
                        };
                        store
                            .save_deployment(&d, &[event(&d, 2, "validating")], None)
                            .await
                            .unwrap();
                        store.get_deployment(&d.id).await.unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        let all = db
            .store
            .list_deployments(&Default::default(), &page(None, 1000))
            .await
            .unwrap();
        assert_eq!(all.len(), 160);
        assert!(all.iter().all(|d| d.revision == 1));
    })
    .await;
}

/// Rewrites a stored JSON document with `change`, as an older gatehouse would have left it.
async fn rewrite_document(
    store: &SqlStore,
    table: &str,
    id: &str,
    change: impl Fn(&mut serde_json::Value),
) {
    let select = format!("SELECT document FROM {table} WHERE id = $1");
    let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(select))
        .bind(id.to_owned())
        .fetch_one(&store.db.writer)
        .await
        .unwrap();
    let mut document: serde_json::Value = serde_json::from_str(&text).unwrap();
    change(&mut document);
    let update = format!("UPDATE {table} SET document = $2 WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(update))
        .bind(id.to_owned())
        .bind(document.to_string())
        .execute(&store.db.writer)
        .await
        .unwrap();
}

/// A database written before gate bindings had ids: migration 6 gives every gate an id,
/// and a deployment waiting at a gate the snapshot of its stage, its progress kept and
/// keyed by binding id. Finished deployments load unchanged.
#[tokio::test]
async fn migration_6_gives_old_gates_ids_and_waiting_deployments_a_snapshot() {
    on_each_backend(|db| async move {
        let store = db.store;
        let envs = [
            environment("dev", EnvironmentKind::Development),
            environment("prod", EnvironmentKind::Target),
        ];
        for env in &envs {
            store
                .insert_environment(env, None, &audit("environment.create", &env.id))
                .await
                .unwrap();
        }
        let gate = plugin("two-person-rule", "0.1.0", b"gate component");
        store
            .insert_plugin(&gate, b"gate component", &audit("plugin.create", &gate.id))
            .await
            .unwrap();
        let mut crm = pipeline("crm", &envs[0].id, &[&envs[1].id]);
        for group in ["group:leads", "group:ops"] {
            crm.stages[0].gates.push(GateBinding {
                id: String::new(),
                plugin_id: gate.id.clone(),
                config: [("approvers".to_owned(), group.to_owned())].into(),
                approval_timeout_seconds: None,
                mode: BindingMode::Live,
            });
        }
        store
            .insert_pipeline(&crm, &audit("pipeline.create", &crm.id))
            .await
            .unwrap();
        let in_stage = |version: &str| DeploymentRecord {
            pipeline_id: crm.id.clone(),
            stage_id: crm.stages[0].id.clone(),
            ..deployment(&envs[1].id, version, None)
        };
        let mut waiting = DeploymentRecord {
            status: DeploymentStatus::PendingApproval,
            pre_deployment_status: Some(PreDeploymentStatus::Pending),
            ..in_stage("1.0.0.1")
        };
        waiting.gates.push(GateProgress {
            binding_id: String::new(),
            plugin_id: gate.id.clone(),
            plugin_name: gate.name.clone(),
            approved: true,
            decision: None,
            error: None,
            log: Vec::new(),
            started_at: Some(1),
            evaluated_at: Some(2),
            evaluations: 1,
            duration_us: 5,
            fuel_used: 6,
        });
        let finished = DeploymentRecord {
            status: DeploymentStatus::Succeeded,
            finished_at: Some(9),
            ..in_stage("1.0.0.0")
        };
        for d in [&waiting, &finished] {
            store
                .insert_deployment(d, &[], &audit("deployment.request", &d.id))
                .await
                .unwrap();
        }
        rewrite_document(&store, "pipelines", &crm.id, |p| {
            for gate in p["stages"][0]["gates"].as_array_mut().unwrap() {
                let gate = gate.as_object_mut().unwrap();
                gate.remove("id");
                gate.remove("mode");
            }
        })
        .await;
        for d in [&waiting, &finished] {
            rewrite_document(&store, "deployments", &d.id, |d| {
                d.as_object_mut().unwrap().remove("gate_bindings");
                for progress in d["gates"].as_array_mut().unwrap() {
                    progress.as_object_mut().unwrap().remove("binding_id");
                }
            })
            .await;
        }
        // Back to the schema of version 5: migration 7's column goes too.
        sqlx::query("ALTER TABLE environments DROP COLUMN link_secret")
            .execute(&store.db.writer)
            .await
            .unwrap();
        sqlx::query("DELETE FROM schema_migrations WHERE version >= 6")
            .execute(&store.db.writer)
            .await
            .unwrap();

        let migrated = SqlStore::connect(&db.url).await.expect("migration 6 runs");
        let gates = migrated.get_pipeline(&crm.id).await.unwrap().stages[0]
            .gates
            .clone();
        assert!(gates.iter().all(|g| !g.id.is_empty()), "{gates:?}");
        assert_ne!(gates[0].id, gates[1].id);
        assert_eq!(gates[1].config, crm.stages[0].gates[1].config);
        let d = migrated.get_deployment(&waiting.id).await.unwrap();
        assert_eq!(d.gate_bindings, gates);
        assert_eq!(d.gates[0].binding_id, gates[0].id);
        assert!(d.gates[0].approved, "progress is kept");
        let old = migrated.get_deployment(&finished.id).await.unwrap();
        assert!(old.gate_bindings.is_empty());
        assert_eq!(old.status, DeploymentStatus::Succeeded);
        migrated.close().await;
    })
    .await;
}
