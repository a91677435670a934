import { md5Fingerprint, parsePublicKeyLine, sha256Fingerprint } from '@machine/driver-core/keys';
import type { SimRequest, SimResponse } from '../../core/provider-front-end.ts';
import type { SimResource } from '../../core/store.ts';
import { AMAZONEC2, type AmazonEC2Backend, EC2_KINDS, ec2Attributes, matchesFilters, tagFilter, tagSet, tagsFor } from './amazonec2-backend.ts';
import { clientError, invalidParameter, missingParameter } from './amazonec2-errors.ts';
import { ec2Response, filters, intParam, type QueryNode, param, parseQuery, stringMembers, structMembers, type XmlValue } from './amazonec2-wire.ts';

type Tag = { key: string; value: string };

/** `TagSpecification.N.ResourceType` + `.Tag.M.Key/Value`. */
export function tagSpecifications(query: QueryNode): { type: string | undefined; tags: Tag[] }[] {
  return structMembers(query, 'TagSpecification').map((spec) => ({
    type: param(spec, 'ResourceType'),
    tags: structMembers(spec, 'Tag').map((tag) => ({ key: param(tag, 'Key') ?? '', value: param(tag, 'Value') ?? '' })),
  }));
}

// ---- VPCs and subnets (seeded, not leakable) ----

export function describeVpcs(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const region = backend.region(request);
  const network = backend.network(region);
  const ids = stringMembers(query, 'VpcId');
  const wanted = filters(query);
  const vpcs = network === undefined ? [] : [network];
  for (const id of ids) {
    if (!vpcs.some((vpc) => vpc.vpcId === id)) throw clientError('InvalidVpcID.NotFound', `The vpc ID '${id}' does not exist`);
  }
  const listed = vpcs.filter(
    (vpc) =>
      (ids.length === 0 || ids.includes(vpc.vpcId)) &&
      matchesFilters(wanted, (name) => ({ 'vpc-id': vpc.vpcId, 'is-default': 'true', 'cidr-block': vpc.cidr, state: 'available' })[name]),
  );
  return ec2Response('DescribeVpcs', request, {
    vpcSet: listed.map((vpc) => ({ vpcId: vpc.vpcId, state: 'available', cidrBlock: vpc.cidr, isDefault: true, ownerId: backend.ownerId, instanceTenancy: 'default' })),
  });
}

export function describeSubnets(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const region = backend.region(request);
  const network = backend.network(region);
  const subnets = network?.subnets ?? [];
  const ids = stringMembers(query, 'SubnetId');
  for (const id of ids) {
    if (!subnets.some((subnet) => subnet.subnetId === id)) throw clientError('InvalidSubnetID.NotFound', `The subnet ID '${id}' does not exist`);
  }
  const wanted = filters(query);
  const listed = subnets.filter(
    (subnet) =>
      (ids.length === 0 || ids.includes(subnet.subnetId)) &&
      matchesFilters(
        wanted,
        (name) =>
          ({
            'subnet-id': subnet.subnetId,
            'vpc-id': network?.vpcId,
            'availability-zone': subnet.zone,
            'availability-zone-id': subnet.zoneId,
            'default-for-az': String(subnet.defaultForAz),
            state: 'available',
          })[name],
      ),
  );
  return ec2Response('DescribeSubnets', request, {
    subnetSet: listed.map((subnet) => ({
      subnetId: subnet.subnetId,
      state: 'available',
      vpcId: network?.vpcId,
      cidrBlock: subnet.cidr,
      availableIpAddressCount: 4091,
      availabilityZone: subnet.zone,
      availabilityZoneId: subnet.zoneId,
      defaultForAz: subnet.defaultForAz,
      mapPublicIpOnLaunch: true,
      ownerId: backend.ownerId,
    })),
  });
}

// ---- images ----

