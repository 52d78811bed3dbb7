import { PostgresStorage } from './postgres.js';
import { SqliteStorage } from './sqlite.js';
import type { Storage } from './types.js';

/** Opens the storage named by `--database`: `sqlite:<path>` or `postgres://…` (`postgresql://…`). */
export function openStorage(database: string): Storage {
  if (database.startsWith('sqlite:')) return new SqliteStorage(database.slice('sqlite:'.length));
  if (/^postgres(ql)?:\/\//.test(database)) return new PostgresStorage(database);
  throw new Error('--database must be sqlite:<path> or a postgres:// URL');
}
