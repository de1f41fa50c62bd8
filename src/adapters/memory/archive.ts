import {
  type AttemptRecord,
  DELIVERY_STATUSES,
  type DeliveryRecord,
  type DeliveryStatus,
} from '../../core/records.js';

/** Bytes per chunk; a record over half of it gets a chunk of its own. */
const CHUNK_BYTES = 1024 * 1024;
const INITIAL_SLOTS = 1024;

interface Chunk {
  bytes: Buffer;
  records: number;
}

/**
 * Deliveries that can no longer change by themselves, with their attempts, packed as UTF-8 in chunks of
 * bytes outside the JS heap. As objects, each kept delivery was a dozen heap objects that every major
 * garbage collection walks again, which at thousands of deliveries a second put pauses into the latency of
 * live ones; here a kept delivery costs the collector nothing. A record is addressed by its slot; the
 * slot's columns (creation time, status, site, webhook) answer the activity log's filters and retention
 * without decoding.
 */
export class DeliveryArchive {
  #createdAt = new Float64Array(INITIAL_SLOTS);
  #status = new Uint8Array(INITIAL_SLOTS);
  #site = new Int32Array(INITIAL_SLOTS);
  #webhook = new Int32Array(INITIAL_SLOTS);
  #chunk = new Int32Array(INITIAL_SLOTS);
  #offset = new Int32Array(INITIAL_SLOTS);
  #metaBytes = new Int32Array(INITIAL_SLOTS);
  #bodyBytes = new Int32Array(INITIAL_SLOTS);
  /** Free slots, linked through this column; -1 ends the list. */
  #nextFree = new Int32Array(INITIAL_SLOTS);
  #firstFree = -1;
  #slotsUsed = 0;
  #size = 0;

  readonly #chunks: (Chunk | null)[] = [];
  readonly #freeChunks: number[] = [];
  /** The chunk being filled, and where its free space starts. */
  #current = -1;
  #cursor = CHUNK_BYTES;

  readonly #sites = new NameTable();
  readonly #webhooks = new NameTable();

  /** How many records it holds. */
  get size(): number {
    return this.#size;
  }

