-- Environment API 1.1: the SHA-256 of the secret the last link issued. Once set, every
-- import must present the secret.
ALTER TABLE settings ADD COLUMN link_secret_sha256 TEXT;
