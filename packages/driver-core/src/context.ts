import type { DriverContext, JsonValue, MachineDataStore, ProgressEvent } from './driver.ts';
import { MemoryJournal } from './journal.ts';

/** Machine data kept in memory; `persist` (optional) is called with the whole object after each write. */
export class MemoryDataStore implements MachineDataStore {
  #data: Record<string, JsonValue>;
  readonly #persist: (data: Readonly<Record<string, JsonValue>>) => Promise<void>;

  constructor(
    initial: Readonly<Record<string, JsonValue>> = {},
    persist: (data: Readonly<Record<string, JsonValue>>) => Promise<void> = async () => {},
  ) {
    this.#data = { ...initial };
    this.#persist = persist;
  }

  read(): Readonly<Record<string, JsonValue>> {
    return this.#data;
  }

  async write(patch: Readonly<Record<string, JsonValue>>): Promise<void> {
    this.#data = { ...this.#data, ...patch };
    await this.#persist(this.#data);
  }
}

/** A context with in-memory journal and data, for library users and tests. */
export function createMemoryContext(
  machineName: string,
  machineDir: string,
  onProgress?: (event: ProgressEvent) => void,
): DriverContext & { journal: MemoryJournal; data: MemoryDataStore } {
  return {
    machineName,
    machineDir,
    journal: new MemoryJournal(),
    data: new MemoryDataStore(),
    ...(onProgress === undefined ? {} : { onProgress }),
  };
}
