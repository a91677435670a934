import { createHash } from 'node:crypto';

/**
 * The registry the emulated dockerd pulls from: a few small public images, by reference. Nothing
 * is downloaded: an image is its config (what `docker run` starts by default) and made-up layer
 * sizes for the pull progress. Shell images run their command in the emulated shell over a fresh
 * in-memory filesystem; `hello-world`'s `/hello` prints Docker's greeting.
 */

/** What a container of the image runs. */
export type ImageProgram = 'hello' | 'shell';

/** One image of the simulated registry. */
export interface ImageDefinition {
  /** `library/busybox`. */
  readonly repository: string;
  readonly tags: readonly string[];
  readonly program: ImageProgram;
  readonly cmd: readonly string[];
  readonly entrypoint: readonly string[] | null;
  readonly env: readonly string[];
  /** Layer sizes in bytes (each gets a stable made-up digest). */
  readonly layers: readonly number[];
  readonly created: string;
  /** The prompt of its shell at a terminal (`docker run -it`); HOST is the container's hostname. */
  readonly prompt: string;
  /** Files of its root filesystem beyond the usual folders. */
  readonly files: Readonly<Record<string, string>>;
}

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const ALPINE_RELEASE = 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.22.1\nPRETTY_NAME="Alpine Linux v3.22"\nHOME_URL="https://alpinelinux.org/"\n';
const UBUNTU_RELEASE = 'PRETTY_NAME="Ubuntu 24.04.3 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION="24.04.3 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\n';

export const REGISTRY_IMAGES: readonly ImageDefinition[] = [
  { repository: 'library/hello-world', tags: ['latest', 'linux'], program: 'hello', cmd: ['/hello'], entrypoint: null, env: [PATH_ENV], layers: [2_459], created: '2025-08-13T22:18:05Z', prompt: '', files: {} },
  { repository: 'library/busybox', tags: ['latest', '1.37', '1.37.0', 'stable'], program: 'shell', cmd: ['sh'], entrypoint: null, env: [PATH_ENV], layers: [2_156_518], created: '2024-09-26T21:31:42Z', prompt: '/ # ', files: {} },
  { repository: 'library/alpine', tags: ['latest', '3.22', '3.21'], program: 'shell', cmd: ['/bin/sh'], entrypoint: null, env: [PATH_ENV], layers: [3_799_433], created: '2025-07-15T11:01:16Z', prompt: '/ # ', files: { '/etc/os-release': ALPINE_RELEASE, '/etc/alpine-release': '3.22.1\n' } },
  // hello-world's greeting suggests `docker run -it ubuntu bash`.
  { repository: 'library/ubuntu', tags: ['latest', '24.04', 'noble', '22.04', 'jammy'], program: 'shell', cmd: ['/bin/bash'], entrypoint: null, env: [PATH_ENV], layers: [29_723_147], created: '2025-08-01T17:13:09Z', prompt: 'root@HOST:/# ', files: { '/etc/os-release': UBUNTU_RELEASE } },
];

/** A parsed image reference: `busybox` → `docker.io/library/busybox:latest`. */
export interface ImageReference {
  /** `docker.io`. */
  domain: string;
  /** `library/busybox`. */
  path: string;
  tag: string;
  /** What users write: `busybox:latest`. */
  familiar: string;
}

/** Parses `busybox`, `busybox:1.37`, `library/busybox`, `docker.io/library/busybox:latest` (a digest is kept as the tag). */
export function parseImageReference(reference: string, tag?: string): ImageReference | undefined {
  let rest = reference.trim();
  if (rest === '' || /[A-Z\s]/.test(rest)) return undefined;
  let domain = 'docker.io';
  const firstSlash = rest.indexOf('/');
  if (firstSlash !== -1) {
    const first = rest.slice(0, firstSlash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      domain = first === 'index.docker.io' ? 'docker.io' : first;
      rest = rest.slice(firstSlash + 1);
    }
  }
  let parsedTag = tag === undefined || tag === '' ? undefined : tag;
  const at = rest.indexOf('@');
  if (at !== -1) {
    parsedTag ??= rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon !== -1 && !rest.slice(colon).includes('/')) {
    parsedTag ??= rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(rest)) return undefined;
  const path = domain === 'docker.io' && !rest.includes('/') ? `library/${rest}` : rest;
  const finalTag = parsedTag ?? 'latest';
  const short = domain === 'docker.io' ? path.replace(/^library\//, '') : `${domain}/${path}`;
  return { domain, path, tag: finalTag, familiar: `${short}:${finalTag}` };
}

/** The registry's image for a reference, or why a pull fails (the registry's words). */
export function lookUpImage(reference: ImageReference): { image: ImageDefinition } | { error: string; status: number } {
  const image = reference.domain === 'docker.io' ? REGISTRY_IMAGES.find((candidate) => candidate.repository === reference.path) : undefined;
  const name = reference.familiar.slice(0, reference.familiar.lastIndexOf(':'));
  if (image === undefined) {
    if (reference.domain !== 'docker.io') {
      return { status: 500, error: `Get "https://${reference.domain}/v2/": dial tcp: lookup ${reference.domain.replace(/:\d+$/, '')}: no such host` };
    }
    return { status: 404, error: `pull access denied for ${name}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied` };
  }
  if (!image.tags.includes(reference.tag)) return { status: 404, error: `manifest for ${name}:${reference.tag} not found: manifest unknown: manifest unknown` };
  return { image };
}

/** `sha256:…` of a string (stable made-up ids and digests). */
export function sha256Of(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** The image's id (its config digest). */
export function imageId(image: ImageDefinition): string {
  return sha256Of(`config ${image.repository}`);
}

/** The manifest digest a pull reports. */
export function manifestDigest(image: ImageDefinition): string {
  return sha256Of(`manifest ${image.repository}`);
}

/** Short (12 hex digits) ids of the image's layers, as the pull progress shows them. */
export function layerIds(image: ImageDefinition): string[] {
  return image.layers.map((_, index) => sha256Of(`layer ${image.repository} ${index}`).slice(7, 19));
}

/** What `/hello` in hello-world prints (its text, as the image prints it). */
export const HELLO_FROM_DOCKER = `
Hello from Docker!
This message shows that your installation appears to be working correctly.

To generate this message, Docker took the following steps:
 1. The Docker client contacted the Docker daemon.
 2. The Docker daemon pulled the "hello-world" image from the Docker Hub.
    (amd64)
 3. The Docker daemon created a new container from that image which runs the
    executable that produces the output you are currently reading.
 4. The Docker daemon streamed that output to the Docker client, which sent it
    to your terminal.

To try something more ambitious, you can run an Ubuntu container with:
 $ docker run -it ubuntu bash

Share images, automate workflows, and more with a free Docker ID:
 https://hub.docker.com/

For more examples and ideas, visit:
 https://docs.docker.com/get-started/

`;
