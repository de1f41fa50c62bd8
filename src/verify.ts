// Entry point `@zta/webhooks/verify`: receiver-side helpers. Depends on node:crypto only.
export * from './verify/index.js';
