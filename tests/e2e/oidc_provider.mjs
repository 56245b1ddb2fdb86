// A real OpenID provider for the single sign-on tests: the certified `oidc-provider` package under
// node, on loopback, with one confidential client, static users, and its development login and
// consent pages (any password; the login field is the user's id).

import { createServer } from 'node:net';
import { Provider } from 'oidc-provider';

/** A free TCP port on 127.0.0.1 (the provider's issuer URL must be known before it starts). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/** The users the provider knows, by login. */
export const USERS = {
  rivera: { email: 'rivera@school.example', email_verified: true, name: 'Ms Rivera', groups: ['staff'] },
  pupil: { email: 'pupil@school.example', email_verified: true, name: 'Pat Pupil', groups: ['pupils'] },
  mallory: { email: 'mallory@other.example', email_verified: true, name: 'Mallory', groups: ['staff'] },
};

/**
 * Starts the provider on `http://127.0.0.1:PORT` for a client whose callback is `redirectUri`.
 * @param {{port: number, clientId: string, clientSecret: string, redirectUri: string}} opts
 */
export async function startProvider({ port, clientId, clientSecret, redirectUri }) {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    // The scopes' claims in the ID token, as Google, Entra ID and Keycloak send them.
    conformIdTokenClaims: false,
    cookies: { keys: ['oidc-e2e-cookie-key-0123456789'] },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      const user = USERS[/** @type {keyof typeof USERS} */ (id)];
      if (!user) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...user }; } };
    },
  });
  // Quiet: the development interactions and keys print warnings we expect.
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider:', err));
  const server = provider.listen(port, '127.0.0.1');
  await new Promise((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  return {
    issuer,
    async stop() {
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
