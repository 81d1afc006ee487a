// token.js: the token a page acts for, as text: where it is given (the
// address), whom it names, and the key that keeps tabs of different
// identities apart. No storage, no DOM (session.js keeps the token).
//
// The token is given once as `#token=…` in the address, alone or beside a
// route (`#/notes&token=…`): the fragment never reaches a server, a log or a
// Referer header. Its payload is read without verifying it, only to say whom
// it names: the server verifies every request.

const TOKEN_PARAM = 'token=';
const IDENTITY_KEY_HEX = 16;   // 64 bits of SHA-256: distinct for every token a browser will hold

const decode = (s) => { try { return decodeURIComponent(s); } catch { return s; } };

/**
 * The token in a location's hash (null if none, or empty) and the hash
 * without it: the route the address shows once the token is removed.
 */
export function tokenFromHash(hash) {
  const parts = (hash ?? '').replace(/^#/, '').split('&');
  let token = null;
  const rest = [];
  for (const part of parts) {
    if (part.startsWith(TOKEN_PARAM)) token = decode(part.slice(TOKEN_PARAM.length)) || null;
    else if (part !== '') rest.push(part);
  }
  if (rest.length === parts.length) return { token: null, hash: hash ?? '' };   // no token given: unchanged
  return { token, hash: rest.length ? `#${rest.join('&')}` : '' };
}

/** The token's payload (a JWT's middle part), or null when it is not one. */
export function tokenClaims(token) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[1])) return null;
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' && !Array.isArray(claims) ? claims : null;
  } catch {
    return null;
  }
}

/** The user the token names (its `sub`), or null. */
export function tokenSubject(token) {
  const sub = tokenClaims(token)?.sub;
  return typeof sub === 'string' && sub !== '' ? sub : null;
}

/**
 * The key of the identity a tab acts for: '' for anonymous, else a SHA-256
 * hex prefix of the token (the token itself never goes into a lock's,
 * channel's or localStorage key's name). Null when the token cannot be
 * hashed here (crypto.subtle exists only in secure contexts): such a tab
 * shares its poll with no other.
 */
export async function identityKey(token, options = {}) {
  if (token == null) return '';
  const subtle = 'subtle' in options ? options.subtle : globalThis.crypto?.subtle;
  if (!subtle) return null;
  const digest = await subtle.digest('SHA-256', new TextEncoder().encode(token));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('').slice(0, IDENTITY_KEY_HEX);
}

/** The header's words for whom the page acts. */
export function signedInText(token) {
  if (token == null) return 'anonymous';
  const sub = tokenSubject(token);
  return sub ? `signed in as ${sub}` : 'signed in (token without a subject)';
}
