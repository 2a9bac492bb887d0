/**
 * Chat templates: how `/v1/chat/completions` turns a conversation into the prompt a language
 * model continues. Templates are Jinja in Hugging Face's conventions (`messages`,
 * `add_generation_prompt`, `bos_token`, `eos_token`), rendered by `@huggingface/jinja`, so a
 * template written for a Hugging Face tokenizer works here unchanged.
 *
 * Which template: the server's `chatTemplate` option (`rnnkit serve --chat-template FILE`), else
 * the model file's `chat_template` metadata, else {@link DEFAULT_CHAT_TEMPLATE}: one line per
 * message, `role: content`, ending with `assistant:` for the model to continue. With the default
 * template generation also stops where the model starts a next turn (`\nuser:`, `\nsystem:`,
 * `\nassistant:`); a custom template's turns end at the request's `stop` strings and `max_tokens`.
 */

import { Template } from '@huggingface/jinja';
import { typeError } from '../errors';

/** The documented default template: `role: content` lines, then `assistant:`. */
export const DEFAULT_CHAT_TEMPLATE =
  '{% for message in messages %}{{ message.role }}: {{ message.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}';

/** Stop strings of the default template: the start of a next turn. */
const DEFAULT_TEMPLATE_STOPS = ['\nuser:', '\nsystem:', '\nassistant:'];

/** One message as the template sees it. */
export interface TemplateMessage {
  role: string;
  content: string;
  name?: string;
}

/** A parsed chat template with the stop strings that end an assistant turn in it. */
export class ChatTemplate {
  private readonly template: Template;
  /** Stop strings added to every chat request (the default template's turn starts; none for custom templates). */
  readonly stops: readonly string[];

  /** Parses `source` (default: {@link DEFAULT_CHAT_TEMPLATE}); a syntax error is a TypeError naming `where`. */
  constructor(source: string | undefined, where = 'chatTemplate') {
    try {
      this.template = new Template(source ?? DEFAULT_CHAT_TEMPLATE);
    } catch (e) {
      throw typeError('ERR_RNNKIT_CONFIG', `${where}: not a valid Jinja chat template: ${(e as Error).message}`);
    }
    this.stops = source === undefined ? DEFAULT_TEMPLATE_STOPS : [];
  }

  /** The prompt for `messages`, ending where the assistant's answer begins. */
  render(messages: TemplateMessage[]): string {
    return this.template.render({ messages, add_generation_prompt: true, bos_token: '', eos_token: '' });
  }
}
