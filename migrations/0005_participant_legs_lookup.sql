-- A bridge event for a participant whose leg is already closed (reconcile got there first) finds
-- that leg by room and participant id, newest first.
CREATE INDEX participant_legs_room_participant_idx ON participant_legs (room, participant_id, left_at DESC);
