DROP INDEX notifications_group_idx;
ALTER TABLE notifications DROP COLUMN group_id;
DROP TABLE room_visits;
DROP TABLE room_instances;
DROP TABLE ws_tickets;
DROP TABLE messages;
DROP TABLE group_invites;
DROP TABLE group_members;
DROP TABLE groups;
