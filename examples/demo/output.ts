/**
 * The demo's terminal output: plain lines, and one live progress line. On a terminal the progress line is
 * redrawn in place; anywhere else (CI logs, a pipe, a file) it becomes a plain line once a second, and
 * only when it changed, so logs stay readable. Colours only on a terminal, and never with NO_COLOR.
 */
import { stripVTControlCharacters } from 'node:util';

export interface OutputOptions {
  /** Default: whether the stream is a terminal. */
  tty?: boolean;
  color?: boolean;
}

type Style = (text: string) => string;

export class Output {
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly bold: Style;
  readonly dim: Style;
  readonly green: Style;
  readonly red: Style;
  readonly yellow: Style;
  #render: (() => string) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastPrinted = '';
  #showing = false;

  constructor(stream: NodeJS.WriteStream = process.stdout, options: OutputOptions = {}) {
    this.#stream = stream;
    this.#tty = options.tty ?? stream.isTTY === true;
    const color = options.color ?? (this.#tty && !process.env.NO_COLOR);
    const sgr = (open: number, close: number): Style =>
      color ? (text) => `\x1b[${open}m${text}\x1b[${close}m` : (text) => text;
    this.bold = sgr(1, 22);
    this.dim = sgr(2, 22);
    this.green = sgr(32, 39);
    this.red = sgr(31, 39);
    this.yellow = sgr(33, 39);
  }

  get ok(): string {
    return this.green('✓');
  }

  get fail(): string {
    return this.red('✗');
  }

  /** Prints a line (above the progress line, if one is showing). */
  line(text = ''): void {
    this.#clear();
    this.#stream.write(`${text}\n`);
    this.#draw();
  }

  /** Shows `render()` as the live progress line until `stopProgress`. */
  startProgress(render: () => string): void {
    this.stopProgress();
    this.#render = render;
    this.#lastPrinted = '';
    if (this.#tty) {
      this.#draw();
      this.#timer = setInterval(() => {
        this.#clear();
        this.#draw();
      }, 100);
    } else {
      this.#timer = setInterval(() => this.#printIfChanged(), 1000);
    }
    this.#timer.unref();
  }

  /** Stops updating and leaves the last state printed as a normal line. */
  stopProgress(): void {
    if (this.#render === undefined) return;
    clearInterval(this.#timer);
    this.#clear();
    this.#printIfChanged();
    this.#render = undefined;
  }

  #printIfChanged(): void {
    const text = this.#render?.() ?? '';
    if (text === this.#lastPrinted) return;
    this.#lastPrinted = text;
    this.#stream.write(`${text}\n`);
  }

  #draw(): void {
    if (!this.#tty || this.#render === undefined) return;
    const columns = this.#stream.columns || 120;
    const text = this.#render();
    // Cut to the terminal width so the line never wraps (a wrapped line cannot be redrawn in place).
    const visible = stripVTControlCharacters(text);
    this.#stream.write(visible.length < columns ? text : `${visible.slice(0, columns - 2)}…`);
    this.#showing = true;
  }

  #clear(): void {
    if (!this.#showing) return;
    this.#stream.write('\r\x1b[2K');
    this.#showing = false;
  }
}

/** Lays out rows as a table with `|` separators; numbers right-aligned. */
export function table(header: string[], rows: (string | number)[][]): string[] {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.every((row) => typeof row[i] === 'number'));
  const format = (row: string[]) =>
    row
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join(' | ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('-+-');
  return [format(header), rule, ...cells.slice(1).map(format)];
}
