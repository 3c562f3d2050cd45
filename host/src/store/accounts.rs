//! Users, their bearer tokens (by SHA-256 only), and groups.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::SqlStore;
use super::db::{SqlxResult, int, page_clause, require, uint};
use crate::pipeline::model::{Group, Id, Role, User};
use crate::pipeline::store::{AccountStore, Audit, Page, StoreError, StoreResult};

fn role_text(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::User => "user",
    }
}

fn role_from_text(text: &str) -> StoreResult<Role> {
    match text {
        "admin" => Ok(Role::Admin),
        "user" => Ok(Role::User),
        other => Err(StoreError::Backend(format!(
            "stored role {other:?} is neither admin nor user"
        ))),
    }
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn insert_user(&self, user: &User, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        sqlx::query(
            "INSERT INTO users (id, name, display_name, role, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.id.as_str())
        .bind(user.name.as_str())
        .bind(user.display_name.as_str())
        .bind(role_text(user.role))
        .bind(int(user.created_at, "created_at")?)
        .execute(&mut *tx)
        .await
        .unique(|c| {
            if c.contains("name") {
                format!("a user named {} already exists", user.name)
            } else {
                format!("a user with id {} already exists", user.id)
            }
        })?;
        for group_name in &user.groups {
            let group_id: Option<String> =
                sqlx::query_scalar("SELECT id FROM user_groups WHERE name = $1")
                    .bind(group_name.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .store()?;
            let group_id =
                group_id.ok_or_else(|| StoreError::NotFound(format!("group {group_name}")))?;
            let position: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM group_members WHERE group_id = $1",
            )
            .bind(group_id.as_str())
            .fetch_one(&mut *tx)
            .await
            .store()?;
            sqlx::query(
                "INSERT INTO group_members (group_id, user_id, position) VALUES ($1, $2, $3)",
            )
            .bind(group_id.as_str())
            .bind(user.id.as_str())
            .bind(position)
            .execute(&mut *tx)
            .await
            .unique(|_| format!("group {group_name} is named twice"))?;
        }
        tx.commit().await
    }

    async fn get_user(&self, id: &str) -> StoreResult<User> {
        let sql = USER_WITH_GROUPS.replace("{where}", "WHERE id = $1");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&self.db.reader)
            .await
            .store()?;
        users_from_rows(&rows)?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))
    }

    async fn list_users(&self, page: &Page) -> StoreResult<Vec<User>> {
        let sql = USER_WITH_GROUPS.replace("{where}", &page_clause(page.after.as_deref(), 1));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(after) = &page.after {
            query = query.bind(after.as_str());
        }
        let rows = query
            .bind(i64::from(page.limit))
            .fetch_all(&self.db.reader)
            .await
            .store()?;
        users_from_rows(&rows)
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.db.reader)
            .await
            .store()?;
        uint(count, "user count")
    }

    async fn insert_token(
        &self,
        user_id: &str,
        sha256: &str,
        label: &str,
        audit: &Audit,
    ) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        require(
            &mut tx,
            "SELECT 1 FROM users WHERE id = $1",
            user_id,
            "user",
        )
        .await?;
        sqlx::query(
            "INSERT INTO tokens (sha256, user_id, label, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256)
        .bind(user_id)
        .bind(label)
        .bind(int(audit.at, "token time")?)
        .execute(&mut *tx)
        .await
        .unique(|_| "this token is already registered: generate a new one".to_owned())?;
        tx.commit().await
    }

    async fn user_by_token(&self, sha256: &str) -> StoreResult<Option<User>> {
        let sql = USER_WITH_GROUPS.replace(
            "{where}",
            "WHERE id = (SELECT user_id FROM tokens WHERE sha256 = $1)",
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(sha256)
            .fetch_all(&self.db.reader)
            .await
            .store()?;
        Ok(users_from_rows(&rows)?.pop())
    }

    async fn insert_group(&self, group: &Group, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        sqlx::query("INSERT INTO user_groups (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(group.id.as_str())
            .bind(group.name.as_str())
            .bind(int(group.created_at, "created_at")?)
            .execute(&mut *tx)
            .await
            .unique(|c| {
                if c.contains("name") {
                    format!("a group named {} already exists", group.name)
                } else {
                    format!("a group with id {} already exists", group.id)
                }
            })?;
        write_members(&mut tx, &group.id, &group.members).await?;
        tx.commit().await
    }

    async fn get_group(&self, id: &str) -> StoreResult<Group> {
        let sql = GROUP_WITH_MEMBERS.replace("{where}", "WHERE id = $1");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&self.db.reader)
            .await
            .store()?;
        groups_from_rows(&rows)?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("group {id}")))
    }

    async fn list_groups(&self, page: &Page) -> StoreResult<Vec<Group>> {
        let sql = GROUP_WITH_MEMBERS.replace("{where}", &page_clause(page.after.as_deref(), 1));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(after) = &page.after {
            query = query.bind(after.as_str());
        }
        let rows = query
            .bind(i64::from(page.limit))
            .fetch_all(&self.db.reader)
            .await
            .store()?;
        groups_from_rows(&rows)
    }

    async fn set_group_members(
        &self,
        group_id: &str,
        members: &[Id],
        audit: &Audit,
    ) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        require(
            &mut tx,
            "SELECT 1 FROM user_groups WHERE id = $1",
            group_id,
            "group",
        )
        .await?;
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(group_id)
            .execute(&mut *tx)
            .await
            .store()?;
        write_members(&mut tx, group_id, members).await?;
        tx.commit().await
    }
}

