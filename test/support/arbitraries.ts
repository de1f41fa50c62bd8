import fc from 'fast-check';

/** Whatever fast-check can build: boxed values, null prototypes, sparse and typed arrays, BigInt, Map... */
export const anything = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withNullPrototype: true,
  withObjectString: true,
  withSet: true,
  withSparseArray: true,
  withTypedArray: true,
});
