-- Counts kept by PostgreSQL itself (issue 16): follower_count, following_count and
-- shard_count on users, like_count and comment_count on shards follow the rows whoever
-- writes them (the API, psql, a migration, an admin tool), in the writer's transaction.
--
-- Statement-level AFTER triggers with transition tables, on INSERT and DELETE of the four
-- tables and on UPDATE of followers, likes and comments: a statement adds its rows' net
-- change once per counted row (a bulk INSERT of 20,000 follows of one author is one
-- UPDATE of that author, not 20,000 versions of its row, which row-level triggers would
-- make: quadratic, 10,000 rows 6.2 s, 20,000 rows 25.6 s, measured; statement-level:
-- 100,000 rows 3.5 s, as fast as no trigger). An INSERT counts +1 per row, a DELETE -1
-- (cascaded deletes fire them too), an UPDATE that moves a row (a comment to another
-- shard) -1 on the old key and +1 on the new one; one that moves nothing counted changes
-- no count row.
-- The counted rows are locked in id order before the update, so two statements counting
-- the same users (A follows B while B follows A) cannot deadlock on them; the update is
-- `x = x + delta` under that row lock, so concurrent writers never lose a count, and the
-- CHECK (>= 0) constraints stay as the tripwire for a count that went wrong anyway.
-- A count row deleted earlier in the same statement (a user deleted with their follows,
-- a shard with its likes) is simply not found: nothing to update, no change event.
--
-- Privileges: the functions run as the invoker (no SECURITY DEFINER). The application's
-- role has UPDATE on users and shards (0003), which is all they need; a role that may
-- write a follow but not update users gets a permission error instead of a wrong count.
-- FK cascades run as the table owner, and so do the triggers they fire.
-- Not covered: TRUNCATE (owner only; not mirrored downstream either), an UPDATE of a
-- shard's author_id (refused downstream too) and triggers disabled by the owner;
-- `SELECT feedline_recount()` puts every count right again.

