/**
 * Cross-origin access for browser applications (CORS): allowed origins get
 * `Access-Control-Allow-Origin` on every answer, and preflight `OPTIONS` requests are answered
 * 204 with the methods and headers the API accepts. Requests from other origins are answered as
 * usual, without the headers, so the browser withholds the answer from the page; a
 * cross-origin POST that skips the preflight (a "simple" `text/plain` one) is refused before it
 * runs by the JSON content-type check (`handler.ts`).
 */

/** Headers a preflight allows: what the `openai` client and fetch-based apps send. */
const ALLOWED_HEADERS = 'authorization, content-type, x-request-id, openai-organization, openai-project, x-stainless-*';

/** The CORS policy of one server. */
export class CorsPolicy {
  private readonly any: boolean;
  private readonly origins: Set<string>;

  constructor(origins: readonly string[]) {
    this.any = origins.includes('*');
    this.origins = new Set(origins);
  }

  /** Headers for an answer to a request from `origin` (none when it is not allowed). */
  headers(origin: string | undefined): Record<string, string> {
    if (origin === undefined || !(this.any || this.origins.has(origin))) return {};
    return {
      'access-control-allow-origin': this.any ? '*' : origin,
      'access-control-expose-headers': 'x-request-id, retry-after',
      ...(this.any ? {} : { vary: 'Origin' }),
    };
  }

  /** Headers of a preflight answer; `null` when the origin is not allowed. */
  preflight(origin: string | undefined, requestedHeaders: string | undefined): Record<string, string> | null {
    const base = this.headers(origin);
    if (Object.keys(base).length === 0) return null;
    return {
      ...base,
      'access-control-allow-methods': 'GET, POST, OPTIONS',
      // Echo what the browser asks for (already limited by the browser to request headers);
      // the API itself ignores headers it does not know.
      'access-control-allow-headers': requestedHeaders ?? ALLOWED_HEADERS,
      'access-control-max-age': '600',
    };
  }
}
