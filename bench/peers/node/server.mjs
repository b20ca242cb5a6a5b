// panva's oidc-provider as a bench peer: client credentials and introspection (RFC 7662) on,
// static confidential clients, tokens stored through the PostgreSQL adapter or the provider's
// own memory adapter.
//
// Environment: PORT, ADAPTER ("pg" or "memory"), TOKENS (live tokens to mint), SEED_OUT (where
// the clients' credentials and the tokens go, as JSON), and libpq's PG* variables for "pg".
// It mints the tokens with the provider's own model before it listens, so a memory adapter's
// tokens live in the process that answers for them.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';

import Provider from 'oidc-provider';

import { createPgAdapter } from './pg_adapter.mjs';

const WEB_CLIENTS = 50;
const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

function secret() {
  return randomBytes(32).toString('base64url');
}

function jwk(type, options) {
  return generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' });
}

const clients = [];
for (let i = 1; i <= WEB_CLIENTS; i += 1) {
  clients.push({ client_id: `bench-web-${i}`, secret: secret() });
}
const introspector = { client_id: 'bench-introspector', secret: secret() };

let store;
if (process.env.ADAPTER === 'pg') {
  store = await createPgAdapter();
} else if (process.env.ADAPTER !== 'memory') {
  throw new Error(`ADAPTER must be pg or memory, not ${process.env.ADAPTER}`);
}

const provider = new Provider(issuer, {
  ...(store ? { adapter: store.adapter } : {}),
  clients: [...clients, introspector].map(({ client_id: clientId, secret: clientSecret }) => ({
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'read write',
  })),
  scopes: ['openid', 'read', 'write'],
  features: {
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // The provider's default, stated: a confidential client may introspect any token.
      allowedPolicy: async (ctx, client, token) => client.clientAuthMethod !== 'none'
        || token.clientId === client.clientId,
    },
    devInteractions: { enabled: false },
  },
  // An hour, as authserver's access tokens (the provider's default is ten minutes).
  ttl: { ClientCredentials: 3600 },
  jwks: {
    keys: [
      jwk('rsa', { modulusLength: 2048 }),
      jwk('ec', { namedCurve: 'P-256' }),
    ],
  },
  cookies: { keys: [secret()] },
});

const tokens = [];
const count = Number(process.env.TOKENS);
for (let i = 0; i < count; i += 1) {
  const client = await provider.Client.find(clients[i % clients.length].client_id);
  const token = new provider.ClientCredentials({ client, scope: 'read write' });
  tokens.push(await token.save());
}
writeFileSync(process.env.SEED_OUT, JSON.stringify({
  introspector: { client_id: introspector.client_id, secret: introspector.secret },
  clients: clients.map(({ client_id: clientId, secret: s }) => ({ client_id: clientId, secret: s })),
  tokens,
}));

const server = provider.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  if (store) store.close();
});
