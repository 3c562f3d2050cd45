//! Users, tokens and groups.

use super::*;

#[tokio::test]
async fn users_round_trip_with_their_groups() {
    on_each_backend(|db| async move {
        let store = db.store;
        let group = Group {
            id: new_id(),
            name: "approvers".into(),
            members: Vec::new(),
            created_at: 1,
        };
        store
            .insert_group(&group, &audit("group.create", &group.id))
            .await
            .unwrap();
        let alice = User {
            groups: vec!["approvers".into()],
            ..user("alice", Role::Admin)
        };
        let bob = user("bob", Role::User);
        store
            .insert_user(&alice, &audit("user.create", &alice.id))
            .await
            .unwrap();
        store
            .insert_user(&bob, &audit("user.create", &bob.id))
            .await
            .unwrap();

        assert_eq!(store.get_user(&alice.id).await.unwrap(), alice);
        assert_eq!(store.get_user(&bob.id).await.unwrap(), bob);
        assert_eq!(store.count_users().await.unwrap(), 2);
        let listed = store.list_users(&Page::default()).await.unwrap();
        assert_eq!(listed, vec![bob.clone(), alice.clone()], "newest first");
        assert_eq!(
            store.get_group(&group.id).await.unwrap().members,
            vec![alice.id.clone()]
        );
        assert_not_found(store.get_user("nobody").await, "user nobody");
        assert_eq!(
            audit_actions(&store).await,
            ["group.create", "user.create", "user.create"]
        );
    })
    .await;
}

#[tokio::test]
async fn a_taken_user_name_is_a_conflict_and_writes_nothing() {
    on_each_backend(|db| async move {
        let store = db.store;
        let first = user("carol", Role::User);
        store
            .insert_user(&first, &audit("user.create", &first.id))
            .await
            .unwrap();
        let second = user("carol", Role::Admin);
        assert_conflict(
            store
                .insert_user(&second, &audit("user.create", &second.id))
                .await,
            "a user named carol already exists",
        );
        assert_eq!(store.count_users().await.unwrap(), 1);
        assert_eq!(audit_actions(&store).await, ["user.create"]);

        let in_unknown_group = User {
            groups: vec!["ghosts".into()],
            ..user("dave", Role::User)
        };
        assert_not_found(
            store
                .insert_user(&in_unknown_group, &audit("user.create", "x"))
                .await,
            "group ghosts",
        );
        assert_eq!(
            store.count_users().await.unwrap(),
            1,
            "the failed insert rolled back"
        );
    })
    .await;
}

#[tokio::test]
async fn users_page_newest_first_with_cursors() {
    on_each_backend(|db| async move {
        let store = db.store;
        let mut ids = Vec::new();
        for i in 0..5 {
            let u = user(&format!("user{i}"), Role::User);
            store
                .insert_user(&u, &audit("user.create", &u.id))
                .await
                .unwrap();
            ids.push(u.id);
        }
        ids.reverse();
        let first = store.list_users(&page(None, 2)).await.unwrap();
        let second = store
            .list_users(&page(Some(&first[1].id), 2))
            .await
            .unwrap();
        let third = store
            .list_users(&page(Some(&second[1].id), 2))
            .await
            .unwrap();
        let seen: Vec<_> = first
            .iter()
            .chain(&second)
            .chain(&third)
            .map(|u| u.id.clone())
            .collect();
        assert_eq!(seen, ids);
        assert_eq!(third.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn tokens_find_their_user_by_hash_only() {
    on_each_backend(|db| async move {
        let store = db.store;
        let group = Group {
            id: new_id(),
            name: "release-managers".into(),
            members: Vec::new(),
            created_at: 1,
        };
        store
            .insert_group(&group, &audit("group.create", &group.id))
            .await
            .unwrap();
        let erin = user("erin", Role::User);
        store
            .insert_user(&erin, &audit("user.create", &erin.id))
            .await
            .unwrap();
        store
            .set_group_members(
                &group.id,
                std::slice::from_ref(&erin.id),
                &audit("group.members", &group.id),
            )
            .await
            .unwrap();
        let hash = "a".repeat(64);
        store
            .insert_token(&erin.id, &hash, "laptop", &audit("token.create", &erin.id))
            .await
            .unwrap();

        let found = store
            .user_by_token(&hash)
            .await
            .unwrap()
            .expect("the token's user");
        assert_eq!(found.id, erin.id);
        assert_eq!(found.groups, vec!["release-managers".to_owned()]);
        assert_eq!(store.user_by_token(&"b".repeat(64)).await.unwrap(), None);
        assert_conflict(
            store
                .insert_token(&erin.id, &hash, "again", &audit("token.create", &erin.id))
                .await,
            "already registered",
        );
        assert_not_found(
            store
                .insert_token(
                    "ghost",
                    &"c".repeat(64),
                    "x",
                    &audit("token.create", "ghost"),
                )
                .await,
            "user ghost",
        );
        assert_eq!(
            audit_actions(&store).await,
            [
                "group.create",
                "user.create",
                "group.members",
                "token.create"
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn group_members_are_replaced_in_the_order_given() {
    on_each_backend(|db| async move {
        let store = db.store;
        let mut users = Vec::new();
        for name in ["frank", "grace", "heidi"] {
            let u = user(name, Role::User);
            store
                .insert_user(&u, &audit("user.create", &u.id))
                .await
                .unwrap();
            users.push(u.id);
        }
        let group = Group {
            id: new_id(),
            name: "qa".into(),
            members: vec![users[2].clone(), users[0].clone()],
            created_at: 7,
        };
        store
            .insert_group(&group, &audit("group.create", &group.id))
            .await
            .unwrap();
        assert_eq!(store.get_group(&group.id).await.unwrap(), group);

        let replaced = vec![users[1].clone(), users[2].clone(), users[1].clone()];
        store
            .set_group_members(&group.id, &replaced, &audit("group.members", &group.id))
            .await
            .unwrap();
        let stored = store.get_group(&group.id).await.unwrap();
        assert_eq!(
            stored.members,
            vec![users[1].clone(), users[2].clone()],
            "repeats count once"
        );
        assert!(store.get_user(&users[0]).await.unwrap().groups.is_empty());
        assert_eq!(
            store.get_user(&users[1]).await.unwrap().groups,
            vec!["qa".to_owned()]
        );

        assert_not_found(
            store
                .set_group_members(
                    &group.id,
                    &["ghost".to_owned()],
                    &audit("group.members", &group.id),
                )
                .await,
            "user ghost",
        );
        assert_eq!(
            store.get_group(&group.id).await.unwrap().members,
            stored.members,
            "unchanged"
        );
        assert_not_found(
            store
                .set_group_members("nope", &[], &audit("group.members", "nope"))
                .await,
            "group nope",
        );

        let duplicate = Group {
            id: new_id(),
            ..group.clone()
        };
        assert_conflict(
            store
                .insert_group(&duplicate, &audit("group.create", &duplicate.id))
                .await,
            "a group named qa already exists",
        );
        let other = Group {
            id: new_id(),
            name: "ops".into(),
            members: vec![],
            created_at: 8,
        };
        store
            .insert_group(&other, &audit("group.create", &other.id))
            .await
            .unwrap();
        let listed = store.list_groups(&page(None, 10)).await.unwrap();
        assert_eq!(
            listed.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            ["ops", "qa"]
        );
        let after = store.list_groups(&page(Some(&other.id), 10)).await.unwrap();
        assert_eq!(after, vec![stored]);
    })
    .await;
}
