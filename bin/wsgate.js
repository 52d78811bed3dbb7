#!/usr/bin/env node
const args = process.argv.slice(2);

// `scan` needs nothing of the server (database drivers, HTTP framework): loading only the scanner
// keeps a CI step that runs it fast.
const run =
  args[0] === 'scan'
    ? import('../dist/cli/scan.js').then(({ scanCommand }) => scanCommand(args.slice(1)))
    : import('../dist/cli/main.js').then(({ main }) => main(args));

run.then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`wsgate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
