import { SqliteStorage } from './sqlite.js';
import type { Storage } from './types.js';

/** Opens the storage named by `--database`: `sqlite:<path>` or `postgres://…`. */
export function openStorage(database: string): Storage {
  if (database.startsWith('sqlite:')) return new SqliteStorage(database.slice('sqlite:'.length));
  throw new Error('PostgreSQL storage is not available in this build yet; use sqlite:<path>');
}
