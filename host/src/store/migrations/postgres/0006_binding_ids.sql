-- Gate bindings get stable ids, and deployments in their pre-deployment step a snapshot of
-- their stage's gates. Both live inside the JSON documents, which the data step of this
-- migration (`store/binding_ids.rs`) rewrites; the schema itself does not change.
SELECT 1;
