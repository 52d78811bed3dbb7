import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../runtime.js';
import { setTokenCookies } from '../cookies.js';

/** `GET /get-cookie` (demo mode only): fastapi-jwt-auth's demo, cookies for user `test`. */
export function compatRoutes(app: FastifyInstance, runtime: Runtime): void {
  if (!runtime.config.demo) return;
  app.get(
    '/get-cookie',
    {
      schema: {
        summary: 'Demo: set the token cookies for user test',
        description:
          'fastapi-jwt-auth compatibility; only in demo mode, which listens on loopback only.',
        tags: ['compat'],
      },
    },
    async (_request, reply) => {
      const pair = await runtime.sessions.openSession('test', { cookies: true, fresh: true });
      setTokenCookies(reply, pair, { secure: runtime.config.secureCookies });
      reply.header('cache-control', 'no-store');
      return { msg: 'Successfully login' };
    },
  );
}
