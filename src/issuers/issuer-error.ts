/** Why an issuer's metadata or keys could not be used; `code` is stable, callers switch on it. */
export type IssuerErrorCode =
  | 'insecure_url'
  | 'timeout'
  | 'unreachable'
  | 'redirect'
  | 'http_status'
  | 'too_large'
  | 'not_json'
  | 'bad_metadata'
  | 'issuer_mismatch'
  | 'bad_jwks'
  | 'too_many_keys';

/**
 * A failure to fetch or accept an issuer's discovery document or key set. Its message names the
 * URL (configuration, never a secret) and what was wrong, never a response body.
 */
export class IssuerError extends Error {
  readonly code: IssuerErrorCode;
  /** The HTTP status, for `http_status`. */
  readonly status: number | undefined;

  constructor(
    code: IssuerErrorCode,
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IssuerError';
    this.code = code;
    this.status = options?.status;
  }
}
