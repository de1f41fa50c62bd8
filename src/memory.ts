export { memoryStore } from './adapters/memory/store.js';
