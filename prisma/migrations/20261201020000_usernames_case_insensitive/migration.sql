-- Usernames are unique whatever their case, and logins look them up case-insensitively: "Ann" and "ann" were two
-- users, and a person typing their name with a capital could reach someone else's login prompt.
--
-- Existing users whose names differ only in case: the first one created keeps its name; each later one is renamed
-- to its name (cut to 54 characters) + "~" + the last 8 characters of its id, which no new registration can take
-- ("~" is not allowed in a new username) and which is still a valid login name. Each rename is recorded in the
-- audit trail (action user.rename, detail: the old and the new name), so the scheme can tell the person.
WITH ranked AS (
  SELECT id, username, currency_id,
         row_number() OVER (PARTITION BY lower(username) ORDER BY created_at, id) AS n
    FROM app_user
),
renamed AS (
  UPDATE app_user u
     SET username = left(r.username, 54) || '~' || right(u.id::text, 8)
    FROM ranked r
   WHERE r.id = u.id AND r.n > 1
  RETURNING u.id, r.username AS old_name, u.username AS new_name, u.currency_id
)
INSERT INTO audit_event (actor_id, actor_name, role, action, target, currency_id, outcome, detail)
SELECT NULL, 'migration 20261201020000_usernames_case_insensitive', NULL, 'user.rename', id::text, currency_id, 'success',
       jsonb_build_object('from', old_name, 'to', new_name, 'why', 'another user has the same name in another case')
  FROM renamed;

CREATE UNIQUE INDEX app_user_username_lower_key ON app_user (lower(username));
