// oidc-provider's storage in PostgreSQL: every model in one table, keyed by (model, id).
//
// The provider calls find/upsert/consume/destroy and the three secondary lookups; a row past
// its expiry is treated as gone, as the memory adapter's LRU would have dropped it.
import pg from 'pg';

const TABLE = `
CREATE TABLE IF NOT EXISTS oidc_payloads (
  model text NOT NULL,
  id text NOT NULL,
  payload jsonb NOT NULL,
  grant_id text,
  user_code text,
  uid text,
  expires_at timestamptz,
  consumed_at timestamptz,
  PRIMARY KEY (model, id)
);
CREATE INDEX IF NOT EXISTS oidc_payloads_grant_id ON oidc_payloads (grant_id);
CREATE INDEX IF NOT EXISTS oidc_payloads_user_code ON oidc_payloads (user_code);
CREATE INDEX IF NOT EXISTS oidc_payloads_uid ON oidc_payloads (uid);
`;

const LIVE = '(expires_at IS NULL OR expires_at > now())';

function row(found) {
  if (!found) return undefined;
  const { payload, consumed_at: consumedAt } = found;
  return consumedAt ? { ...payload, consumed: Math.floor(consumedAt.getTime() / 1000) } : payload;
}

export async function createPgAdapter() {
  // Connection settings from libpq's PG* variables; ten connections, as authserver's pool.
  const pool = new pg.Pool({ max: 10 });
  await pool.query(TABLE);

  class PgAdapter {
    constructor(model) {
      this.model = model;
    }

    async upsert(id, payload, expiresIn) {
      const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
      await pool.query(
        `INSERT INTO oidc_payloads (model, id, payload, grant_id, user_code, uid, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (model, id) DO UPDATE SET payload = EXCLUDED.payload,
           grant_id = EXCLUDED.grant_id, user_code = EXCLUDED.user_code, uid = EXCLUDED.uid,
           expires_at = EXCLUDED.expires_at`,
        [this.model, id, payload, payload.grantId, payload.userCode, payload.uid, expiresAt],
      );
    }

    async find(id) {
      const { rows } = await pool.query(
        `SELECT payload, consumed_at FROM oidc_payloads WHERE model = $1 AND id = $2 AND ${LIVE}`,
        [this.model, id],
      );
      return row(rows[0]);
    }

    async findByUserCode(userCode) {
      const { rows } = await pool.query(
        `SELECT payload, consumed_at FROM oidc_payloads
         WHERE model = $1 AND user_code = $2 AND ${LIVE}`,
        [this.model, userCode],
      );
      return row(rows[0]);
    }

    async findByUid(uid) {
      const { rows } = await pool.query(
        `SELECT payload, consumed_at FROM oidc_payloads WHERE model = $1 AND uid = $2 AND ${LIVE}`,
        [this.model, uid],
      );
      return row(rows[0]);
    }

    async consume(id) {
      await pool.query(
        'UPDATE oidc_payloads SET consumed_at = now() WHERE model = $1 AND id = $2',
        [this.model, id],
      );
    }

    async destroy(id) {
      await pool.query('DELETE FROM oidc_payloads WHERE model = $1 AND id = $2', [this.model, id]);
    }

    async revokeByGrantId(grantId) {
      await pool.query('DELETE FROM oidc_payloads WHERE grant_id = $1', [grantId]);
    }
  }

  return { adapter: PgAdapter, close: () => pool.end() };
}
