/** Every error the library raises, with the HTTP status it maps to. Check errors by `code`, never by message. */
export const ERROR_STATUS = {
  validation_failed: 400,
  url_not_https: 400,
  invalid_url: 400,
  private_address: 400,
  invalid_event_type: 400,
  webhook_limit_reached: 400,
  payload_too_large: 413,
  unauthorized: 401,
  access_denied: 403,
  webhook_not_found: 404,
  delivery_not_found: 404,
  delivery_not_redeliverable: 409,
  rotation_conflict: 409,
  method_not_allowed: 405,
  unsupported_media_type: 415,
  internal_error: 500,
} as const;

export type WebhookErrorCode = keyof typeof ERROR_STATUS;

export class WebhookError extends Error {
  override readonly name = 'WebhookError';
  readonly code: WebhookErrorCode;
  readonly status: number;

  constructor(code: WebhookErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = ERROR_STATUS[code];
  }

  /**
   * Each built entry point carries its own copy of this class, so `instanceof` can fail across them;
   * this checks the shape instead.
   */
  static is(error: unknown, code?: WebhookErrorCode): error is WebhookError {
    if (typeof error !== 'object' || error === null) return false;
    const candidate = error as { name?: unknown; code?: unknown; status?: unknown };
    if (candidate.name !== 'WebhookError' || typeof candidate.status !== 'number') return false;
    if (typeof candidate.code !== 'string' || !(candidate.code in ERROR_STATUS)) return false;
    return code === undefined || candidate.code === code;
  }

  toJSON(): { error: string } {
    return { error: this.message };
  }
}

export const MESSAGES = {
  accessDenied: 'Access denied',
  webhookNotFound: 'Webhook not found',
  deliveryNotFound: 'Delivery not found',
  urlNotHttps: 'URL must use HTTPS',
  invalidEventType: (name: string) => `Invalid event type: ${name}`,
} as const;
