//! The link secret: what an environment issues when a host links to it, and the rule that
//! an import presents it. Shared by the reference server and `memory://`; the host keeps
//! the secret like a credential and sends it in [`LINK_SECRET_HEADER`].

use sha2::{Digest, Sha256};

pub use super::wire::LINK_SECRET_HEADER;

/// A new link secret: 256 random bits, lower-case hex.
pub fn new_link_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// What an environment keeps of a link secret: its SHA-256, lower-case hex.
pub fn link_secret_sha256(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// An import that did not present the secret of the environment's link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefusal {
    #[error(
        "this environment is linked with a link secret and the import presented none; send \
         the secret that POST /env/v1/link answered in the {LINK_SECRET_HEADER} header"
    )]
    Missing,
    #[error(
        "the import presented a link secret that is not the one this environment issued; it \
         was linked again since (with force, perhaps by another host): validate the \
         environment again from the host that should deploy to it"
    )]
    Mismatch,
}

/// Once an environment has issued a link secret (`issued_sha256`), an import must present
/// it; before that, any import is accepted, as Environment API 1 had it.
pub fn check_link_secret(
    issued_sha256: Option<&str>,
    presented: Option<&str>,
) -> Result<(), LinkRefusal> {
    let Some(issued) = issued_sha256 else {
        return Ok(());
    };
    let presented = presented.ok_or(LinkRefusal::Missing)?;
    let digest = link_secret_sha256(presented);
    // Both are digests of equal length, so the comparison time says nothing of the secret.
    let same = digest
        .bytes()
        .zip(issued.bytes())
        .fold(digest.len() == issued.len(), |same, (a, b)| same & (a == b));
    if same {
        Ok(())
    } else {
        Err(LinkRefusal::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_secret_is_256_bits_of_hex_and_never_repeats() {
        let a = new_link_secret().expect("a secret");
        let b = new_link_secret().expect("a secret");
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn before_a_secret_is_issued_any_import_passes() {
        assert_eq!(check_link_secret(None, None), Ok(()));
        assert_eq!(check_link_secret(None, Some("anything")), Ok(()));
    }

    #[test]
    fn once_issued_only_the_issued_secret_passes() {
        let secret = "ab".repeat(32);
        let issued = link_secret_sha256(&secret);
        assert_eq!(check_link_secret(Some(&issued), Some(&secret)), Ok(()));
        assert_eq!(
            check_link_secret(Some(&issued), None),
            Err(LinkRefusal::Missing)
        );
        assert_eq!(
            check_link_secret(Some(&issued), Some(&"cd".repeat(32))),
            Err(LinkRefusal::Mismatch)
        );
        assert_eq!(
            check_link_secret(Some(&issued), Some(&issued)),
            Err(LinkRefusal::Mismatch),
            "the digest itself is not the secret"
        );
    }
}
