import { md5Fingerprint, parsePublicKeyLine } from '@machine/driver-core/keys';
import type { SimRequest, SimResponse } from '../../core/provider-front-end.ts';
import type { SimResource } from '../../core/store.ts';
import { DIGITALOCEAN, type DigitalOceanBackend, jsonBody } from './digitalocean-backend.ts';
import { notFound, unprocessable } from './digitalocean-errors.ts';
import { keyJson, paginate } from './digitalocean-json.ts';

const KIND = 'ssh_key';

/** POST /v2/account/keys `{name, public_key}` → 201 `{ssh_key}` with its MD5 fingerprint. */
export function createKey(backend: DigitalOceanBackend, request: SimRequest): SimResponse {
  const body = jsonBody(request);
  if (typeof body.name !== 'string' || body.name.trim() === '') throw unprocessable("Name can't be blank");
  if (typeof body.public_key !== 'string') throw unprocessable("Public key can't be blank");
  let blob: Buffer;
  let type: string;
  try {
    ({ blob, type } = parsePublicKeyLine(body.public_key));
  } catch {
    throw unprocessable("Key invalid, key should be of the form 'type key [comment]'");
  }
  const fingerprint = md5Fingerprint(blob);
  if (findKey(backend, fingerprint) !== undefined) throw unprocessable('SSH Key is already in use on your account');
  const resource = backend.context.store.putResource({
    provider: DIGITALOCEAN,
    kind: KIND,
    id: String(backend.context.ids.next('digitalocean:ssh_key', 41_000_001)),
    name: body.name,
    createdAt: new Date(),
    attributes: { fingerprint, publicKey: body.public_key.trim(), type },
  });
  return { status: 201, body: { ssh_key: keyJson(resource) } };
}

/** GET /v2/account/keys. */
export function listKeys(backend: DigitalOceanBackend, request: SimRequest): SimResponse {
  // A new key shows in the listing only after the listing lag (by id or fingerprint it reads at once).
  const keys = backend.context.store
    .listResources(DIGITALOCEAN, KIND)
    .filter((key) => backend.listed(key))
    .map(keyJson);
  return { status: 200, body: paginate(backend, request, 'ssh_keys', keys) };
}

/** GET /v2/account/keys/{id or fingerprint}. */
export function getKey(backend: DigitalOceanBackend, identifier: string): SimResponse {
  return { status: 200, body: { ssh_key: keyJson(requireKey(backend, identifier)) } };
}

/** PUT /v2/account/keys/{id or fingerprint} `{name}`. */
export function renameKey(backend: DigitalOceanBackend, identifier: string, request: SimRequest): SimResponse {
  const key = requireKey(backend, identifier);
  const { name } = jsonBody(request);
  if (typeof name === 'string' && name.trim() !== '') key.name = name;
  return { status: 200, body: { ssh_key: keyJson(key) } };
}

/** DELETE /v2/account/keys/{id or fingerprint} → 204. */
export function deleteKey(backend: DigitalOceanBackend, identifier: string): SimResponse {
  const key = requireKey(backend, identifier);
  backend.context.store.deleteResource(DIGITALOCEAN, KIND, key.id);
  return { status: 204 };
}

/**
 * Public key lines for a droplet create's `ssh_keys` (ids or fingerprints); 422 naming the first
 * unknown one.
 */
export function publicKeysFor(backend: DigitalOceanBackend, identifiers: readonly unknown[]): string[] {
  return identifiers.map((identifier) => {
    const key = typeof identifier === 'string' || typeof identifier === 'number' ? findKey(backend, String(identifier)) : undefined;
    if (key === undefined) throw unprocessable(`ssh_keys: the key ${JSON.stringify(identifier)} does not exist on your account`);
    return key.attributes.publicKey as string;
  });
}

function findKey(backend: DigitalOceanBackend, identifier: string): SimResource | undefined {
  const decoded = decodeURIComponent(identifier);
  const byId = backend.context.store.getResource(DIGITALOCEAN, KIND, decoded);
  if (byId !== undefined) return byId;
  return backend.context.store.listResources(DIGITALOCEAN, KIND).find((key) => key.attributes.fingerprint === decoded);
}

function requireKey(backend: DigitalOceanBackend, identifier: string): SimResource {
  const key = findKey(backend, identifier);
  if (key === undefined) throw notFound();
  return key;
}
