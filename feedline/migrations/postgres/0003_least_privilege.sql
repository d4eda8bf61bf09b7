-- Least privilege (issue 14). Runs as the owner, like every migration. The group roles
-- are created by the stack (feedline/stack/postgres.py: ensure_roles), which makes the
-- login roles their members: the web app's role is in feedline_dml, Debezium's in
-- feedline_cdc. Nothing here names a login role, so the role names stay settings.

-- The application: rows in, rows out; no DDL, no TRUNCATE, no triggers, no references.
GRANT USAGE ON SCHEMA public TO feedline_dml, feedline_cdc;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO feedline_dml;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO feedline_dml;
-- The migration ledger is the owner's: the application may read which versions ran.
REVOKE ALL ON schema_migrations FROM feedline_dml;
GRANT SELECT ON schema_migrations TO feedline_dml;

-- Tables and sequences that later migrations create (as the owner) get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO feedline_dml;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO feedline_dml;

-- Debezium: its initial snapshot reads the published tables, and nothing else (not the
-- credentials in user_tokens and user_passwords). A table added to feedline_pub later
-- needs its own GRANT SELECT ... TO feedline_cdc in the same migration.
GRANT SELECT ON users, followers, shards, comments, likes TO feedline_cdc;
