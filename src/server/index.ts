/**
 * rnnkit's HTTP server (`rnnkit serve`): an OpenAI-compatible API over the library's own
 * `LanguageModel` or any {@link CompletionModel}, so that existing clients (the official `openai`
 * npm package, curl, browser apps) work unchanged.
 *
 * One file per concept: `handler.ts` (routes and the order of checks; the node:http and
 * fetch-style handlers), `server.ts` (`createServer`: the handler on its own listening server),
 * `chat.ts` and `chat-template.ts` (`/v1/chat/completions`), `completions.ts`
 * (`/v1/completions`), `params.ts` (the parameters both share), `generation.ts` (running the
 * choices of a request, JSON and server-sent events), `exchange.ts` (node:http and fetch
 * requests behind one interface), `auth.ts` (API key), `cors.ts`, `limits.ts` (admission,
 * connection caps and timeouts), `metrics.ts` (Prometheus), `log.ts`, `errors.ts` (OpenAI's
 * error shape), `options.ts`, `model.ts` (what the server needs from a model), `workers.ts`
 * (`rnnkit serve --workers`: several server processes behind one port).
 *
 * Built on Node's own `http` module: streaming needs raw writes with back-pressure, the body
 * limit, the connection limits and the shutdown sequence need direct control of the request
 * stream and the sockets, and a framework would add a dependency without removing code.
 */

export { createServer, type RnnkitServer } from './server';
export { createHandler, type CloseOptions, type RnnkitHandler } from './handler';
export { DEFAULT_MODEL_ID, CHAT_TEMPLATE_KEY, type CompletionModel, type CompletionStream, type ServableModel } from './model';
export { SERVER_DEFAULTS, type ServerOptions } from './options';
export { DEFAULT_CHAT_TEMPLATE } from './chat-template';
export type { LogEntry, LogLevel } from './log';
