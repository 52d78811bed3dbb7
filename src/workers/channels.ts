import type { Worker } from 'node:cluster';
import type { MessagePort } from 'node:worker_threads';
import type { Channel, WireMessage } from './peer.js';

/** A cluster worker's channel to its primary. */
export function primaryChannel(): Channel {
  return {
    send: (message) => {
      if (process.connected) process.send?.(message);
    },
    onMessage: (listener) => void process.on('message', listener),
    onClose: (listener) => void process.once('disconnect', listener),
  };
}

/** The primary's channel to one cluster worker. */
export function workerChannel(worker: Worker): Channel {
  return {
    send: (message) => {
      if (worker.isConnected()) worker.send(message);
    },
    onMessage: (listener) => void worker.on('message', listener),
    onClose: (listener) => {
      let called = false;
      const once = () => {
        if (called) return;
        called = true;
        listener();
      };
      worker.once('disconnect', once);
      worker.once('exit', once);
    },
  };
}

/**
 * A channel over a `MessagePort`, each message serialized as JSON as node:cluster does: the
 * contract suites run the worker stores against a real hub over it, in one process.
 */
export function portChannel(port: MessagePort): Channel {
  return {
    send: (message: WireMessage) => port.postMessage(JSON.stringify(message)),
    onMessage: (listener) => void port.on('message', (text: string) => listener(JSON.parse(text))),
    onClose: (listener) => void port.once('close', listener),
  };
}
