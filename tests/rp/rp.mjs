// A relying party built on openid-client, driven one step at a time by tests/test_openid_rp.py.
//
// The test writes one JSON command per line on stdin and reads one JSON answer per line on
// stdout: {"ok": true, ...} or {"ok": false, "error": {...}}. Everything openid-client rejects
// (a bad signature, issuer, audience, nonce, state, PKCE, subject...) comes back as an error,
// which the test turns into a failure. The RP keeps its secrets (PKCE verifier, nonce, tokens)
// to itself and hands the test only what it asserts on.

import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'
import * as client from 'openid-client'

let config // the openid-client Configuration, after discovery
let pending // the checks for the authorization response the browser is bringing back
let tokens // the latest token endpoint response

function jwtHeader(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString('utf8'))
}

// Core §3.1.3.6: the left half of the SHA-256 of the access token, for RS256 and ES256 alike.
function atHash(accessToken) {
  return createHash('sha256').update(accessToken, 'ascii').digest().subarray(0, 16).toString('base64url')
}

function idToken(response) {
  const claims = response.claims()
  if (claims === undefined) throw new Error('the token response has no ID token')
  let atHashVerified = false
  if (claims.at_hash !== undefined) {
    if (claims.at_hash !== atHash(response.access_token)) {
      throw new Error('the ID token at_hash does not match the access token')
    }
    atHashVerified = true
  }
  return {
    header: jwtHeader(response.id_token),
    claims,
    at_hash_verified: atHashVerified,
    scope: response.scope,
    token_type: response.token_type,
    expires_in: response.expires_in,
    has_refresh_token: typeof response.refresh_token === 'string',
  }
}

const steps = {
  async discover({ issuer, client_id, client_secret, auth, alg }) {
    const authenticate = {
      client_secret_basic: client.ClientSecretBasic,
      client_secret_post: client.ClientSecretPost,
      none: client.None, // a public client (a desktop application)
    }[auth]
    if (authenticate === undefined) throw new Error(`unknown client authentication ${auth}`)
    config = await client.discovery(
      new URL(issuer),
      client_id,
      // The ID token must be signed with this algorithm and must say when the user signed in.
      { id_token_signed_response_alg: alg, require_auth_time: true },
      authenticate(client_secret),
      // The live server is plain http on loopback; ID token signatures are verified against
      // the JWKS even though they came straight from the token endpoint.
      { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] },
    )
    return { metadata: config.serverMetadata() }
  },

  async authorize({ redirect_uri, scope, extra = {} }) {
    const verifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri,
      scope,
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...extra, // prompt, max_age...
    })
    pending = { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce }
    if (extra.max_age !== undefined) pending.maxAge = Number(extra.max_age)
    return { url: url.href, state, nonce }
  },

  async callback({ url }) {
    if (pending === undefined) throw new Error('no authorization request is pending')
    const checks = { ...pending, idTokenExpected: true }
    pending = undefined
    tokens = await client.authorizationCodeGrant(config, new URL(url), checks)
    return idToken(tokens)
  },

  async userinfo() {
    // openid-client checks that UserInfo's sub is the ID token's (Core §5.3.2).
    return { userinfo: await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub) }
  },

  async refresh() {
    tokens = await client.refreshTokenGrant(config, tokens.refresh_token)
    return idToken(tokens)
  },

  async logout({ post_logout_redirect_uri, state }) {
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token,
      post_logout_redirect_uri,
      state,
    })
    return { url: url.href }
  },
}

function described(error) {
  return {
    name: error?.name,
    message: error?.message ?? String(error),
    code: error?.code,
    error: error?.error, // an OAuth error code from the server
    error_description: error?.error_description,
    cause: error?.cause === undefined ? undefined : String(error.cause?.message ?? error.cause),
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of lines) {
  if (!line.trim()) continue
  let answer
  try {
    const { step, ...args } = JSON.parse(line)
    const run = steps[step]
    if (run === undefined) throw new Error(`unknown step ${step}`)
    answer = { ok: true, ...(await run(args)) }
  } catch (error) {
    answer = { ok: false, error: described(error) }
  }
  process.stdout.write(JSON.stringify(answer) + '\n')
}
