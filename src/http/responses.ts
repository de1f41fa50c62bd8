/** The content type of every answer of the webhooks API. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

const encoder = new TextEncoder();

/** A JSON response with `cache-control: no-store` (bodies may hold secrets) and an exact Content-Length. */
export function jsonResponse(status: number, body: unknown, headers?: Record<string, string>): Response {
  const bytes = encoder.encode(JSON.stringify(body));
  return new Response(bytes, {
    status,
    headers: {
      'content-type': JSON_CONTENT_TYPE,
      'content-length': String(bytes.byteLength),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...headers,
    },
  });
}

/** `{ "error": message }` with `status`: the shape of every error the spec documents. */
export function errorResponse(status: number, message: string, headers?: Record<string, string>): Response {
  return jsonResponse(status, { error: message }, headers);
}
