import { ApiError, type SimRequest, type SimResponse } from '../../core/provider-front-end.ts';
import { consume } from '../../core/realism.ts';
import type { SimInstance } from '../../core/store.ts';
import { AMAZONEC2, type AmazonEC2Backend, EC2_KINDS, type Ec2InstanceAttributes, ec2Attributes, matchesFilters, tagFilter, tagSet, tagsFor } from './amazonec2-backend.ts';
import { clientError, invalidParameter, missingParameter } from './amazonec2-errors.ts';
import { STATE_REASONS } from './amazonec2-realism.ts';
import { securityGroup, tagSpecifications } from './amazonec2-resources.ts';
import { boolParam, ec2Response, filters, intParam, param, parseQuery, stringMembers, struct, structMembers, type XmlValue } from './amazonec2-wire.ts';

const instanceTypes = /^(t2|t3|t3a|t4g|m5|m6i|m7i|m7g|c5|c6i|c7g|r5|r6i|r7g|a1)\.(nano|micro|small|medium|large|xlarge|\d+xlarge)$/;

function instanceXml(backend: AmazonEC2Backend, instance: SimInstance): Record<string, XmlValue> {
  const a = ec2Attributes(instance);
  const state = backend.stateName(instance);
  const live = state !== 'terminated';
  const hasPublicIp = backend.showsPublicIp(instance);
  const reasonCode = a.stateReason as keyof typeof STATE_REASONS | undefined;
  return {
    instanceId: instance.id,
    imageId: a.imageId,
    instanceState: backend.stateXml(state),
    privateDnsName: live ? `ip-${instance.privateIp.replace(/\./g, '-')}.${a.region}.compute.internal` : '',
    dnsName: hasPublicIp ? `ec2-${instance.publicIp.replace(/\./g, '-')}.compute-1.amazonaws.com` : '',
    reason: reasonCode === 'Client.UserInitiatedShutdown' ? `User initiated (${instance.stateChangedAt.toISOString().replace('T', ' ').slice(0, 19)} GMT)` : '',
    stateReason: reasonCode === undefined ? undefined : { code: reasonCode, message: STATE_REASONS[reasonCode] ?? reasonCode },
    keyName: a.keyName,
    amiLaunchIndex: 0,
    instanceType: a.instanceType,
    launchTime: instance.createdAt,
    placement: { availabilityZone: a.availabilityZone, groupName: '', tenancy: 'default' },
    monitoring: { state: a.monitoring ? 'enabled' : 'disabled' },
    subnetId: live ? a.subnetId : undefined,
    vpcId: live ? a.vpcId : undefined,
    privateIpAddress: live ? instance.privateIp : undefined,
    ipAddress: hasPublicIp ? instance.publicIp : undefined,
    groupSet: a.groupIds.map((groupId) => ({ groupId, groupName: backend.context.store.getResource(AMAZONEC2, EC2_KINDS.securityGroup, groupId)?.name })),
    architecture: a.architecture,
    rootDeviceType: 'ebs',
    rootDeviceName: a.rootDeviceName,
    blockDeviceMapping: live
      ? a.blockDevices.map((device) => ({
          deviceName: device.deviceName,
          ebs: { volumeId: device.volumeId, status: 'attached', attachTime: instance.createdAt, deleteOnTermination: device.deleteOnTermination },
        }))
      : [],
    instanceLifecycle: a.spotInstanceRequestId === undefined ? undefined : 'spot',
    spotInstanceRequestId: a.spotInstanceRequestId,
    clientToken: a.clientToken,
    virtualizationType: 'hvm',
    tagSet: tagSet(a.tags),
    hypervisor: 'xen',
    ebsOptimized: a.ebsOptimized,
    iamInstanceProfile: a.iamInstanceProfile === undefined ? undefined : { arn: a.iamInstanceProfile, id: 'AIPAEXAMPLE' },
    metadataOptions: { state: 'applied', ...a.metadataOptions },
  };
}

function reservationXml(backend: AmazonEC2Backend, reservationId: string, instances: SimInstance[]): Record<string, XmlValue> {
  return { reservationId, ownerId: backend.ownerId, groupSet: [], instancesSet: instances.map((instance) => instanceXml(backend, instance)) };
}

