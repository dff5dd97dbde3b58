ALTER TABLE notifications DROP COLUMN session_id;
DROP TABLE session_attendance;
DROP TABLE group_sessions;
ALTER TABLE users DROP COLUMN time_zone;
-- btree_gist stays: other objects of the database may use it.