/// A user and the names of their groups: one row per group, or one with a NULL group.
const USER_WITH_GROUPS: &str = "SELECT u.id, u.name, u.display_name, u.role, u.created_at, \
     g.name AS group_name \
     FROM (SELECT * FROM users {where}) u \
     LEFT JOIN group_members m ON m.user_id = u.id \
     LEFT JOIN user_groups g ON g.id = m.group_id \
     ORDER BY u.id DESC, g.name";

/// Folds the rows of [`USER_WITH_GROUPS`] into users, keeping their order.
fn users_from_rows(rows: &[AnyRow]) -> StoreResult<Vec<User>> {
    let mut users: Vec<User> = Vec::new();
    for row in rows {
        let id: String = row.try_get("id").store()?;
        let group: Option<String> = row.try_get("group_name").store()?;
        if users.last().is_none_or(|u| u.id != id) {
            users.push(User {
                id,
                name: row.try_get("name").store()?,
                display_name: row.try_get("display_name").store()?,
                role: role_from_text(&row.try_get::<String, _>("role").store()?)?,
                groups: Vec::new(),
                created_at: uint(row.try_get("created_at").store()?, "created_at")?,
            });
        }
        if let (Some(group), Some(user)) = (group, users.last_mut()) {
            user.groups.push(group);
        }
    }
    Ok(users)
}

/// Adds `members` in order, after checking that each user exists; repeats count once.
async fn write_members(
    conn: &mut AnyConnection,
    group_id: &str,
    members: &[Id],
) -> StoreResult<()> {
    let mut seen = std::collections::HashSet::new();
    for (position, user_id) in members.iter().filter(|m| seen.insert(*m)).enumerate() {
        require(conn, "SELECT 1 FROM users WHERE id = $1", user_id, "user").await?;
        sqlx::query("INSERT INTO group_members (group_id, user_id, position) VALUES ($1, $2, $3)")
            .bind(group_id)
            .bind(user_id.as_str())
            .bind(position as i64)
            .execute(&mut *conn)
            .await
            .store()?;
    }
    Ok(())
}

/// A group and its member ids in order: one row per member, or one with a NULL member.
const GROUP_WITH_MEMBERS: &str = "SELECT g.id, g.name, g.created_at, m.user_id \
     FROM (SELECT * FROM user_groups {where}) g \
     LEFT JOIN group_members m ON m.group_id = g.id \
     ORDER BY g.id DESC, m.position";

fn groups_from_rows(rows: &[AnyRow]) -> StoreResult<Vec<Group>> {
    let mut groups: Vec<Group> = Vec::new();
    for row in rows {
        let id: String = row.try_get("id").store()?;
        let member: Option<String> = row.try_get("user_id").store()?;
        if groups.last().is_none_or(|g| g.id != id) {
            groups.push(Group {
                id,
                name: row.try_get("name").store()?,
                members: Vec::new(),
                created_at: uint(row.try_get("created_at").store()?, "created_at")?,
            });
        }
        if let (Some(member), Some(group)) = (member, groups.last_mut()) {
            group.members.push(member);
        }
    }
    Ok(groups)
}