  /** Bytes held in chunks, records and free space alike. */
  get chunkBytes(): number {
    let total = 0;
    for (const chunk of this.#chunks) total += chunk?.bytes.length ?? 0;
    return total;
  }

  /** Packs a delivery and its attempts; returns the slot that now addresses them. */
  add(delivery: DeliveryRecord, attempts: readonly AttemptRecord[]): number {
    const meta = JSON.stringify([
      delivery.id,
      delivery.event,
      delivery.attempts,
      time(delivery.nextAttemptAt),
      time(delivery.leaseExpiresAt),
      delivery.lastStatusCode,
      delivery.lastError,
      delivery.updatedAt.getTime(),
      attempts.map((a) => [
        a.attempt,
        a.startedAt.getTime(),
        a.durationMs,
        a.statusCode,
        a.errorCode,
        a.responseSnippet,
        a.ok,
      ]),
    ]);
    const metaBytes = Buffer.byteLength(meta);
    const bodyBytes = Buffer.byteLength(delivery.body);
    const [chunkIndex, offset] = this.#reserve(metaBytes + bodyBytes);
    const chunk = this.#chunks[chunkIndex]!;
    writeText(chunk.bytes, meta, offset, metaBytes);
    writeText(chunk.bytes, delivery.body, offset + metaBytes, bodyBytes);
    chunk.records++;

    const slot = this.#takeSlot();
    this.#createdAt[slot] = delivery.createdAt.getTime();
    this.#status[slot] = DELIVERY_STATUSES.indexOf(delivery.status);
    this.#site[slot] = this.#sites.intern(delivery.siteId);
    this.#webhook[slot] = this.#webhooks.intern(delivery.webhookId);
    this.#chunk[slot] = chunkIndex;
    this.#offset[slot] = offset;
    this.#metaBytes[slot] = metaBytes;
    this.#bodyBytes[slot] = bodyBytes;
    this.#size++;
    return slot;
  }

  /** The delivery and attempts in a slot, as new objects. */
  read(slot: number): { delivery: DeliveryRecord; attempts: AttemptRecord[] } {
    const bytes = this.#chunks[this.#chunk[slot]!]!.bytes;
    const start = this.#offset[slot]!;
    const bodyStart = start + this.#metaBytes[slot]!;
    const [id, event, attempts, next, lease, lastStatusCode, lastError, updatedAt, log] = JSON.parse(
      bytes.toString('utf8', start, bodyStart),
    );
    const webhookId = this.webhookId(slot);
    const delivery: DeliveryRecord = {
      id,
      webhookId,
      siteId: this.siteId(slot),
      event,
      body: bytes.toString('utf8', bodyStart, bodyStart + this.#bodyBytes[slot]!),
      status: this.status(slot),
      attempts,
      nextAttemptAt: date(next),
      leaseExpiresAt: date(lease),
      lastStatusCode,
      lastError,
      createdAt: new Date(this.#createdAt[slot]!),
      updatedAt: new Date(updatedAt),
    };
    const records = (log as unknown[][]).map(
      ([attempt, startedAt, durationMs, statusCode, errorCode, responseSnippet, ok]): AttemptRecord => ({
        deliveryId: id,
        webhookId,
        attempt: attempt as number,
        startedAt: new Date(startedAt as number),
        durationMs: durationMs as number,
        statusCode: statusCode as AttemptRecord['statusCode'],
        errorCode: errorCode as AttemptRecord['errorCode'],
        responseSnippet: responseSnippet as AttemptRecord['responseSnippet'],
        ok: ok as boolean,
      }),
    );
    return { delivery, attempts: records };
  }

  createdAt(slot: number): number {
    return this.#createdAt[slot]!;
  }

  status(slot: number): DeliveryStatus {
    return DELIVERY_STATUSES[this.#status[slot]!]!;
  }

  siteId(slot: number): string {
    return this.#sites.name(this.#site[slot]!);
  }

  webhookId(slot: number): string {
    return this.#webhooks.name(this.#webhook[slot]!);
  }

  /** Frees a slot; a chunk whose last record goes is released (unless it is still being filled). */
  delete(slot: number): void {
    const chunkIndex = this.#chunk[slot]!;
    const chunk = this.#chunks[chunkIndex]!;
    chunk.records--;
    if (chunk.records === 0 && chunkIndex !== this.#current) {
      this.#chunks[chunkIndex] = null;
      this.#freeChunks.push(chunkIndex);
    }
    this.#sites.release(this.#site[slot]!);
    this.#webhooks.release(this.#webhook[slot]!);
    this.#nextFree[slot] = this.#firstFree;
    this.#firstFree = slot;
    this.#size--;
  }

  /** Room for `bytes` bytes: [chunk, offset]. */
  #reserve(bytes: number): [number, number] {
    if (bytes > CHUNK_BYTES / 2) return [this.#newChunk(bytes), 0];
    if (this.#cursor + bytes > CHUNK_BYTES) {
      const previous = this.#current;
      this.#current = this.#newChunk(CHUNK_BYTES);
      this.#cursor = 0;
      // The chunk just left was kept only because it was being filled.
      if (previous !== -1 && this.#chunks[previous]!.records === 0) {
        this.#chunks[previous] = null;
        this.#freeChunks.push(previous);
      }
    }
    const offset = this.#cursor;
    this.#cursor += bytes;
    return [this.#current, offset];
  }

  #newChunk(bytes: number): number {
    // allocUnsafeSlow: its own memory, never a slice of Node's shared pool; every byte used is written.
    const chunk = { bytes: Buffer.allocUnsafeSlow(bytes), records: 0 };
    const reused = this.#freeChunks.pop();
    if (reused !== undefined) {
      this.#chunks[reused] = chunk;
      return reused;
    }
    this.#chunks.push(chunk);
    return this.#chunks.length - 1;
  }

  #takeSlot(): number {
    if (this.#firstFree !== -1) {
      const slot = this.#firstFree;
      this.#firstFree = this.#nextFree[slot]!;
      return slot;
    }
    if (this.#slotsUsed === this.#createdAt.length) this.#grow(this.#slotsUsed * 2);
    return this.#slotsUsed++;
  }

  #grow(slots: number): void {
    this.#createdAt = grown(this.#createdAt, new Float64Array(slots));
    this.#status = grown(this.#status, new Uint8Array(slots));
    this.#site = grown(this.#site, new Int32Array(slots));
    this.#webhook = grown(this.#webhook, new Int32Array(slots));
    this.#chunk = grown(this.#chunk, new Int32Array(slots));
    this.#offset = grown(this.#offset, new Int32Array(slots));
    this.#metaBytes = grown(this.#metaBytes, new Int32Array(slots));
    this.#bodyBytes = grown(this.#bodyBytes, new Int32Array(slots));
    this.#nextFree = grown(this.#nextFree, new Int32Array(slots));
  }
}

/** Names (site or webhook ids) as small numbers for a column; a name is dropped with its last record. */
class NameTable {
  readonly #names: (string | null)[] = [];
  readonly #index = new Map<string, number>();
  readonly #records: number[] = [];
  readonly #free: number[] = [];

  intern(name: string): number {
    let index = this.#index.get(name);
    if (index === undefined) {
      index = this.#free.pop() ?? this.#names.length;
      this.#names[index] = name;
      this.#records[index] = 0;
      this.#index.set(name, index);
    }
    this.#records[index]!++;
    return index;
  }

  name(index: number): string {
    return this.#names[index]!;
  }

  release(index: number): void {
    if (--this.#records[index]! > 0) return;
    this.#index.delete(this.#names[index]!);
    this.#names[index] = null;
    this.#free.push(index);
  }
}

/**
 * Writes `text` as UTF-8 (`bytes` long) at `offset`. A text whose UTF-8 is as long as the text is ASCII,
 * which Node copies byte for byte as latin1 instead of encoding it (in a CPU profile of
 * `bench/dispatch.mjs`, 274 ms instead of 511 ms for the same writes).
 */
function writeText(target: Buffer, text: string, offset: number, bytes: number): void {
  target.write(text, offset, bytes, bytes === text.length ? 'latin1' : 'utf8');
}

function grown<T extends Float64Array | Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}

const time = (value: Date | null): number | null => (value === null ? null : value.getTime());
const date = (value: number | null): Date | null => (value === null ? null : new Date(value));