-- The firing statement's rows with their sign, as a query over its transition tables
-- (`added` for the new rows, `removed` for the old ones; an UPDATE has both).
CREATE OR REPLACE FUNCTION feedline_changes(op text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE op
        WHEN 'INSERT' THEN 'SELECT 1 AS n, * FROM added'
        WHEN 'DELETE' THEN 'SELECT -1 AS n, * FROM removed'
        ELSE 'SELECT 1 AS n, * FROM added UNION ALL SELECT -1 AS n, * FROM removed'
    END
$$;

CREATE OR REPLACE FUNCTION feedline_count_followers() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    followers int[];
    following int[];
BEGIN
    EXECUTE 'WITH changes AS (' || public.feedline_changes(TG_OP) || ')
        SELECT array_agg(id ORDER BY id), array_agg(f ORDER BY id), array_agg(g ORDER BY id)
        FROM (SELECT id, sum(f)::int AS f, sum(g)::int AS g
              FROM (SELECT followee_id AS id, n AS f, 0 AS g FROM changes
                    UNION ALL SELECT follower_id, 0, n FROM changes) edge_ends
              GROUP BY id) d
        WHERE f <> 0 OR g <> 0'
        INTO ids, followers, following;
    IF ids IS NULL THEN  -- nothing counted changed (ON CONFLICT DO NOTHING, no rows)
        RETURN NULL;
    END IF;
    PERFORM 1 FROM public.users WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE public.users u
    SET follower_count = u.follower_count + d.f, following_count = u.following_count + d.g
    FROM unnest(ids, followers, following) AS d (id, f, g)
    WHERE u.id = d.id AND u.id = ANY (ids);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION feedline_count_shards() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    deltas int[];
BEGIN
    EXECUTE 'WITH changes AS (' || public.feedline_changes(TG_OP) || ')
        SELECT array_agg(author_id ORDER BY author_id), array_agg(n ORDER BY author_id)
        FROM (SELECT author_id, sum(n)::int AS n FROM changes GROUP BY author_id) d
        WHERE n <> 0'
        INTO ids, deltas;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM public.users WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE public.users u SET shard_count = u.shard_count + d.n
    FROM unnest(ids, deltas) AS d (id, n)
    WHERE u.id = d.id AND u.id = ANY (ids);
    RETURN NULL;
END
$$;

-- Likes and comments both count on their shard: TG_ARGV[0] names the column.
CREATE OR REPLACE FUNCTION feedline_count_on_shards() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    deltas int[];
BEGIN
    EXECUTE 'WITH changes AS (' || public.feedline_changes(TG_OP) || ')
        SELECT array_agg(shard_id ORDER BY shard_id), array_agg(n ORDER BY shard_id)
        FROM (SELECT shard_id, sum(n)::int AS n FROM changes GROUP BY shard_id) d
        WHERE n <> 0'
        INTO ids, deltas;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM public.shards WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
    EXECUTE format(
        'UPDATE public.shards s SET %1$I = s.%1$I + d.n
         FROM unnest($1, $2) AS d (id, n) WHERE s.id = d.id AND s.id = ANY ($1)', TG_ARGV[0])
        USING ids, deltas;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS followers_counted_insert ON followers;
DROP TRIGGER IF EXISTS followers_counted_update ON followers;
DROP TRIGGER IF EXISTS followers_counted_delete ON followers;
CREATE TRIGGER followers_counted_insert AFTER INSERT ON followers
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_followers();
CREATE TRIGGER followers_counted_update AFTER UPDATE ON followers
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_followers();
CREATE TRIGGER followers_counted_delete AFTER DELETE ON followers
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_followers();

-- No UPDATE trigger on shards: every like and comment updates its shard's counts, and a
-- shard's author never changes (downstream refuses such an event as poison, see
-- docs/events.md), so it would run on every count update for nothing.
DROP TRIGGER IF EXISTS shards_counted_insert ON shards;
DROP TRIGGER IF EXISTS shards_counted_update ON shards;
DROP TRIGGER IF EXISTS shards_counted_delete ON shards;
CREATE TRIGGER shards_counted_insert AFTER INSERT ON shards
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_shards();
CREATE TRIGGER shards_counted_delete AFTER DELETE ON shards
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_shards();

DROP TRIGGER IF EXISTS likes_counted_insert ON likes;
DROP TRIGGER IF EXISTS likes_counted_update ON likes;
DROP TRIGGER IF EXISTS likes_counted_delete ON likes;
CREATE TRIGGER likes_counted_insert AFTER INSERT ON likes
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_on_shards('like_count');
CREATE TRIGGER likes_counted_update AFTER UPDATE ON likes
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_on_shards('like_count');
CREATE TRIGGER likes_counted_delete AFTER DELETE ON likes
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_on_shards('like_count');

DROP TRIGGER IF EXISTS comments_counted_insert ON comments;
DROP TRIGGER IF EXISTS comments_counted_update ON comments;
DROP TRIGGER IF EXISTS comments_counted_delete ON comments;
CREATE TRIGGER comments_counted_insert AFTER INSERT ON comments
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_on_shards('comment_count');
CREATE TRIGGER comments_counted_update AFTER UPDATE ON comments
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_on_shards('comment_count');
CREATE TRIGGER comments_counted_delete AFTER DELETE ON comments
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_on_shards('comment_count');

-- Recompute every count from the rows; change only the rows that differ (each change is
-- a change event the pipeline copies). Idempotent: a second call changes nothing. The
-- SHARE locks wait for writers in flight and hold new ones off until the caller commits,
-- so no count moves between the recount's reads and its updates.
CREATE OR REPLACE FUNCTION feedline_recount() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    fixed_users integer;
    fixed_shards integer;
BEGIN
    LOCK TABLE public.followers, public.shards, public.likes, public.comments IN SHARE MODE;
    WITH truth AS (
        SELECT u.id, coalesce(fr.n, 0) AS followers, coalesce(fg.n, 0) AS following,
               coalesce(sh.n, 0) AS shards
        FROM public.users u
        LEFT JOIN (SELECT followee_id AS id, count(*) AS n FROM public.followers GROUP BY 1) fr
            USING (id)
        LEFT JOIN (SELECT follower_id AS id, count(*) AS n FROM public.followers GROUP BY 1) fg
            USING (id)
        LEFT JOIN (SELECT author_id AS id, count(*) AS n FROM public.shards GROUP BY 1) sh
            USING (id)
    )
    UPDATE public.users u
    SET follower_count = t.followers, following_count = t.following, shard_count = t.shards
    FROM truth t
    WHERE u.id = t.id
      AND (u.follower_count, u.following_count, u.shard_count)
          IS DISTINCT FROM (t.followers, t.following, t.shards);
    GET DIAGNOSTICS fixed_users = ROW_COUNT;
    WITH truth AS (
        SELECT s.id, coalesce(l.n, 0) AS likes, coalesce(c.n, 0) AS comments
        FROM public.shards s
        LEFT JOIN (SELECT shard_id AS id, count(*) AS n FROM public.likes GROUP BY 1) l
            USING (id)
        LEFT JOIN (SELECT shard_id AS id, count(*) AS n FROM public.comments GROUP BY 1) c
            USING (id)
    )
    UPDATE public.shards s
    SET like_count = t.likes, comment_count = t.comments
    FROM truth t
    WHERE s.id = t.id
      AND (s.like_count, s.comment_count) IS DISTINCT FROM (t.likes, t.comments);
    GET DIAGNOSTICS fixed_shards = ROW_COUNT;
    RETURN fixed_users + fixed_shards;
END
$$;

-- Counts drifted before this migration (follows written by plain SQL) become right, in
-- the same transaction that installs the triggers.
SELECT feedline_recount();
