import type { Transport } from './credential.js';
import { parseBearer } from './authorization-header.js';

/** `Authorization: Bearer <jwt>`: non-browser clients, the cookbook's way. */
export const bearerHeader: Transport = {
  name: 'bearer',
  extract(request) {
    const token = parseBearer(request.authorization);
    return token === undefined ? undefined : { transport: 'bearer', value: token };
  },
};