/** RunInstances: one instance per call (MinCount/MaxCount 1..n), idempotent on `ClientToken`. */
export function runInstances(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const region = backend.region(request);
  const clientToken = param(query, 'ClientToken');
  const requestFingerprint = fingerprintOf(request);
  if (clientToken !== undefined) {
    // Idempotency sees every instance, visible to reads yet or not.
    const previous = backend.allInstances(region).filter((instance) => ec2Attributes(instance).clientToken === clientToken);
    const first = previous[0];
    if (first !== undefined) {
      if (ec2Attributes(first).requestFingerprint !== requestFingerprint) {
        throw clientError('IdempotentParameterMismatch', 'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).');
      }
      return ec2Response('RunInstances', request, reservationXml(backend, ec2Attributes(first).reservationId, previous));
    }
  }
  const imageId = param(query, 'ImageId');
  if (imageId === undefined) throw missingParameter('ImageId');
  const image = backend.images.find((candidate) => candidate.id === imageId);
  if (image === undefined) throw clientError('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
  const instanceType = param(query, 'InstanceType') ?? 'm1.small';
  if (!instanceTypes.test(instanceType)) throw invalidParameter(`Invalid value '${instanceType}' for InstanceType.`);
  const arm = /^(t4g|m7g|c7g|r7g|a1)\./.test(instanceType);
  if ((image.architecture === 'arm64') !== arm) {
    throw invalidParameter(
      `The architecture '${image.architecture}' of the specified instance type does not match the architecture '${arm ? 'arm64' : 'x86_64'}' of the specified AMI.`,
    );
  }
  const count = intParam(query, 'MinCount') ?? 1;
  const live = backend.context.store.listInstances(AMAZONEC2).length;
  if (live + count > backend.options.instanceLimit) {
    throw clientError('VcpuLimitExceeded', `You have requested more vCPU capacity than your current vCPU limit of ${backend.options.instanceLimit * 2} allows.`);
  }

  const keyName = param(query, 'KeyName');
  const key = keyName === undefined ? undefined : backend.resources(EC2_KINDS.keyPair, region).find((candidate) => candidate.name === keyName);
  if (keyName !== undefined && key === undefined) throw clientError('InvalidKeyPair.NotFound', `The key pair '${keyName}' does not exist`);

  const network = backend.network(region);
  const nic = structMembers(query, 'NetworkInterface')[0];
  const subnetId = param(nic, 'SubnetId') ?? param(query, 'SubnetId') ?? network?.subnets[0]?.subnetId;
  const subnet = network?.subnets.find((candidate) => candidate.subnetId === subnetId);
  if (subnet === undefined || network === undefined) {
    throw subnetId === undefined ? clientError('VPCIdNotSpecified', 'No default VPC for this user') : clientError('InvalidSubnetID.NotFound', `The subnet ID '${subnetId}' does not exist`);
  }
  const groupIds = [...stringMembers(nic, 'SecurityGroupId'), ...stringMembers(query, 'SecurityGroupId')];
  for (const groupId of groupIds) {
    const group = securityGroup(backend, region, groupId);
    if (group.attributes.vpcId !== network.vpcId) throw invalidParameter(`Security group ${groupId} and subnet ${subnet.subnetId} belong to different networks.`);
  }
  const specs = tagSpecifications(query);
  for (const spec of specs) {
    if (!['instance', 'volume', 'network-interface', 'spot-instances-request'].includes(spec.type ?? '')) {
      throw invalidParameter(`'${spec.type}' is not a valid taggable resource type for this operation.`);
    }
  }
  const metadata = struct(query, 'MetadataOptions');
  const hopLimit = intParam(metadata, 'HttpPutResponseHopLimit') ?? 2;
  if (hopLimit < 1 || hopLimit > 64) throw invalidParameter('The HttpPutResponseHopLimit must be between 1 and 64.');
  const market = struct(query, 'InstanceMarketOptions');
  const spot = param(market, 'MarketType') === 'spot';
  const maxPrice = param(market, 'SpotOptions', 'MaxPrice');
  if (maxPrice !== undefined && !/^\d+(\.\d+)?$/.test(maxPrice)) throw invalidParameter(`The value '${maxPrice}' is invalid for parameter MaxPrice.`);
  const capacityName = tagsFor(specs, 'instance').find((tag) => tag.key === 'Name')?.value ?? '';
  const capacity = backend.knobs.insufficientCapacity;
  if ((capacity?.operations ?? ['RunInstances']).includes('RunInstances') && consume(capacity, capacityName)) throw insufficientCapacity(instanceType, subnet.zone);
  const userDataBase64 = param(query, 'UserData');
  const userData = userDataBase64 === undefined ? undefined : Buffer.from(userDataBase64, 'base64').toString('utf8');
  const profile = struct(query, 'IamInstanceProfile');

  const reservationId = backend.newId('r');
  const instances: SimInstance[] = [];
  for (let index = 0; index < count; index++) {
    const id = backend.newId('i');
    const blockDevices: Ec2InstanceAttributes['blockDevices'] = [];
    const requested = structMembers(query, 'BlockDeviceMapping');
    const rootRequest = requested.find((mapping) => param(mapping, 'DeviceName') === image.rootDeviceName);
    const volumes = [
      { deviceName: image.rootDeviceName, mapping: rootRequest, size: image.rootSizeGb },
      ...requested
        .filter((mapping) => mapping !== rootRequest && struct(mapping, 'Ebs') !== undefined)
        .map((mapping) => ({ deviceName: param(mapping, 'DeviceName') ?? '/dev/sdf', mapping, size: 8 })),
    ];
    let diskGb = image.rootSizeGb;
    for (const volume of volumes) {
      const size = intParam(volume.mapping, 'Ebs', 'VolumeSize') ?? volume.size;
      if (volume.deviceName === image.rootDeviceName && size < image.rootSizeGb) {
        throw invalidParameter(`Volume of size ${size}GB is smaller than snapshot 'snap-${image.id.slice(4)}', expect size>= ${image.rootSizeGb}GB`);
      }
      const deleteOnTermination = boolParam(volume.mapping, 'Ebs', 'DeleteOnTermination') ?? true;
      const volumeId = backend.newId('vol');
      backend.context.store.putResource({
        provider: AMAZONEC2,
        kind: EC2_KINDS.volume,
        id: volumeId,
        name: volume.deviceName,
        createdAt: new Date(),
        attributes: {
          region,
          instanceId: id,
          size,
          volumeType: param(volume.mapping, 'Ebs', 'VolumeType') ?? 'gp3',
          encrypted: boolParam(volume.mapping, 'Ebs', 'Encrypted') ?? false,
          kmsKeyId: param(volume.mapping, 'Ebs', 'KmsKeyId'),
          deleteOnTermination,
          tags: tagsFor(specs, 'volume'),
        },
      });
      if (volume.deviceName === image.rootDeviceName) diskGb = size;
      blockDevices.push({ deviceName: volume.deviceName, volumeId, deleteOnTermination });
    }
    let spotInstanceRequestId: string | undefined;
    if (spot) {
      spotInstanceRequestId = `sir-${backend.context.ids.hex(8)}`;
      backend.context.store.putResource({
        provider: AMAZONEC2,
        kind: EC2_KINDS.spotRequest,
        id: spotInstanceRequestId,
        name: id,
        createdAt: new Date(),
        attributes: { region, instanceId: id, maxPrice, type: param(market, 'SpotOptions', 'SpotInstanceType') ?? 'one-time' },
      });
    }
    const tags = tagsFor(specs, 'instance');
    const attributes: Ec2InstanceAttributes = {
      region,
      reservationId,
      imageId: image.id,
      instanceType,
      ...(keyName === undefined ? {} : { keyName }),
      subnetId: subnet.subnetId,
      vpcId: network.vpcId,
      availabilityZone: subnet.zone,
      groupIds,
      ...(clientToken === undefined ? {} : { clientToken }),
      requestFingerprint,
      tags,
      blockDevices,
      rootDeviceName: image.rootDeviceName,
      architecture: image.architecture,
      metadataOptions: {
        httpTokens: param(metadata, 'HttpTokens') ?? 'optional',
        httpPutResponseHopLimit: hopLimit,
        httpEndpoint: param(metadata, 'HttpEndpoint') ?? 'enabled',
      },
      monitoring: boolParam(query, 'Monitoring', 'Enabled') ?? false,
      ebsOptimized: boolParam(query, 'EbsOptimized') ?? false,
      ...(profile === undefined ? {} : { iamInstanceProfile: param(profile, 'Arn') ?? `arn:aws:iam::${backend.ownerId}:instance-profile/${param(profile, 'Name')}` }),
      ...(spotInstanceRequestId === undefined ? {} : { spotInstanceRequestId }),
      associatePublicIp: boolParam(nic, 'AssociatePublicIpAddress') ?? true,
      ...(userData === undefined ? {} : { userData }),
      diskGb,
    };
    const name = tags.find((tag) => tag.key === 'Name')?.value ?? id;
    const { instance, running } = backend.context.lifecycle.launch({
      provider: AMAZONEC2,
      kind: EC2_KINDS.instance,
      id,
      name,
      authorizedKeys: key === undefined ? [] : [key.attributes.publicKey as string],
      tags: tags.map((tag) => `${tag.key}=${tag.value}`),
      attributes: attributes as unknown as Record<string, unknown>,
      ...(userData === undefined ? {} : { userData }),
      // Without an Elastic IP, EC2 releases the public IPv4 on stop and assigns a new one on start.
      ...(backend.realism.realistic && backend.knobs.ipChangesOnStart !== false ? { faults: ['ipChangesOnStart'] } : {}),
    });
    backend.assignPublicIpLater(instance, running);
    const launchFailure = backend.knobs.launchFailure;
    if (consume(launchFailure, name)) {
      // Accepted, then dies while pending (pending → shutting-down → terminated) with a StateReason.
      const code = launchFailure?.stateReason ?? 'Server.InsufficientInstanceCapacity';
      setTimeout(() => {
        if (instance.state === 'pending') terminate(backend, instance, code);
      }, backend.context.lifecycle.delays.pendingMs / 2).unref();
    }
    instances.push(instance);
  }
  return ec2Response('RunInstances', request, reservationXml(backend, reservationId, instances));
}

export function describeInstances(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const region = backend.region(request);
  const ids = stringMembers(query, 'InstanceId');
  const missing = ids.filter((id) => {
    try {
      backend.instance(id, region);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) throw clientError('InvalidInstanceID.NotFound', `The instance ID${missing.length > 1 ? 's' : ''} '${missing.join(', ')}' do${missing.length > 1 ? '' : 'es'} not exist`);
  const wanted = filters(query);
  const matched = backend.instances(region).filter((instance) => {
    if (ids.length > 0 && !ids.includes(instance.id)) return false;
    const a = ec2Attributes(instance);
    return matchesFilters(
      wanted,
      (name) =>
        ({
          'instance-id': instance.id,
          'instance-state-name': backend.stateName(instance),
          'client-token': a.clientToken,
          'instance.group-id': a.groupIds,
          'vpc-id': a.vpcId,
          'subnet-id': a.subnetId,
          'availability-zone': a.availabilityZone,
          'key-name': a.keyName,
          'image-id': a.imageId,
          'instance-type': a.instanceType,
          'spot-instance-request-id': a.spotInstanceRequestId,
        })[name] ?? tagFilter(name, a.tags),
    );
  });
  const maxResults = intParam(query, 'MaxResults');
  if (maxResults !== undefined && ids.length > 0) throw invalidParameter('The parameter instancesSet cannot be used with the parameter maxResults');
  const offset = Number(param(query, 'NextToken') ?? '0') || 0;
  const page = maxResults === undefined ? matched.slice(offset) : matched.slice(offset, offset + maxResults);
  const nextToken = maxResults !== undefined && offset + maxResults < matched.length ? String(offset + maxResults) : undefined;
  const byReservation = new Map<string, SimInstance[]>();
  for (const instance of page) {
    const reservationId = ec2Attributes(instance).reservationId;
    byReservation.set(reservationId, [...(byReservation.get(reservationId) ?? []), instance]);
  }
  return ec2Response('DescribeInstances', request, {
    reservationSet: [...byReservation].map(([reservationId, instances]) => reservationXml(backend, reservationId, instances)),
    nextToken,
  });
}

type StateChange = { instanceId: string; previousState: Record<string, XmlValue>; currentState: Record<string, XmlValue> };

function lifecycleCall(
  backend: AmazonEC2Backend,
  request: SimRequest,
  action: string,
  change: (instance: SimInstance, previous: string) => void,
): SimResponse {
  const query = parseQuery(request);
  const region = backend.region(request);
  const ids = stringMembers(query, 'InstanceId');
  if (ids.length === 0) throw missingParameter('InstanceId');
  const instances = ids.map((id) => backend.instance(id, region));
  const changes: StateChange[] = [];
  for (const instance of instances) {
    const previous = backend.stateName(instance);
    change(instance, previous);
    changes.push({ instanceId: instance.id, previousState: backend.stateXml(previous), currentState: backend.stateXml(backend.stateName(instance)) });
  }
  return ec2Response(action, request, action === 'RebootInstances' ? { return: true } : { instancesSet: changes as unknown as XmlValue[] });
}

export function startInstances(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  return lifecycleCall(backend, request, 'StartInstances', (instance, previous) => {
    if (previous === 'running' || previous === 'pending') return;
    if (previous !== 'stopped') throw clientError('IncorrectInstanceState', `The instance '${instance.id}' is not in a state from which it can be started.`);
    const capacity = backend.knobs.insufficientCapacity;
    const a = ec2Attributes(instance);
    if (capacity?.operations?.includes('StartInstances') === true && consume(capacity, instance.name)) throw insufficientCapacity(a.instanceType, a.availabilityZone);
    delete a.stateReason;
    backend.assignPublicIpLater(instance, backend.context.lifecycle.start(instance));
  });
}

/** EC2's 500 for a zone without capacity for the type (also on StartInstances). */
function insufficientCapacity(instanceType: string, zone: string): ApiError {
  return new ApiError(
    500,
    'InsufficientInstanceCapacity',
    `We currently do not have sufficient ${instanceType} capacity in the Availability Zone you requested (${zone}). Our system will be working on provisioning additional capacity. You can currently get ${instanceType} capacity by not specifying an Availability Zone in your request or choosing a different Availability Zone.`,
  );
}

/** The launch parameters without the token and protocol fields: a repeat with other parameters is a mismatch. */
function fingerprintOf(request: SimRequest): string {
  const entries = [...new URLSearchParams(request.body.toString('utf8'))].filter(([key]) => !['Action', 'Version', 'ClientToken'].includes(key));
  return entries
    .map(([key, value]) => `${key}=${value}`)
    .sort()
    .join('&');
}

export function stopInstances(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const force = boolParam(parseQuery(request), 'Force') ?? false;
  return lifecycleCall(backend, request, 'StopInstances', (instance, previous) => {
    if (previous === 'stopped' || previous === 'stopping') return;
    if (previous === 'terminated' || previous === 'shutting-down') throw clientError('IncorrectInstanceState', `This instance '${instance.id}' is not in a state from which it can be stopped.`);
    if (ec2Attributes(instance).spotInstanceRequestId !== undefined) {
      throw clientError('UnsupportedOperation', `You can't stop the Spot Instance '${instance.id}' because it is associated with a one-time Spot Instance request.`);
    }
    ec2Attributes(instance).stateReason = 'Client.UserInitiatedShutdown';
    void backend.context.lifecycle.stop(instance, { force });
  });
}

export function rebootInstances(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  return lifecycleCall(backend, request, 'RebootInstances', (instance, previous) => {
    if (previous !== 'running') throw clientError('IncorrectInstanceState', `The instance '${instance.id}' is not in a state from which it can be rebooted.`);
    const attributes = ec2Attributes(instance);
    attributes.rebooting = true;
    void backend.context.lifecycle.reboot(instance).finally(() => {
      attributes.rebooting = false;
    });
  });
}

/** TerminateInstances: volumes with DeleteOnTermination go, one-time spot requests close. */
export function terminateInstances(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  return lifecycleCall(backend, request, 'TerminateInstances', (instance) => {
    terminate(backend, instance);
  });
}

/** Terminates an instance the way EC2 does (also used by tests that delete "outside" the driver). */
export function terminate(backend: AmazonEC2Backend, instance: SimInstance, stateReason: keyof typeof STATE_REASONS = 'Client.UserInitiatedShutdown'): void {
  const attributes = ec2Attributes(instance);
  attributes.rebooting = false;
  if (instance.state !== 'terminated') attributes.stateReason = stateReason;
  void backend.context.lifecycle.terminate(instance);
  for (const device of attributes.blockDevices) {
    const volume = backend.context.store.getResource(AMAZONEC2, EC2_KINDS.volume, device.volumeId);
    if (volume === undefined) continue;
    if (device.deleteOnTermination) backend.context.store.deleteResource(AMAZONEC2, EC2_KINDS.volume, device.volumeId);
    else volume.attributes.instanceId = undefined;
  }
  const spotId = attributes.spotInstanceRequestId;
  if (spotId !== undefined && backend.context.store.getResource(AMAZONEC2, EC2_KINDS.spotRequest, spotId) !== undefined) {
    backend.context.store.deleteResource(AMAZONEC2, EC2_KINDS.spotRequest, spotId);
    backend.closedSpotRequests.set(spotId, 'closed');
  }
}
