// Command-line options shared by the benchmark scripts.

/**
 * The number after `--<name>` on the command line, or `fallback` when the flag is absent. Exits with a
 * message unless it is positive (and, unless `integer` is false, a whole number).
 */
export function positiveOption(name, fallback, { integer = true } = {}) {
  const index = process.argv.indexOf(`--${name}`);
  if (index === -1) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!(integer ? Number.isInteger(value) : Number.isFinite(value)) || value <= 0) {
    console.error(`--${name} takes a positive ${integer ? 'integer' : 'number'}`);
    process.exit(1);
  }
  return value;
}
