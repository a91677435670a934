/**
 * Hands out one loopback address per instance from 127.1.0.0/16 (127.1.0.2, 127.1.0.3, …) as its
 * public IPv4, and a matching fake private address in 10.0.0.0/8. Linux routes all of 127.0.0.0/8
 * to `lo`, so each instance's SSH server can bind its own address on the shared SSH port without
 * any host setup. Released addresses are reused (lowest first) so long runs do not run out.
 */
export class LoopbackIpAllocator {
  readonly #free: number[] = [];
  #nextOffset = 2;
  readonly #inUse = new Set<number>();

  /** Allocates the next address pair; throws when all 65 533 are in use. */
  allocate(): { publicIp: string; privateIp: string } {
    let offset = this.#free.length > 0 ? this.#takeLowestFree() : this.#nextOffset++;
    if (offset > 0xfffe) {
      this.#nextOffset--;
      offset = -1;
    }
    if (offset < 0) throw new Error('cloud-sim: no loopback addresses left in 127.1.0.0/16');
    this.#inUse.add(offset);
    const high = offset >> 8;
    const low = offset & 0xff;
    return { publicIp: `127.1.${high}.${low}`, privateIp: `10.1.${high}.${low}` };
  }

  /** Returns a public address (from {@link allocate}) to the pool; unknown addresses are ignored. */
  release(publicIp: string): void {
    const match = /^127\.1\.(\d+)\.(\d+)$/.exec(publicIp);
    if (match === null) return;
    const offset = (Number(match[1]) << 8) | Number(match[2]);
    if (!this.#inUse.delete(offset)) return;
    this.#free.push(offset);
  }

  /** Addresses currently allocated. */
  get inUse(): number {
    return this.#inUse.size;
  }

  #takeLowestFree(): number {
    let lowestIndex = 0;
    for (let index = 1; index < this.#free.length; index++) {
      if ((this.#free[index] ?? 0) < (this.#free[lowestIndex] ?? 0)) lowestIndex = index;
    }
    const [offset] = this.#free.splice(lowestIndex, 1);
    return offset ?? -1;
  }
}
