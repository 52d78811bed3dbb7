import type { FastifyInstance } from 'fastify';
import type { Gate } from '../handshake/gate.js';

/**
 * Puts a gate in front of a Fastify server's WebSocket upgrades, counts every connection against
 * its client address, and drains its sockets (1001) when the server closes. Usage: `await app.register(wsgateFastify, { gate })`.
 */
export async function wsgateFastify(app: FastifyInstance, options: { gate: Gate }): Promise<void> {
  const { gate } = options;
  app.server.on('connection', gate.handleConnection);
  app.server.on('upgrade', gate.handleUpgrade);
  // A request on a connection beyond its address's cap: 429, and the connection closes after it.
  app.addHook('onRequest', async (request, reply) => {
    try {
      await gate.checkConnection(request.raw.socket);
    } catch (err) {
      void reply.header('connection', 'close');
      throw err;
    }
  });
  app.addHook('preClose', async () => {
    await gate.drain();
  });
  app.addHook('onClose', async () => {
    app.server.off('connection', gate.handleConnection);
    app.server.off('upgrade', gate.handleUpgrade);
  });
}
// Not encapsulated: the upgrade listener and close hooks belong to the whole server.
(wsgateFastify as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
