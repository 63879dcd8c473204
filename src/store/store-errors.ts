/**
 * What a shared store's write can meet (src/store/redis-store.ts), in a
 * module of its own: the registry checks for them without loading a Redis
 * client.
 */

/** Another node changed the registry since this node last read it: read again, check again, retry. */
export class StoreConflict extends Error {
  constructor(readonly seen: number) {
    super(`the registry changed on another node (now at version ${seen})`);
  }
}

/** Redis lost the registry (a restart without persistence) or another one is there now. */
export class StoreEpochChanged extends Error {
  constructor(readonly epoch: string) {
    super('the registry in Redis was reset since this node read it');
  }
}
