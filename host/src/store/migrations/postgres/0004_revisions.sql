-- Pipelines are changed read-modify-write; a change names the revision it was made to,
-- and one made to an older revision is refused instead of undoing the other.
ALTER TABLE pipelines ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

-- How many timeline events each deployment has, so that a save numbers the events it
-- adds from the row it updates, without reading the timeline first.
ALTER TABLE deployments ADD COLUMN event_count BIGINT NOT NULL DEFAULT 0;
UPDATE deployments SET event_count = COALESCE(
    (SELECT MAX(seq) FROM deployment_events e WHERE e.deployment_id = deployments.id), 0);
