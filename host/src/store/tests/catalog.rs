//! Environments, pipelines, plugins and their components.

use super::*;
use crate::pipeline::Config;
use crate::pipeline::store::CredentialChange;

#[tokio::test]
async fn a_link_secret_is_kept_beside_the_credential_and_never_in_the_record() {
    on_each_backend(|db| async move {
        let store = db.store;
        let qa = environment("qa", EnvironmentKind::Target);
        store
            .insert_environment(&qa, Some("token-qa"), &audit("environment.create", &qa.id))
            .await
            .unwrap();
        assert_eq!(store.environment_link_secret(&qa.id).await.unwrap(), None);
        let validated = EnvironmentRecord {
            validation_status: ValidationStatus::Success,
            validation_message: "linked".into(),
            ..qa.clone()
        };
        let link_audit = audit("environment.validate", &qa.id);
        store
            .record_link(&validated, Some("ab".repeat(32).as_str()), &link_audit)
            .await
            .unwrap();
        assert_eq!(
            store.environment_link_secret(&qa.id).await.unwrap(),
            Some("ab".repeat(32))
        );
        let stored = store.get_environment(&qa.id).await.unwrap();
        assert_eq!(stored.validation_message, "linked");
        assert!(!serde_json::to_string(&stored).unwrap().contains("abab"));
        // A credential change leaves the link secret alone; a link without one clears it.
        store
            .update_environment(&validated, CredentialChange::Clear, &link_audit)
            .await
            .unwrap();
        assert!(
            store
                .environment_link_secret(&qa.id)
                .await
                .unwrap()
                .is_some()
        );
        store
            .record_link(&validated, None, &link_audit)
            .await
            .unwrap();
        assert_eq!(store.environment_link_secret(&qa.id).await.unwrap(), None);
        assert_not_found(
            store.environment_link_secret("nope").await,
            "environment nope",
        );
    })
    .await;
}

#[tokio::test]
async fn environments_keep_their_credential_apart() {
    on_each_backend(|db| async move {
        let store = db.store;
        let qa = environment("qa", EnvironmentKind::Target);
        store
            .insert_environment(&qa, Some("token-qa"), &audit("environment.create", &qa.id))
            .await
            .unwrap();
        let dev = environment("dev", EnvironmentKind::Development);
        store
            .insert_environment(&dev, None, &audit("environment.create", &dev.id))
            .await
            .unwrap();

        let stored = store.get_environment(&qa.id).await.unwrap();
        assert_eq!(
            stored,
            EnvironmentRecord {
                has_credential: true,
                ..qa.clone()
            }
        );
        assert_eq!(store.get_environment(&dev.id).await.unwrap(), dev);
        assert_eq!(
            store
                .environment_credential(&qa.id)
                .await
                .unwrap()
                .as_deref(),
            Some("token-qa")
        );
        assert_eq!(store.environment_credential(&dev.id).await.unwrap(), None);
        assert_not_found(
            store.environment_credential("nope").await,
            "environment nope",
        );
        let listed = store.list_environments(&Page::default()).await.unwrap();
        assert_eq!(
            listed.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["dev", "qa"]
        );

        let validated = EnvironmentRecord {
            validation_status: ValidationStatus::Success,
            validation_message: "reachable".into(),
            updated_at: 9,
            ..qa.clone()
        };
        let update_audit = audit("environment.update", &qa.id);
        let update = |change| store.update_environment(&validated, change, &update_audit);
        update(CredentialChange::Keep).await.unwrap();
        assert_eq!(
            store
                .environment_credential(&qa.id)
                .await
                .unwrap()
                .as_deref(),
            Some("token-qa")
        );
        assert_eq!(
            store
                .get_environment(&qa.id)
                .await
                .unwrap()
                .validation_message,
            "reachable"
        );
        update(CredentialChange::Set("token-2".into()))
            .await
            .unwrap();
        assert_eq!(
            store
                .environment_credential(&qa.id)
                .await
                .unwrap()
                .as_deref(),
            Some("token-2")
        );
        update(CredentialChange::Clear).await.unwrap();
        assert_eq!(store.environment_credential(&qa.id).await.unwrap(), None);
        assert!(!store.get_environment(&qa.id).await.unwrap().has_credential);

        let renamed = EnvironmentRecord {
            name: "dev".into(),
            ..qa.clone()
        };
        assert_conflict(
            store
                .update_environment(
                    &renamed,
                    CredentialChange::Keep,
                    &audit("environment.update", &qa.id),
                )
                .await,
            "an environment named dev already exists",
        );
        let twin = EnvironmentRecord {
            id: new_id(),
            ..qa.clone()
        };
        assert_conflict(
            store
                .insert_environment(&twin, None, &audit("environment.create", &twin.id))
                .await,
            "an environment named qa already exists",
        );
        let ghost = environment("ghost", EnvironmentKind::Target);
        assert_not_found(
            store
                .update_environment(
                    &ghost,
                    CredentialChange::Keep,
                    &audit("environment.update", &ghost.id),
                )
                .await,
            &format!("environment {}", ghost.id),
        );

        store
            .delete_environment(&qa.id, &audit("environment.delete", &qa.id))
            .await
            .unwrap();
        assert_not_found(
            store.get_environment(&qa.id).await,
            &format!("environment {}", qa.id),
        );
        assert_not_found(
            store
                .delete_environment(&qa.id, &audit("environment.delete", &qa.id))
                .await,
            &format!("environment {}", qa.id),
        );
        assert_eq!(
            audit_actions(&store).await,
            [
                "environment.create",
                "environment.create",
                "environment.update",
                "environment.update",
                "environment.update",
                "environment.delete"
            ]
        );
    })
    .await;
}

