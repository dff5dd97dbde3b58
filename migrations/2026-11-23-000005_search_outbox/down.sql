DROP INDEX profiles_capacity_confirmed_at_idx;
DROP TABLE worker_state;
DROP TABLE search_outbox;
