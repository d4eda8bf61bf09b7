-- Accounts: a password per user, and bearer tokens that expire.
-- Password hashes (argon2id, PHC strings) live in their own table, outside the CDC
-- publication like user_tokens: not even a hash of a credential reaches Kafka. A user
-- made before this migration has no row here and cannot log in with a password (the
-- tokens it already holds keep working until they expire).
CREATE TABLE user_passwords (
    user_id       bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    password_hash text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Fixed expiry, set when the token is minted (FEEDLINE_TOKEN_TTL_S; the app always passes
-- it, the default only covers rows inserted by hand or by bench seeding). Tokens minted
-- before this migration get 30 days from now.
ALTER TABLE user_tokens
    ADD COLUMN expires_at timestamptz NOT NULL DEFAULT now() + interval '30 days';
CREATE INDEX user_tokens_expiry_idx ON user_tokens (expires_at);
