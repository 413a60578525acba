/**
 * One error family for all of waterbear, in the style of undici: a base class with a stable
 * `code` per failure. Tests assert codes, never message text. Messages tell the user what to do.
 * It lives at the bottom layer so every layer above can use it.
 */

/** Every stable error code. Add new codes here; never rename or reuse one. */
export const ERROR_CODES = [
  'WB_INVALID_MODULE',
  'WB_UNSUPPORTED_IMPORT',
  'WB_IMAGE_PREPARATION',
  'WB_GUEST_TRAP',
  'WB_GUEST_MEMORY_LIMIT',
  'WB_REGION_CORRUPTED',
  'WB_CONFIG_INVALID',
  'WB_LISTEN_FAILED',
  'WB_HOST_IO',
  'WB_CHECKPOINT_CORRUPT',
  'WB_CHECKPOINT_VERSION',
  'WB_CHECKPOINT_TRUNCATED',
  'WB_STORE_FULL',
  'WB_STORE_IO',
  'WB_STALE_VIEW',
  'WB_VIEW_CONFLICT',
  'WB_NOT_LEADER',
  'WB_COORD_UNAVAILABLE',
  'WB_PROTOCOL',
  'WB_TIMEOUT',
  'WB_PERMISSION',
  'WB_TRACKER_UNAVAILABLE',
  'WB_UNAUTHORIZED',
  'WB_ADMIN_DISABLED',
  'WB_BAD_REQUEST',
  'WB_JOIN_FAILED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Base class of every error waterbear throws on purpose. */
export class WaterbearError extends Error {
  readonly code: ErrorCode;
  /** Optional structured details, e.g. the list of unsupported imports. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'WaterbearError';
    this.code = code;
    this.details = options?.details;
  }
}

/** True when `err` is a WaterbearError with the given code (or any code when omitted). */
export function isWaterbearError(err: unknown, code?: ErrorCode): err is WaterbearError {
  return err instanceof WaterbearError && (code === undefined || err.code === code);
}