export function describeImages(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const ids = stringMembers(query, 'ImageId');
  for (const id of ids) {
    if (!backend.images.some((image) => image.id === id)) throw clientError('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
  }
  const wanted = filters(query);
  const listed = backend.images.filter(
    (image) =>
      (ids.length === 0 || ids.includes(image.id)) &&
      matchesFilters(wanted, (name) => ({ 'image-id': image.id, name: image.name, architecture: image.architecture, state: 'available' })[name]),
  );
  return ec2Response('DescribeImages', request, {
    imagesSet: listed.map((image) => ({
      imageId: image.id,
      imageLocation: `amazon/${image.name}`,
      imageState: 'available',
      imageOwnerId: '099720109477',
      isPublic: true,
      architecture: image.architecture,
      imageType: 'machine',
      name: image.name,
      rootDeviceType: 'ebs',
      rootDeviceName: image.rootDeviceName,
      blockDeviceMapping: [
        {
          deviceName: image.rootDeviceName,
          ebs: { snapshotId: `snap-${image.id.slice(4)}`, volumeSize: image.rootSizeGb, deleteOnTermination: true, volumeType: 'gp3', encrypted: false },
        },
        { deviceName: '/dev/sdb', virtualName: 'ephemeral0' },
        { deviceName: '/dev/sdc', virtualName: 'ephemeral1' },
      ],
      virtualizationType: 'hvm',
      hypervisor: 'xen',
      enaSupport: true,
    })),
  });
}

// ---- key pairs ----

function keyPairXml(key: SimResource): Record<string, XmlValue> {
  return {
    keyPairId: key.id,
    keyName: key.name,
    keyFingerprint: key.attributes.fingerprint as string,
    keyType: key.attributes.keyType as string,
    tagSet: tagSet(key.attributes.tags as Tag[]),
    createTime: key.createdAt,
  };
}

export function importKeyPair(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const region = backend.region(request);
  const name = param(query, 'KeyName');
  const material = param(query, 'PublicKeyMaterial');
  if (name === undefined || name === '') throw missingParameter('KeyName');
  if (material === undefined) throw missingParameter('PublicKeyMaterial');
  if (backend.resources(EC2_KINDS.keyPair, region).some((key) => key.name === name)) {
    throw clientError('InvalidKeyPair.Duplicate', `The keypair '${name}' already exists.`);
  }
  const publicKey = Buffer.from(material, 'base64').toString('utf8').trim();
  let parsed: { type: string; blob: Buffer };
  try {
    parsed = parsePublicKeyLine(publicKey);
  } catch {
    throw clientError('InvalidKey.Format', 'Key is not in valid OpenSSH public key format');
  }
  const keyType = parsed.type === 'ssh-ed25519' ? 'ed25519' : 'rsa';
  const fingerprint = keyType === 'ed25519' ? sha256Fingerprint(parsed.blob).replace(/^SHA256:/, '') : md5Fingerprint(parsed.blob);
  const key = backend.context.store.putResource({
    provider: AMAZONEC2,
    kind: EC2_KINDS.keyPair,
    id: backend.newId('key'),
    name,
    createdAt: new Date(),
    attributes: { region, publicKey, fingerprint, keyType, tags: tagsFor(tagSpecifications(query), 'key-pair') },
  });
  const { keyPairId, keyName, keyFingerprint, tagSet: tags } = keyPairXml(key);
  return ec2Response('ImportKeyPair', request, { keyFingerprint, keyName, keyPairId, tagSet: tags });
}

export function describeKeyPairs(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const region = backend.region(request);
  const keys = backend.resources(EC2_KINDS.keyPair, region);
  const names = stringMembers(query, 'KeyName');
  const ids = stringMembers(query, 'KeyPairId');
  for (const name of names) {
    if (!keys.some((key) => key.name === name)) throw clientError('InvalidKeyPair.NotFound', `The key pair '${name}' does not exist`);
  }
  for (const id of ids) {
    if (!keys.some((key) => key.id === id)) throw clientError('InvalidKeyPair.NotFound', `The key pair '${id}' does not exist`);
  }
  const wanted = filters(query);
  const listed = keys.filter(
    (key) =>
      (names.length === 0 || names.includes(key.name)) &&
      (ids.length === 0 || ids.includes(key.id)) &&
      matchesFilters(wanted, (name) => ({ 'key-name': key.name, 'key-pair-id': key.id })[name] ?? tagFilter(name, key.attributes.tags as Tag[])),
  );
  return ec2Response('DescribeKeyPairs', request, { keySet: listed.map(keyPairXml) });
}

/** DeleteKeyPair succeeds for a key that does not exist, as EC2 does. */
export function deleteKeyPair(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const region = backend.region(request);
  const id = param(query, 'KeyPairId');
  const name = param(query, 'KeyName');
  if (id === undefined && name === undefined) throw missingParameter('KeyName');
  const key = backend.resources(EC2_KINDS.keyPair, region).find((candidate) => (id !== undefined ? candidate.id === id : candidate.name === name));
  if (key !== undefined) backend.context.store.deleteResource(AMAZONEC2, EC2_KINDS.keyPair, key.id);
  return ec2Response('DeleteKeyPair', request, { return: true, ...(key === undefined ? {} : { keyPairId: key.id }) });
}

// ---- security groups ----

interface Permission {
  ipProtocol: string;
  fromPort?: number;
  toPort?: number;
  ipRanges: { cidrIp: string; description?: string }[];
  ipv6Ranges: { cidrIpv6: string; description?: string }[];
}

function permissionXml(permission: Permission): Record<string, XmlValue> {
  return {
    ipProtocol: permission.ipProtocol,
    fromPort: permission.fromPort,
    toPort: permission.toPort,
    groups: [],
    ipRanges: permission.ipRanges.map((range) => ({ cidrIp: range.cidrIp, description: range.description })),
    ipv6Ranges: permission.ipv6Ranges.map((range) => ({ cidrIpv6: range.cidrIpv6, description: range.description })),
    prefixListIds: [],
  };
}

function groupXml(backend: AmazonEC2Backend, group: SimResource): Record<string, XmlValue> {
  return {
    ownerId: backend.ownerId,
    groupId: group.id,
    groupName: group.name,
    groupDescription: group.attributes.description as string,
    vpcId: group.attributes.vpcId as string,
    ipPermissions: (group.attributes.ingress as Permission[]).map(permissionXml),
    ipPermissionsEgress: [permissionXml({ ipProtocol: '-1', ipRanges: [{ cidrIp: '0.0.0.0/0' }], ipv6Ranges: [] })],
    tagSet: tagSet(group.attributes.tags as Tag[]),
  };
}

/** A group of the region by id; `InvalidGroup.NotFound` otherwise (also right after it was made: read-after-create). */
export function securityGroup(backend: AmazonEC2Backend, region: string, id: string): SimResource {
  const group = backend.context.store.getResource(AMAZONEC2, EC2_KINDS.securityGroup, id);
  if (group === undefined || group.attributes.region !== region || !backend.visible(group)) throw clientError('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
  return group;
}

export function createSecurityGroup(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const region = backend.region(request);
  const name = param(query, 'GroupName');
  const description = param(query, 'GroupDescription');
  if (name === undefined || name === '') throw missingParameter('GroupName');
  if (description === undefined) throw missingParameter('GroupDescription');
  const vpcId = param(query, 'VpcId') ?? backend.network(region)?.vpcId;
  if (vpcId === undefined) throw clientError('VPCIdNotSpecified', 'No default VPC for this user');
  if (!backend.networks().some((network) => network.vpcId === vpcId)) throw clientError('InvalidVpcID.NotFound', `The vpc ID '${vpcId}' does not exist`);
  if (backend.resources(EC2_KINDS.securityGroup, region).some((group) => group.name === name && group.attributes.vpcId === vpcId)) {
    throw clientError('InvalidGroup.Duplicate', `The security group '${name}' already exists for VPC '${vpcId}'`);
  }
  const tags = tagsFor(tagSpecifications(query), 'security-group');
  const group = backend.context.store.putResource({
    provider: AMAZONEC2,
    kind: EC2_KINDS.securityGroup,
    id: backend.newId('sg'),
    name,
    createdAt: new Date(),
    attributes: { region, vpcId, description, ingress: [] as Permission[], tags },
  });
  return ec2Response('CreateSecurityGroup', request, { return: true, groupId: group.id, tagSet: tagSet(tags) });
}

export function describeSecurityGroups(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const region = backend.region(request);
  const ids = stringMembers(query, 'GroupId');
  const names = stringMembers(query, 'GroupName');
  // A group made a moment ago is not visible yet, by id or in lists (read-after-create).
  const groups = backend.resources(EC2_KINDS.securityGroup, region).filter((group) => backend.visible(group));
  for (const id of ids) securityGroup(backend, region, id);
  for (const name of names) {
    if (!groups.some((group) => group.name === name)) throw clientError('InvalidGroup.NotFound', `The security group '${name}' does not exist in default VPC`);
  }
  const wanted = filters(query);
  const listed = groups.filter(
    (group) =>
      (ids.length === 0 || ids.includes(group.id)) &&
      (names.length === 0 || names.includes(group.name)) &&
      matchesFilters(
        wanted,
        (name) =>
          ({ 'group-id': group.id, 'group-name': group.name, 'vpc-id': group.attributes.vpcId as string, description: group.attributes.description as string })[name] ??
          tagFilter(name, group.attributes.tags as Tag[]),
      ),
  );
  return ec2Response('DescribeSecurityGroups', request, { securityGroupInfo: listed.map((group) => groupXml(backend, group)) });
}

export function authorizeSecurityGroupIngress(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const region = backend.region(request);
  const id = param(query, 'GroupId');
  if (id === undefined) throw missingParameter('GroupId');
  const group = securityGroup(backend, region, id);
  const ingress = group.attributes.ingress as Permission[];
  const added: Permission[] = [];
  for (const entry of structMembers(query, 'IpPermissions')) {
    const ipProtocol = param(entry, 'IpProtocol');
    if (ipProtocol === undefined) throw missingParameter('IpPermissions.N.IpProtocol');
    if (!['tcp', 'udp', 'icmp', '-1'].includes(ipProtocol)) throw invalidParameter(`Invalid value '${ipProtocol}' for IP protocol.`);
    const fromPort = intParam(entry, 'FromPort');
    const toPort = intParam(entry, 'ToPort');
    if (ipProtocol !== '-1' && (fromPort === undefined || toPort === undefined || fromPort > toPort)) throw invalidParameter('Invalid port range.');
    const permission: Permission = {
      ipProtocol,
      ...(fromPort === undefined ? {} : { fromPort }),
      ...(toPort === undefined ? {} : { toPort }),
      ipRanges: structMembers(entry, 'IpRanges').map((range) => ({ cidrIp: param(range, 'CidrIp') ?? '', ...descriptionOf(range) })),
      ipv6Ranges: structMembers(entry, 'Ipv6Ranges').map((range) => ({ cidrIpv6: param(range, 'CidrIpv6') ?? '', ...descriptionOf(range) })),
    };
    for (const existing of ingress.filter((rule) => rule.ipProtocol === ipProtocol && rule.fromPort === fromPort && rule.toPort === toPort)) {
      const duplicate =
        permission.ipRanges.some((range) => existing.ipRanges.some((other) => other.cidrIp === range.cidrIp)) ||
        permission.ipv6Ranges.some((range) => existing.ipv6Ranges.some((other) => other.cidrIpv6 === range.cidrIpv6));
      if (duplicate) {
        throw clientError(
          'InvalidPermission.Duplicate',
          `the specified rule "peer: ${permission.ipRanges[0]?.cidrIp ?? permission.ipv6Ranges[0]?.cidrIpv6}, ${ipProtocol.toUpperCase()}, from port: ${fromPort}, to port: ${toPort}, ALLOW" already exists`,
        );
      }
    }
    added.push(permission);
  }
  if (added.length === 0) throw missingParameter('IpPermissions');
  ingress.push(...added);
  return ec2Response('AuthorizeSecurityGroupIngress', request, { return: true });
}

function descriptionOf(range: QueryNode): { description?: string } {
  const description = param(range, 'Description');
  return description === undefined ? {} : { description };
}

export function deleteSecurityGroup(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const region = backend.region(request);
  const id = param(query, 'GroupId');
  if (id === undefined) throw missingParameter('GroupId');
  const group = securityGroup(backend, region, id);
  // An instance's network interface holds its groups until some time after it is terminated.
  const interfaceKept = backend.scaled('shuttingDownMs') + backend.scaled('interfaceReleaseMs');
  for (const instance of backend.allInstances(region).filter((candidate) => ec2Attributes(candidate).groupIds.includes(group.id))) {
    const state = backend.stateName(instance);
    if (state === 'shutting-down') throw clientError('InvalidGroup.InUse', `There are active instances using security group '${group.name}'`);
    if (state !== 'terminated' || Date.now() - instance.stateChangedAt.getTime() < interfaceKept) {
      throw clientError('DependencyViolation', `resource ${group.id} has a dependent object`);
    }
  }
  backend.context.store.deleteResource(AMAZONEC2, EC2_KINDS.securityGroup, group.id);
  return ec2Response('DeleteSecurityGroup', request, { return: true, groupId: group.id });
}

// ---- spot requests ----

export function cancelSpotInstanceRequests(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  const query = parseQuery(request);
  const ids = stringMembers(query, 'SpotInstanceRequestId');
  if (ids.length === 0) throw missingParameter('SpotInstanceRequestId');
  const cancelled: Record<string, XmlValue>[] = [];
  for (const id of ids) {
    const live = backend.context.store.getResource(AMAZONEC2, EC2_KINDS.spotRequest, id);
    if (live === undefined && !backend.closedSpotRequests.has(id)) {
      throw clientError('InvalidSpotInstanceRequestID.NotFound', `The spot instance request ID '${id}' does not exist`);
    }
    if (live !== undefined) backend.context.store.deleteResource(AMAZONEC2, EC2_KINDS.spotRequest, id);
    const previous = backend.closedSpotRequests.get(id);
    const state = previous === 'closed' ? 'closed' : 'cancelled';
    backend.closedSpotRequests.set(id, state);
    cancelled.push({ spotInstanceRequestId: id, state });
  }
  return ec2Response('CancelSpotInstanceRequests', request, { spotInstanceRequestSet: cancelled });
}
