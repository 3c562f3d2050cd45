//! Users, groups and their tokens: how a token is made and kept, and which grantees exist.
//!
//! Tokens are 256 random bits shown once as hex; the host keeps only their SHA-256. A hash
//! is enough because the token has full entropy; a slow hash (Argon2) would cost more
//! than the whole request. Console session ids and CSRF tokens are made the same way.

use sha2::{Digest, Sha256};

use crate::pipeline::model::{Grantee, Group};
use crate::pipeline::service_error::{ServiceError, ServiceResult};
use crate::pipeline::store::{Store, StoreError, collect_all};

/// A new bearer token: 32 random bytes as 64 lower-case hex characters.
pub fn generate_token() -> ServiceResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ServiceError::Internal(format!("the system random source failed: {e}")))?;
    Ok(hex::encode(bytes))
}

/// What the store keeps for a token: its SHA-256, lower-case hex.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks that each `user:<id>` and `group:<name>` names someone who exists.
pub async fn existing_grantees(store: &dyn Store, grantees: &[Grantee]) -> ServiceResult<()> {
    let mut groups: Option<Vec<Group>> = None;
    for grantee in grantees {
        match grantee {
            Grantee::User(id) => match store.get_user(id).await {
                Ok(_) => {}
                Err(StoreError::NotFound(_)) => {
                    return Err(ServiceError::invalid(format!(
                        "{grantee} names no user; use a user's id from GET /api/v1/users"
                    )));
                }
                Err(error) => return Err(error.into()),
            },
            Grantee::Group(name) => {
                if groups.is_none() {
                    groups = Some(
                        collect_all(
                            move |p| async move { store.list_groups(&p).await },
                            |g| g.id.clone(),
                        )
                        .await?,
                    );
                }
                if !groups.iter().flatten().any(|g| g.name == *name) {
                    return Err(ServiceError::invalid(format!(
                        "{grantee} names no group; create it with POST /api/v1/groups first"
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_64_hex_characters_and_never_repeats() {
        let a = generate_token().expect("a token");
        let b = generate_token().expect("a token");
        assert_eq!(a.len(), 64);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn the_kept_hash_is_the_sha256_of_the_token() {
        assert_eq!(
            token_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
