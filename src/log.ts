import { writeSync } from 'node:fs';
import pino, { type Logger, type DestinationStream } from 'pino';
import type { LogFormat, LogLevel } from './config.js';

/**
 * Paths that may carry a secret. pino replaces them with "[redacted]" wherever they appear, so a
 * careless log call cannot leak a token, cookie, password or ticket.
 */
export const redactPaths = [
  'password',
  'token',
  'ticket',
  'access_token',
  'refresh_token',
  'csrf',
  'csrf_token',
  'authorization',
  'cookie',
  '*.password',
  '*.token',
  '*.ticket',
  '*.access_token',
  '*.refresh_token',
  '*.csrf',
  '*.csrf_token',
  '*.authorization',
  '*.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["sec-websocket-protocol"]',
];

/** Drops the query string: it may hold a ticket, token or CSRF value. */
export function pathOnly(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

const levelNames: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};

const hidden = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);

/** One pino JSON line as a short line for a person: `12:00:01 INFO  message key=value`. */
export function prettyLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof entry.time === 'number' ? new Date(entry.time) : new Date();
  const clock = time.toTimeString().slice(0, 8);
  const level = levelNames[entry.level as number] ?? String(entry.level);
  const fields = Object.entries(entry)
    .filter(([key]) => !hidden.has(key))
    .map(([key, value]) => {
      if (key === 'err' && typeof value === 'object' && value !== null) {
        const err = value as { message?: string; stack?: string };
        return `err=${JSON.stringify(err.message ?? '')}`;
      }
      return `${key}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`;
    });
  return `${clock} ${level} ${typeof entry.msg === 'string' ? entry.msg : ''}${fields.length ? `  ${fields.join(' ')}` : ''}
`;
}

export interface LoggerOptions {
  /** `json` (default): one JSON object a line; `pretty`: {@link prettyLine}. */
  readonly format?: LogFormat;
  /** A file descriptor (1 stdout, the default; 2 stderr) or a stream taking JSON lines. */
  readonly destination?: number | DestinationStream;
}

/** A message the logger drops: Fastify's own "listening" line, which repeats wsgate's. */
export const unlogged = 'wsgate:unlogged';

export function createLogger(
  level: LogLevel,
  options: LoggerOptions | DestinationStream = {},
): Logger {
  const { format = 'json', destination = 1 } =
    'write' in options ? { destination: options } : options;
  let stream: DestinationStream;
  if (typeof destination !== 'number') stream = destination;
  else if (format === 'pretty')
    stream = { write: (line) => void writeSync(destination, prettyLine(line)) };
  else stream = pino.destination({ dest: destination, sync: true });
  return pino(
    {
      level,
      base: { service: 'wsgate' },
      hooks: {
        logMethod(args, method) {
          if (args[0] === unlogged) return;
          method.apply(this, args);
        },
      },
      redact: { paths: redactPaths, censor: '[redacted]' },
      serializers: {
        req: (req: { method?: string; url?: string; ip?: string; id?: string }) => ({
          id: req.id,
          method: req.method,
          path: pathOnly(req.url),
          ip: req.ip,
        }),
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
        err: pino.stdSerializers.err,
      },
    },
    stream,
  );
}
