export { type MemoryStore, memoryStore } from './adapters/memory/store.js';
