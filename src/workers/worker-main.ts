/** The program node:cluster runs in each worker of `porthole serve` with `workers: N` (see worker.ts). */
import { runWorker } from './worker.js';

runWorker();
