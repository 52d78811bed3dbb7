import { TokenBuckets } from '../token-bucket.js';
import { MemorySocketCounts } from './shared-limits.js';
import {
  contractBurst,
  contractRate,
  rateBucketsContract,
  socketCountsContract,
} from './shared-limits.test-suite.js';

rateBucketsContract('memory', () => {
  const buckets = new TokenBuckets({ rate: contractRate, burst: contractBurst });
  return Promise.resolve({ a: buckets, b: buckets, close: () => Promise.resolve() });
});

socketCountsContract('memory', () => {
  const counts = new MemorySocketCounts();
  return Promise.resolve({ a: counts, b: counts, close: () => Promise.resolve() });
});
