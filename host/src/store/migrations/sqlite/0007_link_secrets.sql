-- The secret an environment answered when this host linked to it. Like the credential it
-- lives only in its column, is never echoed, and goes with every import to prove the link.
ALTER TABLE environments ADD COLUMN link_secret TEXT;
