/**
 * HS256 JSON Web Tokens (RFC 7519) with node:crypto: the connection and subscription tokens Centrifugo
 * accepts with `token_hmac_secret_key`. Only HS256 is accepted; a token naming any other algorithm
 * (notably `none`) is refused before its signature is looked at.
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Why a token was refused. `expired` is told apart because Centrifugo answers it with its own code (109). */
export type JwtFailure = 'malformed' | 'algorithm' | 'signature' | 'expired' | 'not-yet-valid';

/** A token that did not verify. */
export class JwtError extends Error {
  readonly reason: JwtFailure;
  constructor(reason: JwtFailure, message: string) {
    super(message);
    this.name = 'JwtError';
    this.reason = reason;
  }
}

/** Claims are a JSON object; the verifier checks only `exp` and `nbf`, the caller checks the rest. */
export type JwtClaims = Record<string, unknown>;

const HEADER = base64url(Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })));

function base64url(buf: Buffer): string {
  return buf.toString('base64url');
}

function sign(input: string, secret: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(input).digest();
}

/** Signs `claims` with HS256. */
export function signJwt(claims: JwtClaims, secret: Uint8Array): string {
  const body = `${HEADER}.${base64url(Buffer.from(JSON.stringify(claims)))}`;
  return `${body}.${base64url(sign(body, secret))}`;
}

function decodeJson(part: string, what: string): JwtClaims {
  // Buffer.from(…, 'base64url') skips characters outside the alphabet instead of failing: check first.
  if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new JwtError('malformed', `${what} is not base64url`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new JwtError('malformed', `${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new JwtError('malformed', `${what} is not a JSON object`);
  return value as JwtClaims;
}

/**
 * Verifies an HS256 token and returns its claims. `nowSeconds` is the current UNIX time in seconds.
 * Throws {@link JwtError}.
 */
export function verifyJwt(token: string, secret: Uint8Array, nowSeconds: number): JwtClaims {
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwtError('malformed', 'a JWT has three dot-separated parts');
  const [headerPart, claimsPart, signaturePart] = parts as [string, string, string];
  const header = decodeJson(headerPart, 'header');
  if (header.alg !== 'HS256') throw new JwtError('algorithm', `algorithm ${JSON.stringify(header.alg)} is not HS256`);
  if (!/^[A-Za-z0-9_-]+$/.test(signaturePart)) throw new JwtError('malformed', 'signature is not base64url');
  const expected = sign(`${headerPart}.${claimsPart}`, secret);
  const given = Buffer.from(signaturePart, 'base64url');
  // timingSafeEqual needs equal lengths; a length mismatch reveals nothing about the secret.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new JwtError('signature', 'bad signature');
  const claims = decodeJson(claimsPart, 'claims');
  if (claims.exp !== undefined) {
    if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) throw new JwtError('malformed', 'exp is not a number');
    if (claims.exp <= nowSeconds) throw new JwtError('expired', 'token expired');
  }
  if (claims.nbf !== undefined) {
    if (typeof claims.nbf !== 'number' || !Number.isFinite(claims.nbf)) throw new JwtError('malformed', 'nbf is not a number');
    if (claims.nbf > nowSeconds) throw new JwtError('not-yet-valid', 'token not valid yet');
  }
  return claims;
}
