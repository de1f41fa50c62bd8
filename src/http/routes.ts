/**
 * The paths of the webhooks API under its base path, and the methods each one allows. Pure functions: no
 * I/O, no knowledge of the manager.
 */

export const DEFAULT_BASE_PATH = '/api/webhooks';

export type Route =
  /** `{base}`: the spec's list (GET), create (POST) and delete (DELETE); update (PATCH) is an extension. */
  | { name: 'collection' }
  /** `{base}/deliveries`: the activity log (extension). */
  | { name: 'deliveries' }
  /** `{base}/rotate-secret?id=` (extension); optional JSON body `{ overlapSeconds }`. */
  | { name: 'rotate-secret' }
  /** `{base}/revoke-previous-secret?id=` (extension): ends a rotation overlap at once. */
  | { name: 'revoke-previous-secret' }
  /** `{base}/redeliver?id=` (extension). */
  | { name: 'redeliver' }
  /** `{base}/{id}`: one webhook (extension). */
  | { name: 'item'; id: string };

export type RouteName = Route['name'];

/** Methods per route, in the order the `Allow` header lists them. */
export const ALLOWED_METHODS: Record<RouteName, readonly string[]> = {
  collection: ['GET', 'POST', 'PATCH', 'DELETE'],
  deliveries: ['GET'],
  'rotate-secret': ['POST'],
  'revoke-previous-secret': ['POST'],
  redeliver: ['POST'],
  item: ['GET'],
};

const FIXED = new Map<string, Exclude<RouteName, 'collection' | 'item'>>([
  ['deliveries', 'deliveries'],
  ['rotate-secret', 'rotate-secret'],
  ['revoke-previous-secret', 'revoke-previous-secret'],
  ['redeliver', 'redeliver'],
]);

/**
 * Checks and normalises a base path: it must start with `/`; trailing slashes are dropped (`/` becomes
 * the empty string, meaning the API sits at the root).
 */
export function normaliseBasePath(basePath: string): string {
  if (typeof basePath !== 'string' || !basePath.startsWith('/') || /[?#\s]/.test(basePath)) {
    throw new TypeError(`basePath must be a path starting with "/", got ${JSON.stringify(basePath)}`);
  }
  // Requests are matched on the URL parser's pathname, which encodes, resolves dot segments and turns
  // backslashes into slashes: a base it would write differently could never match.
  if (new URL(basePath, 'http://host').pathname !== basePath) {
    throw new TypeError(
      `basePath must be written as a URL path is (percent-encoded, without dot segments or backslashes), got ${JSON.stringify(basePath)}`,
    );
  }
  return basePath.replace(/\/+$/, '');
}

/** `pathname` without one trailing slash (so `/api/webhooks/` is `/api/webhooks`). */
function trimmed(pathname: string): string {
  return pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
}

/** Whether `pathname` is the base path or lies under it (`base` as returned by {@link normaliseBasePath}). */
export function isUnderBase(pathname: string, base: string): boolean {
  const path = trimmed(pathname);
  return path === base || path.startsWith(`${base}/`);
}

/** The route `pathname` names, or `null` for a path this API does not serve. */
export function matchRoute(pathname: string, base: string): Route | null {
  const path = trimmed(pathname);
  if (path === base) return { name: 'collection' };
  if (!path.startsWith(`${base}/`)) return null;
  const rest = path.slice(base.length + 1);
  if (rest === '' || rest.includes('/')) return null;
  const fixed = FIXED.get(rest);
  if (fixed !== undefined) return { name: fixed };
  let id: string;
  try {
    id = decodeURIComponent(rest);
  } catch {
    return null;
  }
  return id === '' ? null : { name: 'item', id };
}
