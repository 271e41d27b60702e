// A real OpenID Provider (node `oidc-provider`, OpenID Certified) for Portcullis's end-to-end
// tests: client-credentials JWT access tokens signed RS256 with keys kept in a file, so that a
// test can rotate them and restart the provider on the same port.
//
//   node provider.mjs --port P --keys FILE [--rotate] [--drop-old] [--audience AUD]
//                     [--exit-with-stdin]
//
// stdout gets exactly one line once the provider answers:
//   {"issuer":"http://127.0.0.1:PORT","port":PORT,"kids":["<signing kid>", ...]}
// Everything else (oidc-provider's notices, request errors) goes to stderr.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

// oidc-provider prints its configuration notices with console.info, i.e. to stdout; stdout is
// reserved for the one JSON line, so send every console line to stderr.
console.log = console.info = console.error;

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    keys: { type: 'string' },
    rotate: { type: 'boolean', default: false },
    'drop-old': { type: 'boolean', default: false },
    audience: { type: 'string', default: 'portcullis-api' },
    // Exit when stdin closes: a test harness that dies without killing us leaves no orphan.
    'exit-with-stdin': { type: 'boolean', default: false },
  },
});
if (!args.keys) {
  console.error('usage: provider.mjs --port P --keys FILE [--rotate] [--drop-old] [--audience AUD]');
  process.exit(2);
}

const SCOPES = [
  'openid',
  'session:create', 'session:read', 'session:update', 'session:delete', 'session:list',
  'memory:create', 'memory:read', 'memory:update', 'memory:delete', 'memory:search', 'memory:list',
  'admin:read', 'admin:write',
];

// Extra access-token claims per client (and, for the authorization-code login, per user).
const CLAIMS = {
  'svc-acme': { org: 'acme', roles: ['user'], realm_access: { roles: ['user'] } },
  'svc-admin': { org: 'acme', roles: ['admin'], realm_access: { roles: ['admin'] } },
  'svc-globex': { org: 'globex', roles: ['viewer'], realm_access: { roles: ['viewer'] } },
};
const USER_CLAIMS = {
  alice: { org: 'acme', roles: ['user'], realm_access: { roles: ['user'] } },
  bob: { org: 'globex', roles: ['viewer'], realm_access: { roles: ['viewer'] } },
};

// --- keys -------------------------------------------------------------------------------------

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomBytes(12).toString('base64url'), alg: 'RS256', use: 'sig' };
}

function loadKeys(file) {
  let keys = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).keys : [];
  const fresh = keys.length === 0;
  if (fresh || args.rotate) keys = [newKey(), ...keys];
  if (args['drop-old']) keys = keys.slice(0, 1);
  if (fresh || args.rotate || args['drop-old']) {
    // Write-then-rename, so that a kill mid-write never leaves a half file.
    fs.writeFileSync(`${file}.tmp`, JSON.stringify({ keys }, null, 2), { mode: 0o600 });
    fs.renameSync(`${file}.tmp`, file);
  }
  return keys;
}

const keys = loadKeys(args.keys);

// --- HTTP server first, so that the issuer can carry the real port ----------------------------

let callback = (_req, res) => {
  res.statusCode = 503;
  res.end('starting');
};
const server = http.createServer((req, res) => callback(req, res));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(args.port), '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

// --- the provider ----------------------------------------------------------------------------

// Imported only now: console is redirected by then, whatever the module prints.
const { default: Provider, errors } = await import('oidc-provider');

// A resource indicator must be an absolute URI; the audience need not be one (`portcullis-api`),
// so the resource gets a URN and the audience is set separately.
const RESOURCE = URL.canParse(args.audience) ? args.audience : `urn:portcullis:${args.audience}`;

const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret`, // fixed test secrets
  token_endpoint_auth_method: 'client_secret_post',
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: SCOPES.join(' '),
});

const provider = new Provider(issuer, {
  clients: [
    client('svc-acme'),
    client('svc-admin'),
    client('svc-globex'),
    // The authorization-code login (login.mjs): a public client with PKCE; the redirect URI is
    // never fetched, login.mjs reads the code off the redirect.
    {
      client_id: 'portcullis-web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      scope: SCOPES.join(' '),
    },
  ],
  jwks: { keys }, // the first key signs; /jwks publishes the public parts of all of them
  scopes: SCOPES,
  // Only `sub` in ID tokens/userinfo; the authorization claims live in access tokens.
  claims: { openid: ['sub'] },
  // Signed cookies for the interaction/session cookies of the code flow (test value).
  cookies: { keys: ['portcullis-oidc-peer-cookie-key'] },
  // Any login name is an account (devInteractions takes any); only USER_CLAIMS' users get
  // org/roles claims in their access tokens.
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    clientCredentials: { enabled: true },
    // devInteractions: the built-in login and consent pages (any password; the login name is
    // the account) that login.mjs drives without a browser. Fine for a test peer only.
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Without a `resource` parameter every token is for our one API...
      defaultResource: async () => RESOURCE,
      // ...and the code flow's token request (which sends no `resource`) gets the resource the
      // authorization granted instead of being refused.
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource !== RESOURCE) throw new errors.InvalidTarget();
        return {
          // The scopes this resource accepts: a client-credentials token gets the requested
          // scopes that are in here (oidc-provider filters the rest out silently).
          scope: SCOPES.join(' '),
          audience: args.audience,
          accessTokenFormat: 'jwt', // header typ "at+jwt"
          accessTokenTTL: 3600,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // `token.clientId` for client credentials; for a user's token (code flow) the account.
  extraTokenClaims: async (_ctx, token) =>
    (token.accountId ? USER_CLAIMS[token.accountId] : CLAIMS[token.clientId]) ?? undefined,
  // Quiet: the memory adapter and default TTLs are what a test peer wants.
  ttl: {
    AccessToken: 3600,
    ClientCredentials: 3600,
    AuthorizationCode: 60,
    Grant: 3600,
    Interaction: 600,
    Session: 3600,
    IdToken: 3600,
  },
});
provider.proxy = false;
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

callback = provider.callback();

process.stdout.write(
  `${JSON.stringify({ issuer, port, kids: keys.map((k) => k.kid) })}\n`,
);

if (args['exit-with-stdin']) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
