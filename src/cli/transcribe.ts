/**
 * `rnnkit transcribe`: speaks WAV files through a speech model, one transcript a line (with
 * `--json`, one `{"audio", "text"}` object a line). A file that is not a readable WAV file is an
 * error naming it; the engine decodes, resamples and computes the model's stored features.
 */

import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import type { SpeechRecognizer } from '../index';
import { CliError, exitingWith, type ExitCode } from './exit';
import { checkReadable } from './files';
import { openTaskModel } from './models';
import { intOption, jsonOption } from './options';

interface TranscribeFlags {
  json?: boolean;
  beam?: number;
  lexicon?: string;
}

/** `rnnkit transcribe`: transcribes each WAV file in order. */
async function transcribeFiles(file: string, wavs: string[], o: TranscribeFlags): Promise<number> {
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
      // The engine says what is wrong with the bytes; the user needs the file too.
      throw new CliError(`${JSON.stringify(wav)}: ${(e as Error).message}`);
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
      'Transcribe WAV files (8/16/24/32-bit PCM or float, any rate and channel count) with a speech model: one transcript a line, or with --json one {"audio": <file>, "text": <transcript>} object a line. Greedy decoding unless --beam is given.',
    )
    .argument('<model>', 'speech model file (.safetensors)')
    .argument('<wav...>', 'WAV files')
    .addOption(intOption('--beam <width>', 'prefix beam search keeping this many prefixes per frame', 1, 1024))
    .addOption(new Option('--lexicon <words>', 'allowed words, separated by spaces or commas (needs --beam)'))
    .addOption(jsonOption())
    .action(exitingWith(exit, transcribeFiles));
}
