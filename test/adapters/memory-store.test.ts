import { describe } from 'vitest';
import { memoryStore } from '../../src/memory.js';
import { testStore } from '../../src/testing.js';

describe('memoryStore conformance', () => {
  testStore({ create: () => memoryStore() });
});
