import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

/**
 * Reads a secret: from a prompt with echo off on a terminal, otherwise the first line of standard
 * input (so scripts can pipe a password without it ever reaching argv or the shell history).
 */
export async function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let data = '';
    stdin.setEncoding('utf8');
    for await (const chunk of stdin) {
      data += chunk as string;
      if (data.includes('\n')) break;
    }
    const line = data.split(/\r?\n/)[0] ?? '';
    if (line === '') throw new Error('no password on standard input');
    return line;
  }
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (!muted) process.stderr.write(chunk);
      callback();
    },
  });
  const rl = createInterface({ input: stdin, output, terminal: true });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.question(prompt, resolve);
      muted = true;
    });
    process.stderr.write('\n');
    return answer;
  } finally {
    rl.close();
  }
}
