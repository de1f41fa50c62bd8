#!/usr/bin/env bash
# Check the package as users get it: build, `npm pack`, then lint the packed tarball (not the working
# tree) with publint and @arethetypeswrong/cli. Needs no network: both tools are local devDependencies
# (`npx --no` refuses to download anything) and both read the tarball from disk.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/zta-webhooks-pack.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "==> build"
npm run build

echo "==> npm pack"
npm pack --pack-destination "$tmp" >/dev/null
shopt -s nullglob
tarballs=("$tmp"/*.tgz)
shopt -u nullglob
if [[ ${#tarballs[@]} -ne 1 ]]; then
  echo "expected exactly one tarball in $tmp, found ${#tarballs[@]}" >&2
  exit 1
fi
tarball="${tarballs[0]}"
echo "packed $(basename "$tarball")"

echo "==> publint --strict"
# --strict turns warnings into errors (suggestions are printed but do not fail the run).
npx --no -- publint run --strict "$tarball"

# Subpaths whose exports entry has no "require" condition are ESM-only on purpose (./testing imports
# vitest, which cannot be require()d); they are checked with the esm-only profile below.
mapfile -t esm_only < <(node -e '
  const { exports: map = {} } = require("./package.json");
  for (const [key, target] of Object.entries(map)) {
    if (target && typeof target === "object" && !("require" in target) && !("default" in target)) {
      console.log(key);
    }
  }
')

echo "==> no CommonJS build of an ESM-only subpath in the tarball"
# tsup builds every entry in both formats; package.json's "files" leaves these out. A .cjs that no export
# reaches would only mislead someone who requires it by path.
# The CommonJS twins of each ESM-only export's own file (its "import" target, e.g. ./dist/testing.js).
mapfile -t cjs_twins < <(node -e '
  const { exports: map = {} } = require("./package.json");
  for (const key of process.argv.slice(1)) {
    const file = map[key].import.default.replace(/^\.\//, "").replace(/\.js$/, "");
    for (const ext of [".cjs", ".cjs.map", ".d.cts"]) console.log(file + ext);
  }
' "${esm_only[@]}")
packed="$(tar -tzf "$tarball")"
for file in "${cjs_twins[@]}"; do
  if grep -qxF "package/$file" <<<"$packed"; then
    echo "$tarball ships $file, a CommonJS build of an ESM-only export" >&2
    exit 1
  fi
done

echo "==> attw --profile node16"
# Profile node16 checks node16-from-CJS, node16-from-ESM and bundler resolution for every entry, and
# ignores only `node10` (moduleResolution "node"/"node10"): that pre-exports resolver cannot see subpath
# exports at all, so `@zta/webhooks/verify` etc. can never resolve there. TypeScript users of this
# package need moduleResolution node16/nodenext/bundler, as they do for any package with subpaths.
if [[ ${#esm_only[@]} -gt 0 ]]; then
  npx --no -- attw "$tarball" --profile node16 --exclude-entrypoints "${esm_only[@]}"
  echo "==> attw --profile esm-only (${esm_only[*]})"
  npx --no -- attw "$tarball" --profile esm-only --entrypoints "${esm_only[@]}"
else
  npx --no -- attw "$tarball" --profile node16
fi

echo "==> package OK"
