import type { SimRequest, SimResponse } from '../../core/provider-front-end.ts';
import { consume } from '../../core/realism.ts';
import type { SimInstance } from '../../core/store.ts';
import {
  authorizedKeysFrom,
  GOOGLE,
  type GoogleBackend,
  type GoogleInstanceAttributes,
  jsonBody,
  MACHINE_TYPES,
  OperationFailure,
} from './google-backend.ts';
import { alreadyExists, invalidField } from './google-errors.ts';
import { stockoutMessage } from './google-realism.ts';

const statusByState: Readonly<Record<SimInstance['state'], string>> = {
  pending: 'PROVISIONING',
  running: 'RUNNING',
  stopping: 'STOPPING',
  stopped: 'TERMINATED',
  terminated: 'TERMINATED',
};

function attributesOf(instance: SimInstance): GoogleInstanceAttributes {
  return instance.attributes as unknown as GoogleInstanceAttributes;
}

/** The Compute v1 `Instance` JSON of a simulated instance. */
export function instanceJson(backend: GoogleBackend, instance: SimInstance): Record<string, unknown> {
  const { project, zone, resource, metadataFingerprint, tagsFingerprint } = attributesOf(instance);
  const nics = (resource.networkInterfaces as Record<string, unknown>[] | undefined) ?? [{}];
  const hasAddress = instance.state === 'running' || instance.state === 'pending' || instance.state === 'stopping';
  const rare = instance.attributes.rareStatus;
  const status =
    instance.state === 'running' && typeof rare === 'string'
      ? rare
      : instance.state === 'pending' && Date.now() - instance.stateChangedAt.getTime() > 20
        ? 'STAGING'
        : statusByState[instance.state];
  return {
    kind: 'compute#instance',
    id: instance.id,
    creationTimestamp: instance.createdAt.toISOString(),
    name: instance.name,
    description: resource.description ?? '',
    tags: { items: [...instance.tags], fingerprint: tagsFingerprint },
    machineType: backend.link(`projects/${project}/zones/${zone}/machineTypes/${String(resource.machineType ?? '').split('/').pop()}`),
    status,
    ...(instance.attributes.statusMessage === undefined ? {} : { statusMessage: instance.attributes.statusMessage }),
    zone: backend.link(`projects/${project}/zones/${zone}`),
    networkInterfaces: nics.map((nic, index) => ({
      kind: 'compute#networkInterface',
      name: `nic${index}`,
      network: backend.link(networkPath(project, nic.network)),
      ...(nic.subnetwork === undefined ? {} : { subnetwork: backend.link(String(nic.subnetwork).replace(/^https:\/\/[^/]+\/compute\/v1\//, '')) }),
      networkIP: instance.privateIp,
      accessConfigs: ((nic.accessConfigs as Record<string, unknown>[] | undefined) ?? []).map((config) => ({
        kind: 'compute#accessConfig',
        type: config.type ?? 'ONE_TO_ONE_NAT',
        name: config.name ?? 'External NAT',
        networkTier: 'PREMIUM',
        ...(hasAddress && index === 0 ? { natIP: instance.publicIp } : {}),
      })),
    })),
    disks: ((resource.disks as Record<string, unknown>[] | undefined) ?? []).map((disk, index) => ({
      kind: 'compute#attachedDisk',
      type: 'PERSISTENT',
      mode: 'READ_WRITE',
      boot: index === 0,
      autoDelete: disk.autoDelete === true,
      deviceName: index === 0 ? 'persistent-disk-0' : `persistent-disk-${index}`,
      source: backend.link(`projects/${project}/zones/${zone}/disks/${index === 0 ? instance.name : `${instance.name}-${index}`}`),
      diskSizeGb: String((disk.initializeParams as Record<string, unknown> | undefined)?.diskSizeGb ?? '10'),
    })),
    metadata: { kind: 'compute#metadata', fingerprint: metadataFingerprint, items: (resource.metadata as { items?: unknown[] } | undefined)?.items ?? [] },
    serviceAccounts: resource.serviceAccounts ?? [],
    selfLink: backend.link(`projects/${project}/zones/${zone}/instances/${instance.name}`),
    scheduling: resource.scheduling ?? { automaticRestart: true, onHostMaintenance: 'MIGRATE', preemptible: false },
    labels: resource.labels ?? {},
    labelFingerprint: '42WmSpB8rSM=',
    ...(instance.state === 'stopped' ? { lastStopTimestamp: instance.stateChangedAt.toISOString() } : {}),
  };
}

function networkPath(project: string, network: unknown): string {
  const text = typeof network === 'string' && network !== '' ? network : 'global/networks/default';
  const relative = text.replace(/^https:\/\/[^/]+\/compute\/v1\//, '');
  if (relative.startsWith('projects/')) return relative;
  if (relative.startsWith('global/')) return `projects/${project}/${relative}`;
  return `projects/${project}/global/networks/${relative}`;
}

/** GET …/zones/{zone}/instances/{name}. */
export function getInstance(backend: GoogleBackend, project: string, zone: string, name: string): SimResponse {
  return { status: 200, body: instanceJson(backend, backend.instance(project, zone, name)) };
}

/** GET …/zones/{zone}/instances (filter `name = "x"` supported). */
export function listInstances(backend: GoogleBackend, request: SimRequest, project: string, zone: string): SimResponse {
  const filter = request.url.searchParams.get('filter');
  const name = filter === null ? undefined : /name\s*=\s*"?([a-z0-9-]+)"?/.exec(filter)?.[1];
  const items = backend.instances(project, zone).filter((instance) => name === undefined || instance.name === name);
  return {
    status: 200,
    body: {
      kind: 'compute#instanceList',
      id: `projects/${project}/zones/${zone}/instances`,
      items: items.map((instance) => instanceJson(backend, instance)),
      selfLink: backend.link(`projects/${project}/zones/${zone}/instances`),
    },
  };
}

/** GET …/aggregated/instances: instances grouped by `zones/<zone>`. */
export function aggregatedInstances(backend: GoogleBackend, project: string): SimResponse {
  const items: Record<string, unknown> = {};
  for (const instance of backend.instances(project)) {
    const key = `zones/${attributesOf(instance).zone}`;
    const scoped = (items[key] as { instances: unknown[] } | undefined) ?? { instances: [] };
    scoped.instances.push(instanceJson(backend, instance));
    items[key] = scoped;
  }
  return { status: 200, body: { kind: 'compute#instanceAggregatedList', id: `projects/${project}/aggregated/instances`, items } };
}

/** POST …/zones/{zone}/instances: validates like Compute Engine, then boots through the lifecycle. */
export function insertInstance(backend: GoogleBackend, request: SimRequest, project: string, zone: string): SimResponse {
  backend.checkZone(zone);
  const body = jsonBody(request);
  const name = backend.checkName('resource.name', body.name);
  const machineType = String(body.machineType ?? '');
  const typeMatch = /^(?:.*\/)?zones\/([a-z0-9-]+)\/machineTypes\/([a-z0-9-]+)$/.exec(machineType) ?? /^()([a-z0-9-]+)$/.exec(machineType);
  if (typeMatch === null || (typeMatch[1] !== '' && typeMatch[1] !== zone) || !MACHINE_TYPES.includes(typeMatch[2] ?? '')) {
    throw invalidField('resource.machineType', machineType, 'Machine type with name does not exist in zone.');
  }
  const disks = (body.disks as Record<string, unknown>[] | undefined) ?? [];
  const boot = disks.find((disk) => disk.boot === true) ?? disks[0];
  const init = boot?.initializeParams as Record<string, unknown> | undefined;
  if (init === undefined || typeof init.sourceImage !== 'string') throw invalidField('resource.disks[0].initializeParams.sourceImage', '', 'A boot disk with a source image is required.');
  if (!/^(?:https:\/\/[^/]+\/compute\/v1\/)?projects\/[a-z0-9.:-]+\/global\/images\/(?:family\/)?[a-z0-9-]+$/.test(init.sourceImage)) {
    throw invalidField('resource.disks[0].initializeParams.sourceImage', init.sourceImage, 'The referenced image resource cannot be found.');
  }
  const size = Number(init.diskSizeGb ?? 10);
  if (!Number.isInteger(size) || size < 10) throw invalidField('resource.disks[0].initializeParams.diskSizeGb', init.diskSizeGb, 'Requested disk size cannot be smaller than the image size (10 GB).');
  if (init.diskType !== undefined && !/(?:^|\/)zones\/[a-z0-9-]+\/diskTypes\/[a-z0-9-]+$/.test(String(init.diskType))) {
    throw invalidField('resource.disks[0].initializeParams.diskType', init.diskType, 'Disk type does not exist.');
  }
  const tags = ((body.tags as { items?: unknown[] } | undefined)?.items ?? []).map((tag) => backend.checkName('resource.tags.items', tag));
  const scheduling = body.scheduling as Record<string, unknown> | undefined;
  if (scheduling?.preemptible === true && scheduling.provisioningModel === 'SPOT') {
    throw invalidField('resource.scheduling', 'SPOT', 'Preemptible and Spot cannot both be set.');
  }
  if (backend.instances(project, zone).some((instance) => instance.name === name)) throw alreadyExists(`projects/${project}/zones/${zone}/instances/${name}`);
  // A boot disk left by an earlier failed create (or one not auto-deleted) blocks the name too.
  if (backend.context.store.getResource(GOOGLE, 'disk', `${project}/${zone}/${name}`) !== undefined) throw alreadyExists(`projects/${project}/zones/${zone}/disks/${name}`);
  const knobs = backend.knobs;
  const stockout = (knobs.stockout?.operations ?? ['insert']).includes('insert') && consume(knobs.stockout, name);
  const landsTerminated = consume(knobs.landsTerminated, name);
  const rareStatus = consume(knobs.rareStatus, name) ? knobs.rareStatus?.status : undefined;
  const accessConfigs = ((body.networkInterfaces as { accessConfigs?: { natIP?: unknown }[] }[] | undefined) ?? [])[0]?.accessConfigs ?? [];
  const ephemeralIp = accessConfigs.length > 0 && accessConfigs.every((config) => config.natIP === undefined);

  const metadataItems = ((body.metadata as { items?: { key?: string; value?: string }[] } | undefined)?.items ?? []).map((item) => ({
    key: String(item.key ?? ''),
    value: String(item.value ?? ''),
  }));
  const userData = metadataItems.find((item) => item.key === 'user-data')?.value;
  const id = String(backend.context.ids.next('google:instance', 1_000_000_000_000));
  const link = backend.link(`projects/${project}/zones/${zone}/instances/${name}`);
  const overQuota = backend.instances(project).length >= backend.instanceLimit;
  const operation = backend.startOperation(request, project, `zones/${zone}`, 'insert', { link, id }, async () => {
    if (overQuota) {
      throw new OperationFailure('QUOTA_EXCEEDED', `Quota 'INSTANCES' exceeded.  Limit: ${backend.instanceLimit}.0 in region ${zone.replace(/-[a-z]$/, '')}.`, 403, 'FORBIDDEN');
    }
    if (stockout) {
      // Accepted, then fails at DONE; no instance is left behind.
      await new Promise((resolve) => setTimeout(resolve, backend.context.lifecycle.delays.pendingMs).unref());
      throw new OperationFailure('ZONE_RESOURCE_POOL_EXHAUSTED', stockoutMessage(project, zone), 503, 'SERVICE UNAVAILABLE');
    }
    const attributes: GoogleInstanceAttributes = {
      project,
      zone,
      resource: { ...body, metadata: { items: metadataItems } },
      metadataFingerprint: backend.context.ids.hex(16),
      tagsFingerprint: backend.context.ids.hex(16),
    };
    const { instance, running } = backend.context.lifecycle.launch({
      provider: GOOGLE,
      kind: 'instance',
      id,
      name,
      authorizedKeys: authorizedKeysFrom(metadataItems),
      tags,
      attributes: attributes as unknown as Record<string, unknown>,
      ...(userData === undefined ? {} : { userData }),
      // An ephemeral external IP is released on stop and a new one given on start; a reserved natIP stays.
      ...(backend.realism.realistic && knobs.ipChangesOnStart !== false && ephemeralIp ? { faults: ['ipChangesOnStart'] } : {}),
    });
    if (rareStatus !== undefined) instance.attributes.rareStatus = rareStatus;
    if (boot?.autoDelete !== true) {
      // A boot disk that is not auto-deleted outlives the instance: a leak unless deleted.
      backend.context.store.putResource({ provider: GOOGLE, kind: 'disk', id: `${project}/${zone}/${name}`, name, createdAt: new Date(), attributes: {} });
      attributes.bootDiskId = `${project}/${zone}/${name}`;
    }
    // The insert operation is DONE once the instance is up (it never finishes for `neverRuns`).
    const reached = await running;
    if (!reached && instance.state === 'terminated') {
      // Deleted while it was being created: the insert ends in a conflict (message: inference).
      throw new OperationFailure('CONFLICT', `The resource 'projects/${project}/zones/${zone}/instances/${name}' was deleted while it was being created.`, 409, 'CONFLICT');
    }
    if (!reached && instance.state !== 'running') throw new OperationFailure('RESOURCE_OPERATION_RATE_EXCEEDED', 'The instance did not start.', 503, 'SERVICE UNAVAILABLE');
    if (landsTerminated) {
      // A host error right after boot: the instance is TERMINATED with a status message, no call of yours.
      instance.attributes.statusMessage = knobs.landsTerminated?.statusMessage ?? 'Instance terminated by Compute Engine: the host encountered an error.';
      await backend.context.lifecycle.stop(instance, { force: true });
    }
  });
  return { status: 200, body: operation };
}

/** DELETE …/instances/{name}: terminates; an auto-delete boot disk goes with it. */
export function deleteInstance(backend: GoogleBackend, request: SimRequest, project: string, zone: string, name: string): SimResponse {
  const instance = backend.instance(project, zone, name);
  backend.assertReady(backend.link(`projects/${project}/zones/${zone}/instances/${name}`), 'delete');
  const operation = backend.startOperation(request, project, `zones/${zone}`, 'delete', { link: backend.link(`projects/${project}/zones/${zone}/instances/${name}`), id: instance.id }, async () => {
    await backend.context.lifecycle.terminate(instance);
  });
  return { status: 200, body: operation };
}

/** POST …/instances/{name}/{start|stop|reset}. `stop?noGracefulShutdown=true` powers off at once. */
export function instanceAction(backend: GoogleBackend, request: SimRequest, project: string, zone: string, name: string, action: 'start' | 'stop' | 'reset'): SimResponse {
  const instance = backend.instance(project, zone, name);
  const link = backend.link(`projects/${project}/zones/${zone}/instances/${name}`);
  backend.assertReady(link, action);
  const { lifecycle } = backend.context;
  const stockout = action === 'start' && backend.knobs.stockout?.operations?.includes('start') === true && consume(backend.knobs.stockout, name);
  const operation = backend.startOperation(request, project, `zones/${zone}`, action, { link, id: instance.id }, async () => {
    if (stockout) throw new OperationFailure('ZONE_RESOURCE_POOL_EXHAUSTED', stockoutMessage(project, zone), 503, 'SERVICE UNAVAILABLE'); // stays TERMINATED
    if (action === 'start') {
      delete instance.attributes.statusMessage;
      await lifecycle.start(instance);
    } else if (action === 'stop') {
      await lifecycle.stop(instance, { force: request.url.searchParams.get('noGracefulShutdown') === 'true' });
    } else {
      if (instance.state !== 'running') throw new OperationFailure('UNSUPPORTED_OPERATION', `Instance '${name}' is not running.`, 400, 'BAD REQUEST');
      await lifecycle.reboot(instance);
    }
  });
  return { status: 200, body: operation };
}

/** POST …/instances/{name}/setMetadata (fingerprint checked before the operation starts). */
export function setInstanceMetadata(backend: GoogleBackend, request: SimRequest, project: string, zone: string, name: string): SimResponse {
  const instance = backend.instance(project, zone, name);
  backend.assertReady(backend.link(`projects/${project}/zones/${zone}/instances/${name}`), 'setMetadata');
  backend.setMetadata(instance, jsonBody(request) as { fingerprint?: string; items?: { key?: string; value?: string }[] });
  const operation = backend.startOperation(request, project, `zones/${zone}`, 'setMetadata', { link: backend.link(`projects/${project}/zones/${zone}/instances/${name}`), id: instance.id }, async () => {});
  return { status: 200, body: operation };
}

/** POST …/instances/{name}/setTags. */
export function setInstanceTags(backend: GoogleBackend, request: SimRequest, project: string, zone: string, name: string): SimResponse {
  const instance = backend.instance(project, zone, name);
  backend.assertReady(backend.link(`projects/${project}/zones/${zone}/instances/${name}`), 'setTags');
  backend.setTags(instance, jsonBody(request) as { fingerprint?: string; items?: string[] });
  const operation = backend.startOperation(request, project, `zones/${zone}`, 'setTags', { link: backend.link(`projects/${project}/zones/${zone}/instances/${name}`), id: instance.id }, async () => {});
  return { status: 200, body: operation };
}

/** Simulates Compute Engine preempting a Spot/preemptible instance: powered off, status TERMINATED. */
export async function preemptInstance(backend: GoogleBackend, instance: SimInstance): Promise<void> {
  instance.attributes.statusMessage = 'Instance was preempted.';
  await backend.context.lifecycle.stop(instance, { force: true });
}
