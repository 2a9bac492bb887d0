/**
 * API-key authentication: `Authorization: Bearer <key>`, compared in constant time, refused with
 * 401 in OpenAI's shape (what the `openai` client raises as `AuthenticationError`).
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError } from './errors';

/** Checks the `Authorization` header of requests against one key. */
export class ApiKeyCheck {
  private readonly digest: Buffer;

  constructor(key: string) {
    this.digest = sha256(key);
  }

  /** Throws the 401 unless `header` is `Bearer <the key>`. */
  check(header: string | undefined): void {
    const match = header === undefined ? null : /^Bearer[ \t]+(.+)$/i.exec(header.trim());
    if (match === null) {
      throw new ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        'invalid_request_error',
        null,
        'missing_api_key',
        { 'www-authenticate': 'Bearer' },
      );
    }
    // Comparing fixed-length digests takes the same time whatever the key's length or content.
    if (!timingSafeEqual(sha256(match[1]), this.digest)) {
      throw new ApiError(401, 'Incorrect API key provided.', 'invalid_request_error', null, 'invalid_api_key', { 'www-authenticate': 'Bearer' });
    }
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
