interface Entry {
  at: number;
  id: string;
}

/** Stale entries a queue may hold beyond its live ones before it sweeps them out. */
const SWEEP_SLACK = 1024;

/**
 * A binary min-heap of (time, id). Entries are never removed in place: a reader checks whether an entry it
 * pops still matches the record it names and drops stale ones, which keeps every operation O(log n).
 *
 * Stale entries that are not due for a long time (a lease that ended early: its expiry is a minute away)
 * would pile up until then, so once the heap holds twice as many entries as were live at the last sweep
 * (plus `SWEEP_SLACK`), a push first sweeps: it keeps the entries `isLive` accepts and rebuilds the heap.
 * Each sweep follows at least as many pushes as it keeps entries, so pushes stay O(log n) amortised and
 * the heap stays within about twice its live entries.
 */
export class DueQueue {
  readonly #heap: Entry[] = [];
  readonly #isLive: (at: number, id: string) => boolean;
  #liveAtSweep = 0;

  /**
   * `isLive`: whether an entry still describes its record. A sweep drops the others, so whatever makes a
   * record due again must push a new entry for it (the memory store does on every change).
   */
  constructor(isLive: (at: number, id: string) => boolean) {
    this.#isLive = isLive;
  }

  get size(): number {
    return this.#heap.length;
  }

  push(at: number, id: string): void {
    if (this.#heap.length >= 2 * this.#liveAtSweep + SWEEP_SLACK) this.#sweep();
    const heap = this.#heap;
    heap.push({ at, id });
    this.#siftUp(heap.length - 1);
  }

  peek(): Entry | undefined {
    return this.#heap[0];
  }

  pop(): Entry | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    heap[0] = last;
    this.#siftDown(0);
    return top;
  }

  /** Keeps the live entries in place and restores heap order bottom-up: O(n), no new array. */
  #sweep(): void {
    const heap = this.#heap;
    let kept = 0;
    for (const entry of heap) if (this.#isLive(entry.at, entry.id)) heap[kept++] = entry;
    heap.length = kept;
    for (let index = (kept >> 1) - 1; index >= 0; index--) this.#siftDown(index);
    this.#liveAtSweep = kept;
  }

  #siftUp(start: number): void {
    const heap = this.#heap;
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent]!.at <= heap[index]!.at) break;
      [heap[parent], heap[index]] = [heap[index]!, heap[parent]!];
      index = parent;
    }
  }

  #siftDown(start: number): void {
    const heap = this.#heap;
    let index = start;
    for (;;) {
      const left = index * 2 + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && heap[left]!.at < heap[smallest]!.at) smallest = left;
      if (right < heap.length && heap[right]!.at < heap[smallest]!.at) smallest = right;
      if (smallest === index) break;
      [heap[smallest], heap[index]] = [heap[index]!, heap[smallest]!];
      index = smallest;
    }
  }
}
