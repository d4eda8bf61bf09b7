-- The count triggers of 0004 with static SQL (issue 17): same counts, same locks, same
-- order, only the way the queries are run changes.
--
-- 0004 built each query as text and ran it with EXECUTE, so PostgreSQL parsed and planned
-- it again on every statement that fired a trigger: ~14% of PostgreSQL's CPU in the `cpu`
-- benchmark (perf), where every like, comment, follow and shard fires one. PL/pgSQL plans
-- a static statement once per session and keeps the plan, transition tables included; a
-- branch per operation names only the transition tables that operation has (an INSERT
-- trigger has no `removed`), and a branch never run is never planned.
--
-- `feedline_count_on_shards` took the column to count as a trigger argument, which static
-- SQL cannot name; likes and comments now have a function each.

CREATE OR REPLACE FUNCTION feedline_count_followers() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    followers int[];
    following int[];
BEGIN
    -- Each edge end's net change: +1 per added row, -1 per removed row.
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(id ORDER BY id), array_agg(f ORDER BY id), array_agg(g ORDER BY id)
        INTO ids, followers, following
        FROM (SELECT id, sum(f)::int AS f, sum(g)::int AS g
              FROM (SELECT followee_id AS id, 1 AS f, 0 AS g FROM added
                    UNION ALL SELECT follower_id, 0, 1 FROM added) edge_ends
              GROUP BY id) d
        WHERE f <> 0 OR g <> 0;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(id ORDER BY id), array_agg(f ORDER BY id), array_agg(g ORDER BY id)
        INTO ids, followers, following
        FROM (SELECT id, sum(f)::int AS f, sum(g)::int AS g
              FROM (SELECT followee_id AS id, -1 AS f, 0 AS g FROM removed
                    UNION ALL SELECT follower_id, 0, -1 FROM removed) edge_ends
              GROUP BY id) d
        WHERE f <> 0 OR g <> 0;
    ELSE
        SELECT array_agg(id ORDER BY id), array_agg(f ORDER BY id), array_agg(g ORDER BY id)
        INTO ids, followers, following
        FROM (SELECT id, sum(f)::int AS f, sum(g)::int AS g
              FROM (SELECT followee_id AS id, 1 AS f, 0 AS g FROM added
                    UNION ALL SELECT follower_id, 0, 1 FROM added
                    UNION ALL SELECT followee_id, -1, 0 FROM removed
                    UNION ALL SELECT follower_id, 0, -1 FROM removed) edge_ends
              GROUP BY id) d
        WHERE f <> 0 OR g <> 0;
    END IF;
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
    -- Only INSERT and DELETE fire it (0004: no UPDATE trigger on shards).
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(author_id ORDER BY author_id), array_agg(n ORDER BY author_id)
        INTO ids, deltas
        FROM (SELECT author_id, count(*)::int AS n FROM added GROUP BY author_id) d;
    ELSE
        SELECT array_agg(author_id ORDER BY author_id), array_agg(n ORDER BY author_id)
        INTO ids, deltas
        FROM (SELECT author_id, -count(*)::int AS n FROM removed GROUP BY author_id) d;
    END IF;
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

-- Likes and comments count on their shard, each in its own column: the per-shard net
-- change of the firing statement, then the same locked update as 0004.
CREATE OR REPLACE FUNCTION feedline_count_likes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    deltas int[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(shard_id ORDER BY shard_id), array_agg(n ORDER BY shard_id)
        INTO ids, deltas
        FROM (SELECT shard_id, count(*)::int AS n FROM added GROUP BY shard_id) d;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(shard_id ORDER BY shard_id), array_agg(n ORDER BY shard_id)
        INTO ids, deltas
        FROM (SELECT shard_id, -count(*)::int AS n FROM removed GROUP BY shard_id) d;
    ELSE
        SELECT array_agg(shard_id ORDER BY shard_id), array_agg(n ORDER BY shard_id)
        INTO ids, deltas
        FROM (SELECT shard_id, sum(n)::int AS n
              FROM (SELECT shard_id, 1 AS n FROM added
                    UNION ALL SELECT shard_id, -1 FROM removed) moved
              GROUP BY shard_id) d
        WHERE n <> 0;
    END IF;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM public.shards WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE public.shards s SET like_count = s.like_count + d.n
    FROM unnest(ids, deltas) AS d (id, n)
    WHERE s.id = d.id AND s.id = ANY (ids);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION feedline_count_comments() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    deltas int[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(shard_id ORDER BY shard_id), array_agg(n ORDER BY shard_id)
        INTO ids, deltas
        FROM (SELECT shard_id, count(*)::int AS n FROM added GROUP BY shard_id) d;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(shard_id ORDER BY shard_id), array_agg(n ORDER BY shard_id)
        INTO ids, deltas
        FROM (SELECT shard_id, -count(*)::int AS n FROM removed GROUP BY shard_id) d;
    ELSE
        SELECT array_agg(shard_id ORDER BY shard_id), array_agg(n ORDER BY shard_id)
        INTO ids, deltas
        FROM (SELECT shard_id, sum(n)::int AS n
              FROM (SELECT shard_id, 1 AS n FROM added
                    UNION ALL SELECT shard_id, -1 FROM removed) moved
              GROUP BY shard_id) d
        WHERE n <> 0;
    END IF;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM public.shards WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE public.shards s SET comment_count = s.comment_count + d.n
    FROM unnest(ids, deltas) AS d (id, n)
    WHERE s.id = d.id AND s.id = ANY (ids);
    RETURN NULL;
END
$$;

-- The same triggers as 0004, now on the functions above.
DROP TRIGGER IF EXISTS likes_counted_insert ON likes;
DROP TRIGGER IF EXISTS likes_counted_update ON likes;
DROP TRIGGER IF EXISTS likes_counted_delete ON likes;
CREATE TRIGGER likes_counted_insert AFTER INSERT ON likes
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_likes();
CREATE TRIGGER likes_counted_update AFTER UPDATE ON likes
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_likes();
CREATE TRIGGER likes_counted_delete AFTER DELETE ON likes
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_likes();

DROP TRIGGER IF EXISTS comments_counted_insert ON comments;
DROP TRIGGER IF EXISTS comments_counted_update ON comments;
DROP TRIGGER IF EXISTS comments_counted_delete ON comments;
CREATE TRIGGER comments_counted_insert AFTER INSERT ON comments
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_comments();
CREATE TRIGGER comments_counted_update AFTER UPDATE ON comments
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_comments();
CREATE TRIGGER comments_counted_delete AFTER DELETE ON comments
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION feedline_count_comments();

DROP FUNCTION IF EXISTS feedline_count_on_shards();
DROP FUNCTION IF EXISTS feedline_changes(text);
