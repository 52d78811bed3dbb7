import type { Command } from '../command.js';
import { audit } from './audit.js';
import { serve } from './serve.js';
import { sessionsList, sessionsRevoke } from './sessions.js';
import { tokenIssue } from './tokens.js';
import { userAdd, userDisable, userEnable, userList, userPasswd } from './users.js';

/** Every command, in the order `wsgate --help` lists them. */
export const commands: readonly Command[] = [
  serve,
  userAdd,
  userPasswd,
  userDisable,
  userEnable,
  userList,
  tokenIssue,
  sessionsList,
  sessionsRevoke,
  audit,
];
