import type { FaultErrorKind, ThrottleSpec } from '../../core/faults.ts';
import type { ProviderContext, ProviderDefinition, ProviderFrontEnd, Route, SimRequest, SimResponse } from '../../core/provider-front-end.ts';
import { ApiError } from '../../core/provider-front-end.ts';
import { AMAZONEC2, AmazonEC2Backend, type AmazonEC2Options } from './amazonec2-backend.ts';
import { amazonEC2FaultError, amazonEC2Throttle, clientError, isSsmRequest, renderAmazonEC2Error } from './amazonec2-errors.ts';
import { describeInstances, rebootInstances, runInstances, startInstances, stopInstances, terminate, terminateInstances } from './amazonec2-instances.ts';
import {
  authorizeSecurityGroupIngress,
  cancelSpotInstanceRequests,
  createSecurityGroup,
  deleteKeyPair,
  deleteSecurityGroup,
  describeImages,
  describeKeyPairs,
  describeSecurityGroups,
  describeSubnets,
  describeVpcs,
  importKeyPair,
} from './amazonec2-resources.ts';
import { sigV4Scope } from './amazonec2-wire.ts';

export { AMAZONEC2, AmazonEC2Backend, type AmazonEC2Options, EC2_KINDS, ec2Attributes } from './amazonec2-backend.ts';
export { type AmazonEC2Realism, EC2_REALISTIC_DEFAULTS, STATE_REASONS } from './amazonec2-realism.ts';
export { terminate as terminateEc2Instance } from './amazonec2-instances.ts';

type Handler = (backend: AmazonEC2Backend, request: SimRequest) => SimResponse;

const actions: Record<string, Handler> = {
  DescribeVpcs: describeVpcs,
  DescribeSubnets: describeSubnets,
  DescribeImages: describeImages,
  ImportKeyPair: importKeyPair,
  DescribeKeyPairs: describeKeyPairs,
  DeleteKeyPair: deleteKeyPair,
  CreateSecurityGroup: createSecurityGroup,
  DescribeSecurityGroups: describeSecurityGroups,
  AuthorizeSecurityGroupIngress: authorizeSecurityGroupIngress,
  DeleteSecurityGroup: deleteSecurityGroup,
  RunInstances: runInstances,
  DescribeInstances: describeInstances,
  StartInstances: startInstances,
  StopInstances: stopInstances,
  RebootInstances: rebootInstances,
  TerminateInstances: terminateInstances,
  CancelSpotInstanceRequests: cancelSpotInstanceRequests,
};

/** SSM GetParameter (JSON 1.1 protocol), answering the public Canonical Ubuntu AMI parameters. */
function getParameter(backend: AmazonEC2Backend, request: SimRequest): SimResponse {
  let name: unknown;
  try {
    name = (JSON.parse(request.body.toString('utf8') || '{}') as { Name?: unknown }).Name;
  } catch {
    throw new ApiError(400, 'SerializationException', 'Malformed JSON');
  }
  if (typeof name !== 'string' || name === '') throw new ApiError(400, 'ValidationException', "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null");
  const value = backend.ssmParameter(name);
  if (value === undefined) throw new ApiError(400, 'ParameterNotFound', '');
  const region = backend.region(request);
  return {
    status: 200,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': request.requestId },
    body: Buffer.from(
      JSON.stringify({
        Parameter: {
          ARN: `arn:aws:ssm:${region}::parameter${name}`,
          DataType: 'aws:ec2:image',
          LastModifiedDate: Math.floor(Date.now() / 1000),
          Name: name,
          Type: 'String',
          Value: value,
          Version: 42,
        },
      }),
    ),
  };
}

/**
 * The EC2 front end: EC2's Query protocol (form bodies, XML answers, EC2 error codes) and, on the
 * same endpoint, SSM's JSON protocol for `GetParameter`, routed by the `X-Amz-Target` header.
 * Operations are named by their action (`RunInstances`; SSM's as `ssm:GetParameter`).
 */
export function createAmazonEC2FrontEnd(context: ProviderContext, options: AmazonEC2Options = {}): ProviderFrontEnd & { backend: AmazonEC2Backend } {
  const backend = new AmazonEC2Backend(context, options);
  return {
    name: AMAZONEC2,
    backend,
    route(request: SimRequest): Route | undefined {
      if (isSsmRequest(request)) {
        const target = String(request.headers['x-amz-target']).slice('AmazonSSM.'.length);
        if (target !== 'GetParameter') return { operation: `ssm:${target}`, handle: () => { throw new ApiError(400, 'UnknownOperationException', ''); } };
        return { operation: 'ssm:GetParameter', handle: () => getParameter(backend, request) };
      }
      const action = request.body.length > 0 ? new URLSearchParams(request.body.toString('utf8')).get('Action') : request.url.searchParams.get('Action');
      if (action === null) return undefined;
      const handler = actions[action];
      if (handler === undefined) return { operation: action, handle: () => { throw clientError('InvalidAction', `The action ${action} is not valid for this web service.`); } };
      return {
        operation: action,
        handle: () => {
          if (!backend.takeRequestToken(action)) throw new ApiError(503, 'RequestLimitExceeded', 'Request limit exceeded.');
          return handler(backend, request);
        },
      };
    },
    authenticate(request: SimRequest): ApiError | undefined {
      const scope = sigV4Scope(request);
      const ssm = isSsmRequest(request);
      if (scope === undefined) {
        return ssm ? new ApiError(400, 'MissingAuthenticationTokenException', 'Missing Authentication Token') : new ApiError(401, 'AuthFailure', 'AWS was not able to validate the provided access credentials');
      }
      if (scope.accessKeyId.startsWith(backend.options.invalidAccessKeyPrefix)) {
        return ssm
          ? new ApiError(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.')
          : new ApiError(401, 'AuthFailure', 'AWS was not able to validate the provided access credentials');
      }
      return undefined;
    },
    faultError: (kind: FaultErrorKind, operation: string) => amazonEC2FaultError(kind, operation),
    throttleResponse: (throttle: Required<ThrottleSpec>, request: SimRequest) => amazonEC2Throttle(throttle, request),
    renderError: renderAmazonEC2Error,
    // No region here: a host that maps these onto flags would override the user's --amazonec2-region.
    env(endpoint: string): Record<string, string> {
      return {
        AWS_ENDPOINT: endpoint,
        AWS_ENDPOINT_URL: endpoint,
        AWS_ACCESS_KEY_ID: 'AKIDCLOUDSIMULATOR01',
        AWS_SECRET_ACCESS_KEY: 'cloud-sim-secret-access-key',
        AWS_EC2_METADATA_DISABLED: 'true',
      };
    },
  };
}

/** Registers the EC2 (+ SSM) front end with the simulator. */
export const amazonec2Provider: ProviderDefinition<AmazonEC2Options> = {
  name: AMAZONEC2,
  create: (context, options) => createAmazonEC2FrontEnd(context, options),
};

/** Terminates an instance as EC2 would, behind a driver's back (tests' "deleted outside"). */
export function terminateOutside(frontEnd: { backend: AmazonEC2Backend }, instanceId: string): void {
  const instance = frontEnd.backend.context.store.getInstance(AMAZONEC2, instanceId);
  if (instance !== undefined) terminate(frontEnd.backend, instance);
}
