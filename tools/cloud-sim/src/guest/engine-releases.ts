import { KERNEL_RELEASE } from '../shell/ubuntu-image.ts';

/** One Docker Engine release as the emulated dockerd reports it (`/version`, `docker version`). */
export interface EngineRelease {
  readonly version: string;
  readonly apiVersion: string;
  readonly minApiVersion: string;
  readonly gitCommit: string;
  readonly goVersion: string;
  readonly containerdVersion: string;
  readonly buildTime: string;
  /** The docker-ce package version (`apt-get` prints it). */
  readonly packageVersion: string;
  /** The kernel `/version` reports: the image's `uname -r`. */
  readonly kernelVersion: string;
}

/** What the Docker apt repository (and so the install script) installs on a fresh machine. */
export const INITIAL_ENGINE: EngineRelease = {
  version: '27.3.1',
  apiVersion: '1.47',
  minApiVersion: '1.24',
  gitCommit: '41ca978',
  goVersion: 'go1.22.7',
  containerdVersion: '1.7.22',
  buildTime: '2024-09-20T11:41:11.000000000+00:00',
  packageVersion: '5:27.3.1-1~ubuntu.24.04~noble',
  kernelVersion: KERNEL_RELEASE,
};

/**
 * The next release, published in the simulated Docker apt repository once a machine has installed
 * {@link INITIAL_ENGINE}: so every provisioned machine has an upgrade waiting (`machine upgrade`),
 * as a machine created a while ago has on a real cloud.
 */
export const NEXT_ENGINE: EngineRelease = {
  version: '28.0.1',
  apiVersion: '1.48',
  minApiVersion: '1.24',
  gitCommit: 'bbd0a17',
  goVersion: 'go1.23.6',
  containerdVersion: '1.7.25',
  buildTime: '2025-02-26T10:41:16.000000000+00:00',
  packageVersion: '5:28.0.1-1~ubuntu.24.04~noble',
  kernelVersion: KERNEL_RELEASE,
};
