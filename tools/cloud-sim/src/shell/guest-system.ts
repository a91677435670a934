/**
 * What the emulated shell asks of the machine behind it for the commands that are not plain file
 * operations: cloud-init's state, systemd units, the package manager, the network (downloads) and
 * the Docker daemon. The simulator's guest (src/guest/guest.ts) implements it; a shell without one
 * behaves like a container without systemd or network.
 */

import type { EngineRelease } from '../guest/engine-releases.ts';

/** cloud-init's overall state, as `cloud-init status` reports it. */
export type CloudInitState = 'not started' | 'running' | 'done' | 'error';

/** Output and exit status of a system operation. */
export interface SystemResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The machine services the emulated shell's system commands use. */
export interface GuestSystem {
  /** cloud-init's current state, its errors (`cloud-init status --long`) and when it last changed. */
  cloudInit(): { state: CloudInitState; errors: readonly string[]; lastUpdate: Date; datasource: string };
  /** Resolves once cloud-init has finished (done or error). */
  waitForCloudInit(): Promise<void>;
  /** `systemctl VERB [UNIT…]`. */
  systemctl(verb: string, units: readonly string[], options: { now: boolean }): Promise<SystemResult>;
  /** Journal lines of a unit (`journalctl -u UNIT`). */
  journal(unit: string): readonly string[];
  /** A download over the (simulated) network: the bytes, or curl's error code and message. */
  download(url: string): { data: Buffer } | { code: number; message: string };
  /** `apt-get install PACKAGE…` (`quiet`: no progress lines; `onlyUpgrade`: `--only-upgrade`/`apt-get upgrade`, installed packages only). */
  installPackages(names: readonly string[], quiet: boolean, options?: { onlyUpgrade?: boolean }): SystemResult;
  /** The daemon answering `docker version`/`docker info` when dockerd runs, its release, and the installed one. */
  docker(): { running: boolean; info?: Record<string, unknown>; server?: EngineRelease; installed?: EngineRelease; containers?: readonly ContainerRow[] };
}

/** One container as `docker ps` lists it. */
export interface ContainerRow {
  id: string;
  image: string;
  command: string;
  created: Date;
  status: string;
  name: string;
  running: boolean;
}
