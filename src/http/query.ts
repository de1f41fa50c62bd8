import { WebhookError } from '../core/errors.js';

/**
 * One query parameter. A parameter given more than once is refused (400) rather than silently resolved to
 * the first or last value: a proxy and this API must never disagree on which site or webhook a request
 * names. Absent gives `undefined`; an empty value is returned as `''` and refused by the manager's validation.
 */
export function queryParam(params: URLSearchParams, name: string): string | undefined {
  const values = params.getAll(name);
  if (values.length > 1) {
    throw new WebhookError('validation_failed', `Duplicate query parameter: ${name}`);
  }
  return values[0];
}

/** A query parameter the route cannot do without: absent or empty gives 400 `<name> is required`. */
export function requiredQueryParam(params: URLSearchParams, name: string): string {
  const value = queryParam(params, name);
  if (value === undefined || value === '') {
    throw new WebhookError('validation_failed', `${name} is required`);
  }
  return value;
}
