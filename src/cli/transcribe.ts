/**
 * `rnnkit transcribe`: speaks WAV files through a speech model (a model file, or with `--model` one
 * the package ships), one transcript a line (with `--json`, one `{"audio", "text"}` object a
 * line). A file that is not a readable WAV file is an error naming it; the engine decodes,
 * resamples and computes the model's stored features.
 */

import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import type { SpeechRecognizer } from '../index';
import { CliError, exitingWith, UsageError, type ExitCode } from './exit';
import { checkReadable } from './files';
import { bundledModel, bundledModelNames, openTaskModel } from './models';
import { intOption, jsonOption } from './options';

interface TranscribeFlags {
  model?: string;
  json?: boolean;
  beam?: number;
  lexicon?: string;
}

/** `rnnkit transcribe`: transcribes each WAV file in order. */
async function transcribeFiles(files: string[], o: TranscribeFlags): Promise<number> {
  const [file, wavs] = o.model === undefined ? [files[0], files.slice(1)] : [bundledModel(o.model), files];
  if (wavs.length === 0) throw new UsageError(o.model === undefined ? 'give a model file and at least one WAV file' : 'give at least one WAV file');
  const model = await openTaskModel<SpeechRecognizer>(file, 'speech', 'transcribe');
  if (!model.features) throw new CliError(`${JSON.stringify(file)} reads feature frames, not audio; transcribe needs a model made with audio features`);
  const lexicon = o.lexicon === undefined ? undefined : o.lexicon.split(/[\s,]+/).filter((w) => w.length > 0);
  if (lexicon !== undefined && o.beam === undefined) throw new CliError('--lexicon constrains beam search; give --beam <width> with it');
  const options = { ...(o.beam === undefined ? {} : { beamWidth: o.beam }), ...(lexicon === undefined ? {} : { lexicon }) };
  for (const wav of wavs) {
    checkReadable(wav, 'audio file');
    let text: string;
    try {
      text = await model.transcribe(fs.readFileSync(wav), options);
    } catch (e) {
      // The engine says what is wrong with the bytes (of `audio[0]`, the one file given); the user needs the file's name.
      throw new CliError(`${JSON.stringify(wav)}: ${(e as Error).message.replace(/^audio\[0\]: /, '')}`);
    }
    process.stdout.write(o.json ? JSON.stringify({ audio: wav, text }) + '\n' : text + '\n');
  }
  return 0;
}

/** Declares `rnnkit transcribe` on `program`. */
export function addTranscribeCommand(program: Command, exit: ExitCode): void {
  program
    .command('transcribe')
    .summary('transcribe WAV files with a speech model')
    .description(
      'Transcribe WAV files (8/16/24/32-bit PCM or float, any rate and channel count) with a speech model: one transcript a line, or with --json one {"audio": <file>, "text": <transcript>} object a line. Greedy decoding unless --beam is given. --model spoken-digits uses the shipped recognizer of English digit strings ("3 0 6 5").',
    )
    .argument('[files...]', 'a speech model file (.safetensors) and WAV files; only WAV files with --model')
    .addOption(new Option('--model <name>', `a model the package ships instead of a model file (${bundledModelNames().join(', ') || 'none'})`))
    .addOption(intOption('--beam <width>', 'prefix beam search keeping this many prefixes per frame', 1, 1024))
    .addOption(new Option('--lexicon <words>', 'allowed words, separated by spaces or commas (needs --beam)'))
    .addOption(jsonOption())
    .action(exitingWith(exit, transcribeFiles));
}
