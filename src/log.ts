import pino, { type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from './config.js';

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

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'wsgate' },
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
    destination,
  );
}
