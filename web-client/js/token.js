// @ts-check
// Class links and tokens. A link looks like `<server>/join#token=<JWT>`: the token sits in the
// fragment, so it never reaches the server's or a proxy's logs.

/**
 * The token in a location hash (`#token=...`), or null.
 * @param {string | null | undefined} hash
 * @returns {string | null}
 */
export function tokenFromHash(hash) {
  const params = new URLSearchParams(String(hash || '').replace(/^#/, ''));
  const t = params.get('token');
  return t && t.trim() ? t.trim() : null;
}

/**
 * A token from whatever a person pasted: a full link, a `#token=` fragment, or the bare code.
 * @param {string | null | undefined} text
 * @returns {string | null}
 */
export function tokenFromInput(text) {
  const s = String(text || '').trim();
  if (!s) return null;
  const i = s.indexOf('#');
  if (i >= 0) return tokenFromHash(s.slice(i));
  if (/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(s)) return s;
  return null;
}

/**
 * The token's claims, decoded without verifying (the server verifies): {class, role, name?, exp}.
 * Null when it is not a JWT.
 * @param {string | null | undefined} token
 * @returns {{class?: string, role?: string, name?: string, exp?: number} | null}
 */
export function peekClaims(token) {
  const parts = String(token || '').split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/**
 * True when the claims' expiry has passed (by this computer's clock).
 * @param {{exp?: number} | null} claims
 * @param {number} [nowMs]
 * @returns {boolean}
 */
export function isExpired(claims, nowMs = Date.now()) {
  return !!(claims && typeof claims.exp === 'number' && claims.exp * 1000 <= nowMs);
}
