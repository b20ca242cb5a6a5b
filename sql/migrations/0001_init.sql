-- The initial schema. Constraints carry the rules that must hold whatever the code does:
-- a bad state is refused by the database, not only by the application.

CREATE TABLE users (
    user_id       text PRIMARY KEY CHECK (user_id ~ '^[A-Za-z0-9._@:-]{1,64}$'),
    login         text NOT NULL CHECK (length(login) BETWEEN 1 AND 255),
    email         text CHECK (length(email) BETWEEN 3 AND 320),
    display_name  text NOT NULL DEFAULT '' CHECK (length(display_name) <= 255),
    password_hash text CHECK (password_hash LIKE '$argon2%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Logins are matched without regard to case on the login page and the password grant.
CREATE UNIQUE INDEX users_login_key ON users (lower(login));

CREATE TABLE clients (
    client_id      text PRIMARY KEY CHECK (client_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    description    text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    website        text NOT NULL CHECK (website ~ '^https?://' AND length(website) <= 2048),
    client_type    text NOT NULL CHECK (client_type IN ('web', 'desktop')),
    redirect_uris  text[] NOT NULL DEFAULT '{}',
    owner_id       text NOT NULL REFERENCES users ON DELETE CASCADE,
    password_grant boolean NOT NULL DEFAULT false,
    introspection  boolean NOT NULL DEFAULT false,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- RFC 6749 §3.1.2.2: confidential web clients must register where codes may go.
    CHECK (client_type <> 'web' OR cardinality(redirect_uris) >= 1),
    CHECK (cardinality(redirect_uris) <= 20)
);
CREATE INDEX clients_owner_idx ON clients (owner_id);

-- Two rows per client at most are valid at once: the current secret (expires_at NULL) and,
-- during a rotation window, the previous one.
CREATE TABLE client_secrets (
    secret_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id  text NOT NULL REFERENCES clients ON DELETE CASCADE,
    key_id     text NOT NULL,
    digest     bytea NOT NULL CHECK (length(digest) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz
);
CREATE INDEX client_secrets_client_idx ON client_secrets (client_id);
CREATE INDEX client_secrets_expires_idx ON client_secrets (expires_at);

-- A user's consent to a client: Phraseanet's "account". Revoking keeps the row (revoked_at)
-- but deletes everything issued under it.
CREATE TABLE grants (
    grant_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users ON DELETE CASCADE,
    client_id  text NOT NULL REFERENCES clients ON DELETE CASCADE,
    scopes     text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    UNIQUE (user_id, client_id)
);
CREATE INDEX grants_client_idx ON grants (client_id);

CREATE TABLE authorization_codes (
    digest                bytea PRIMARY KEY CHECK (length(digest) = 32),
    client_id             text NOT NULL REFERENCES clients ON DELETE CASCADE,
    user_id               text NOT NULL REFERENCES users ON DELETE CASCADE,
    grant_id              bigint NOT NULL REFERENCES grants ON DELETE CASCADE,
    redirect_uri          text,
    scope                 text NOT NULL DEFAULT '',
    code_challenge        text,
    code_challenge_method text CHECK (code_challenge_method = 'S256'),
    created_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz NOT NULL,
    consumed_at           timestamptz,
    CHECK ((code_challenge IS NULL) = (code_challenge_method IS NULL))
);
CREATE INDEX authorization_codes_expires_idx ON authorization_codes (expires_at);
CREATE INDEX authorization_codes_grant_idx ON authorization_codes (grant_id);
CREATE INDEX authorization_codes_client_idx ON authorization_codes (client_id);
CREATE INDEX authorization_codes_user_idx ON authorization_codes (user_id);

-- Access and refresh tokens, stored only as SHA-256 digests of the token string.
-- family_id ties together every token descended from one authorization, so a replayed refresh
-- token or code can revoke all of them; code_digest remembers which code issued a token.
CREATE TABLE tokens (
    digest      bytea PRIMARY KEY CHECK (length(digest) = 32),
    kind        text NOT NULL CHECK (kind IN ('access', 'refresh')),
    client_id   text NOT NULL REFERENCES clients ON DELETE CASCADE,
    user_id     text REFERENCES users ON DELETE CASCADE,
    grant_id    bigint REFERENCES grants ON DELETE CASCADE,
    family_id   uuid,
    code_digest bytea,
    scope       text NOT NULL DEFAULT '',
    developer   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    consumed_at timestamptz,  -- a refresh token that was rotated: presenting it again is reuse
    revoked_at  timestamptz,
    -- Only developer tokens live forever, and they are access tokens of a user's grant.
    CHECK (developer OR expires_at IS NOT NULL),
    CHECK (NOT developer OR (kind = 'access' AND grant_id IS NOT NULL)),
    CHECK (kind = 'refresh' OR consumed_at IS NULL),
    CHECK ((user_id IS NULL) = (grant_id IS NULL))
);
CREATE INDEX tokens_expires_idx ON tokens (expires_at);
CREATE INDEX tokens_client_idx ON tokens (client_id);
CREATE INDEX tokens_user_idx ON tokens (user_id);
CREATE INDEX tokens_grant_idx ON tokens (grant_id);
CREATE INDEX tokens_family_idx ON tokens (family_id) WHERE family_id IS NOT NULL;
CREATE INDEX tokens_code_idx ON tokens (code_digest) WHERE code_digest IS NOT NULL;

-- Audit events outlive what they mention, so they hold ids, not foreign keys.
CREATE TABLE audit_events (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL CHECK (kind ~ '^[a-z_.]{1,64}$'),
    client_id   text,
    user_id     text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_occurred_idx ON audit_events (occurred_at);
