// The API key: a bearer token, compared in constant time. Both sides are hashed first, so the
// comparison runs on equal-length digests whatever the length of what was sent (timingSafeEqual
// throws on unequal lengths, and an early length check would leak the key's length).
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A checker for `Authorization: Bearer <key>`; null key: everyone is let in. */
export function bearerCheck(key: string | null): (authorization: string | undefined) => boolean {
  if (key === null) return () => true;
  const want = digest(key);
  return (authorization) => {
    const m = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
    // a missing header still costs a comparison, like a wrong key
    return timingSafeEqual(digest(m ? m[1] : ''), want) && m !== null;
  };
}
