export { type StoreSuiteOptions, testStore } from './testing/store-suite.js';
