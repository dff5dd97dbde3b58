-- Invitations are limited per sender and per group per day; these count them.
CREATE INDEX group_invites_sender_idx ON group_invites (invited_by, created_at DESC) WHERE kind = 'invite';
CREATE INDEX group_invites_group_created_idx ON group_invites (group_id, created_at DESC) WHERE kind = 'invite';