/// A development and two target environments, stored.
async fn three_environments(store: &SqlStore) -> [EnvironmentRecord; 3] {
    let envs = [
        environment("dev", EnvironmentKind::Development),
        environment("qa", EnvironmentKind::Target),
        environment("prod", EnvironmentKind::Target),
    ];
    for env in &envs {
        store
            .insert_environment(env, None, &audit("environment.create", &env.id))
            .await
            .unwrap();
    }
    envs
}

#[tokio::test]
async fn pipelines_round_trip_whole() {
    on_each_backend(|db| async move {
        let store = db.store;
        let [dev, qa, prod] = three_environments(&store).await;
        let gate = plugin("two-person-rule", "0.1.0", b"gate component");
        store
            .insert_plugin(&gate, b"gate component", &audit("plugin.create", &gate.id))
            .await
            .unwrap();
        let mut crm = pipeline("crm", &dev.id, &[&qa.id, &prod.id]);
        crm.stages[1].gates.push(GateBinding {
            id: new_id(),
            plugin_id: gate.id.clone(),
            config: [("approvers".to_owned(), "group:qa".to_owned())].into(),
            approval_timeout_seconds: Some(3600),
            mode: BindingMode::Live,
        });
        crm.settings.allow_redeploy_older_versions = true;
        store
            .insert_pipeline(&crm, &audit("pipeline.create", &crm.id))
            .await
            .unwrap();
        assert_eq!(store.get_pipeline(&crm.id).await.unwrap(), crm);

        let erp = pipeline("erp", &dev.id, &[&qa.id]);
        store
            .insert_pipeline(&erp, &audit("pipeline.create", &erp.id))
            .await
            .unwrap();
        assert_eq!(
            store.list_pipelines(&Page::default()).await.unwrap(),
            vec![erp.clone(), crm.clone()]
        );
        assert_eq!(
            store.list_pipelines(&page(Some(&erp.id), 5)).await.unwrap(),
            vec![crm.clone()]
        );

        let updated = PipelineRecord {
            description: "changed".into(),
            updated_at: 42,
            ..crm.clone()
        };
        store
            .update_pipeline(&updated, &audit("pipeline.update", &crm.id))
            .await
            .unwrap();
        let updated = PipelineRecord {
            revision: 1,
            ..updated
        };
        assert_eq!(store.get_pipeline(&crm.id).await.unwrap(), updated);
        // A change made to the revision before is refused, and changes nothing.
        let stale = PipelineRecord {
            description: "stale".into(),
            ..crm.clone()
        };
        assert_conflict(
            store
                .update_pipeline(&stale, &audit("pipeline.update", &crm.id))
                .await,
            "was changed by someone else",
        );
        assert_eq!(store.get_pipeline(&crm.id).await.unwrap(), updated);

        let taken = PipelineRecord {
            id: new_id(),
            ..erp.clone()
        };
        assert_conflict(
            store
                .insert_pipeline(&taken, &audit("pipeline.create", &taken.id))
                .await,
            "a pipeline named erp already exists",
        );
        let renamed = PipelineRecord {
            name: "erp".into(),
            ..updated.clone()
        };
        assert_conflict(
            store
                .update_pipeline(&renamed, &audit("pipeline.update", &crm.id))
                .await,
            "a pipeline named erp already exists",
        );
        let ghost = pipeline("ghost", &dev.id, &[&qa.id]);
        assert_not_found(
            store
                .update_pipeline(&ghost, &audit("pipeline.update", &ghost.id))
                .await,
            &format!("pipeline {}", ghost.id),
        );

        store
            .delete_pipeline(&erp.id, &audit("pipeline.delete", &erp.id))
            .await
            .unwrap();
        assert_not_found(
            store.get_pipeline(&erp.id).await,
            &format!("pipeline {}", erp.id),
        );
        assert_not_found(
            store
                .delete_pipeline(&erp.id, &audit("pipeline.delete", &erp.id))
                .await,
            &format!("pipeline {}", erp.id),
        );
        assert_eq!(
            audit_actions(&store).await[3..],
            [
                "plugin.create",
                "pipeline.create",
                "pipeline.create",
                "pipeline.update",
                "pipeline.delete"
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn what_a_pipeline_uses_must_exist_and_cannot_be_deleted_under_it() {
    on_each_backend(|db| async move {
        let store = db.store;
        let [dev, qa, prod] = three_environments(&store).await;
        let validator = plugin("solution-policy", "1.0.0", b"validator");
        store
            .insert_plugin(
                &validator,
                b"validator",
                &audit("plugin.create", &validator.id),
            )
            .await
            .unwrap();

        let dangling = pipeline("dangling", &dev.id, &["no-such-environment"]);
        assert_not_found(
            store
                .insert_pipeline(&dangling, &audit("pipeline.create", &dangling.id))
                .await,
            "environment no-such-environment",
        );
        assert_not_found(
            store.get_pipeline(&dangling.id).await,
            &format!("pipeline {}", dangling.id),
        );

        let mut crm = pipeline("crm", &dev.id, &[&qa.id]);
        crm.validators.push(PluginBinding {
            plugin_id: "no-such-plugin".into(),
            config: Config::new(),
        });
        assert_not_found(
            store
                .insert_pipeline(&crm, &audit("pipeline.create", &crm.id))
                .await,
            "plugin no-such-plugin",
        );
        crm.validators[0].plugin_id = validator.id.clone();
        store
            .insert_pipeline(&crm, &audit("pipeline.create", &crm.id))
            .await
            .unwrap();

        assert_conflict(
            store
                .delete_environment(&qa.id, &audit("environment.delete", &qa.id))
                .await,
            "is used by pipeline crm",
        );
        assert_conflict(
            store
                .delete_plugin(&validator.id, &audit("plugin.delete", &validator.id))
                .await,
            "is used by pipeline crm",
        );
        store
            .delete_environment(&prod.id, &audit("environment.delete", &prod.id))
            .await
            .unwrap();

        // Moving the stage to another target frees the old one.
        let moved = environment("uat", EnvironmentKind::Target);
        store
            .insert_environment(&moved, None, &audit("environment.create", &moved.id))
            .await
            .unwrap();
        crm.stages[0].target_environment_id = moved.id.clone();
        crm.validators.clear();
        store
            .update_pipeline(&crm, &audit("pipeline.update", &crm.id))
            .await
            .unwrap();
        store
            .delete_environment(&qa.id, &audit("environment.delete", &qa.id))
            .await
            .unwrap();
        store
            .delete_plugin(&validator.id, &audit("plugin.delete", &validator.id))
            .await
            .unwrap();

        store
            .delete_pipeline(&crm.id, &audit("pipeline.delete", &crm.id))
            .await
            .unwrap();
        store
            .delete_environment(&moved.id, &audit("environment.delete", &moved.id))
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn plugins_store_each_component_once() {
    on_each_backend(|db| async move {
        let store = db.store;
        let component = b"\0asm component bytes".to_vec();
        let v1 = plugin("two-person-rule", "0.1.0", &component);
        store
            .insert_plugin(&v1, &component, &audit("plugin.create", &v1.id))
            .await
            .unwrap();
        assert_eq!(store.get_plugin(&v1.id).await.unwrap(), v1);
        assert_eq!(store.blob(&v1.sha256).await.unwrap(), component);

        let again = plugin("two-person-rule", "0.1.0", &component);
        assert_conflict(
            store
                .insert_plugin(&again, &component, &audit("plugin.create", &again.id))
                .await,
            "a plugin named two-person-rule version 0.1.0 already exists",
        );
        // The same bytes under another version share the blob.
        let v2 = plugin("two-person-rule", "0.2.0", &component);
        store
            .insert_plugin(&v2, &component, &audit("plugin.create", &v2.id))
            .await
            .unwrap();
        assert_eq!(
            store.list_plugins(&Page::default()).await.unwrap(),
            vec![v2.clone(), v1.clone()]
        );

        let lying = PluginRecord {
            sha256: "0".repeat(64),
            ..plugin("liar", "1.0.0", b"x")
        };
        assert!(matches!(
            store.insert_plugin(&lying, b"x", &audit("plugin.create", &lying.id)).await,
            Err(StoreError::Backend(m)) if m.contains("hash to")
        ));

        let disabled = PluginRecord {
            enabled: false,
            description: "off".into(),
            ..v1.clone()
        };
        store
            .update_plugin(&disabled, &audit("plugin.update", &v1.id))
            .await
            .unwrap();
        assert_eq!(store.get_plugin(&v1.id).await.unwrap(), disabled);
        let bumped = PluginRecord {
            version: "0.2.0".into(),
            ..v1.clone()
        };
        assert_conflict(
            store
                .update_plugin(&bumped, &audit("plugin.update", &v1.id))
                .await,
            "a plugin named two-person-rule version 0.2.0 already exists",
        );
        let swapped = PluginRecord {
            sha256: "f".repeat(64),
            ..v1.clone()
        };
        assert_conflict(
            store
                .update_plugin(&swapped, &audit("plugin.update", &v1.id))
                .await,
            "upload it",
        );
        let ghost = plugin("ghost", "1.0.0", b"ghost");
        assert_not_found(
            store
                .update_plugin(&ghost, &audit("plugin.update", &ghost.id))
                .await,
            &format!("plugin {}", ghost.id),
        );

        store
            .delete_plugin(&v1.id, &audit("plugin.delete", &v1.id))
            .await
            .unwrap();
        assert_eq!(
            store.blob(&v1.sha256).await.unwrap(),
            component,
            "v2 still runs it"
        );
        store
            .delete_plugin(&v2.id, &audit("plugin.delete", &v2.id))
            .await
            .unwrap();
        assert_not_found(store.blob(&v1.sha256).await, &format!("blob {}", v1.sha256));
        assert_not_found(store.get_plugin(&v2.id).await, &format!("plugin {}", v2.id));
        assert_eq!(
            audit_actions(&store).await,
            [
                "plugin.create",
                "plugin.create",
                "plugin.update",
                "plugin.delete",
                "plugin.delete"
            ]
        );
    })
    .await;
}
