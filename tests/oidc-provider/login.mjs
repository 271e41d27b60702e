// Logs a user in at provider.mjs with the authorization-code flow (PKCE, public client
// `portcullis-web`), without a browser: it follows the redirects, fills in oidc-provider's
// development login and consent forms, and exchanges the code.
//
//   node login.mjs --issuer http://127.0.0.1:PORT --user alice [--scope "openid session:read"]
//                  [--json]
//
// stdout: the access token, or with --json the token endpoint's whole answer on one line
// ({"access_token":..., "id_token":..., "scope":..., ...}). Any user name logs in; alice
// (org acme, role user) and bob (org globex, role viewer) get org/roles claims.

import * as crypto from 'node:crypto';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string' },
    user: { type: 'string' },
    scope: { type: 'string', default: 'openid session:read session:list' },
    json: { type: 'boolean', default: false },
  },
});
if (!args.issuer || !args.user) {
  console.error('usage: login.mjs --issuer URL --user NAME [--scope SCOPES]');
  process.exit(2);
}

const CLIENT_ID = 'portcullis-web';
const REDIRECT_URI = 'http://127.0.0.1/callback';

function fail(msg) {
  console.error(`login.mjs: ${msg}`);
  process.exit(1);
}

// A minimal cookie jar: the interaction and session cookies are all this flow needs.
const jar = new Map();
async function request(url, init = {}) {
  const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await fetch(url, {
    ...init,
    redirect: 'manual',
    headers: { ...init.headers, ...(cookie ? { cookie } : {}) },
  });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return res;
}

const verifier = crypto.randomBytes(32).toString('base64url');
const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
const state = crypto.randomBytes(16).toString('base64url');

const auth = new URL('/auth', args.issuer);
auth.search = new URLSearchParams({
  client_id: CLIENT_ID,
  response_type: 'code',
  redirect_uri: REDIRECT_URI,
  scope: args.scope,
  state,
  code_challenge: challenge,
  code_challenge_method: 'S256',
}).toString();

// Follow redirects until one goes to the client's redirect URI; answer each form on the way.
let url = auth.href;
let code;
for (let step = 0; step < 10 && !code; step += 1) {
  const res = await request(url);
  if (res.status >= 300 && res.status < 400) {
    const next = new URL(res.headers.get('location'), url);
    if (next.href.startsWith(REDIRECT_URI)) {
      if (next.searchParams.get('error')) {
        fail(`authorization refused: ${next.searchParams.get('error')}: ${next.searchParams.get('error_description')}`);
      }
      if (next.searchParams.get('state') !== state) fail('state mismatch');
      code = next.searchParams.get('code');
    } else {
      url = next.href;
    }
    continue;
  }
  const html = await res.text();
  if (res.status !== 200) fail(`GET ${url}: ${res.status} ${html}`);
  // devInteractions' form: <form ... action="URL" method="post"> <input name="prompt" value="...">
  const action = html.match(/<form[^>]*action="([^"]+)"/)?.[1];
  const prompt = html.match(/name="prompt" value="([^"]+)"/)?.[1];
  if (!action || !prompt) fail(`no login or consent form at ${url}`);
  const body = new URLSearchParams({ prompt });
  if (prompt === 'login') {
    body.set('login', args.user);
    body.set('password', 'any');
  }
  const submitted = await request(new URL(action, url), { method: 'POST', body });
  if (submitted.status < 300 || submitted.status >= 400) {
    fail(`POST ${action}: ${submitted.status} ${await submitted.text()}`);
  }
  url = new URL(submitted.headers.get('location'), url).href;
}
if (!code) fail('no authorization code after 10 steps');

const res = await fetch(new URL('/token', args.issuer), {
  method: 'POST',
  body: new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT_URI,
    client_id: CLIENT_ID,
    code_verifier: verifier,
  }),
});
const tokens = await res.text();
if (res.status !== 200) fail(`token endpoint: ${res.status} ${tokens}`);
const answer = JSON.parse(tokens);
process.stdout.write(`${args.json ? JSON.stringify(answer) : answer.access_token}\n`);
