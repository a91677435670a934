import type { FaultErrorKind, ThrottleSpec } from '../../core/faults.ts';
import { ApiError, type SimRequest, type SimResponse } from '../../core/provider-front-end.ts';

/** True when the request is an SSM JSON call (routed by `X-Amz-Target` on the shared endpoint). */
export function isSsmRequest(request: SimRequest): boolean {
  const target = request.headers['x-amz-target'];
  return typeof target === 'string' && target.startsWith('AmazonSSM.');
}

/** A 400 client error with an EC2 code. */
export function clientError(code: string, message: string): ApiError {
  return new ApiError(400, code, message);
}

/** `InvalidParameterValue`. */
export function invalidParameter(message: string): ApiError {
  return clientError('InvalidParameterValue', message);
}

/** `MissingParameter` for a required request parameter. */
export function missingParameter(name: string): ApiError {
  return clientError('MissingParameter', `The request must contain the parameter ${name}`);
}

const notFoundByOperation: Record<string, [string, string]> = {
  DescribeInstances: ['InvalidInstanceID.NotFound', "The instance ID 'i-0000000000000000' does not exist"],
  StartInstances: ['InvalidInstanceID.NotFound', "The instance ID 'i-0000000000000000' does not exist"],
  StopInstances: ['InvalidInstanceID.NotFound', "The instance ID 'i-0000000000000000' does not exist"],
  RebootInstances: ['InvalidInstanceID.NotFound', "The instance ID 'i-0000000000000000' does not exist"],
  TerminateInstances: ['InvalidInstanceID.NotFound', "The instance ID 'i-0000000000000000' does not exist"],
  DescribeSecurityGroups: ['InvalidGroup.NotFound', "The security group 'sg-0000000000000000' does not exist"],
  DeleteSecurityGroup: ['InvalidGroup.NotFound', "The security group 'sg-0000000000000000' does not exist"],
  AuthorizeSecurityGroupIngress: ['InvalidGroup.NotFound', "The security group 'sg-0000000000000000' does not exist"],
  DescribeKeyPairs: ['InvalidKeyPair.NotFound', "The key pair 'missing' does not exist"],
  DescribeImages: ['InvalidAMIID.NotFound', "The image id '[ami-00000000]' does not exist"],
  DescribeSubnets: ['InvalidSubnetID.NotFound', "The subnet ID 'subnet-0000000000' does not exist"],
  DescribeVpcs: ['InvalidVpcID.NotFound', "The vpc ID 'vpc-0000000000' does not exist"],
  CancelSpotInstanceRequests: ['InvalidSpotInstanceRequestID.NotFound', "The spot instance request ID 'sir-00000000' does not exist"],
  'ssm:GetParameter': ['ParameterNotFound', ''],
};

const quotaByOperation: Record<string, [string, string]> = {
  RunInstances: [
    'VcpuLimitExceeded',
    'You have requested more vCPU capacity than your current vCPU limit of 32 allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.',
  ],
  StartInstances: ['InstanceLimitExceeded', 'Your quota allows for 0 more running instance(s). You requested at least 1.'],
  CreateSecurityGroup: ['SecurityGroupLimitExceeded', 'The maximum number of security groups has been reached.'],
  AuthorizeSecurityGroupIngress: ['RulesPerSecurityGroupLimitExceeded', 'The maximum number of rules per security group has been reached.'],
  ImportKeyPair: ['ResourceLimitExceeded', 'You have reached the maximum number of key pairs allowed.'],
};

/** EC2's (or SSM's) error for an injected fault kind. */
export function amazonEC2FaultError(kind: FaultErrorKind, operation: string): ApiError {
  const ssm = operation.startsWith('ssm:');
  switch (kind) {
    case 'auth':
      return ssm
        ? new ApiError(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.')
        : new ApiError(401, 'AuthFailure', 'AWS was not able to validate the provided access credentials');
    case 'quota': {
      const [code, message] = quotaByOperation[operation] ?? ['InstanceLimitExceeded', 'Your quota allows for 0 more running instance(s).'];
      return clientError(code, message);
    }
    case 'not_found': {
      const [code, message] = notFoundByOperation[operation] ?? ['InvalidAction', `The action ${operation} is not valid for this web service.`];
      return clientError(code, message);
    }
    case 'server':
      return ssm ? new ApiError(500, 'InternalServerError', 'An internal error occurred.') : new ApiError(500, 'InternalError', 'An internal error has occurred');
    case 'unavailable':
      return ssm
        ? new ApiError(503, 'ServiceUnavailable', 'The service is unavailable.')
        : new ApiError(503, 'Unavailable', 'The service is unavailable. Please try again shortly.');
  }
}

/** EC2's XML error body, or SSM's JSON one; both with `x-amzn-requestid`. */
export function renderAmazonEC2Error(error: ApiError, request: SimRequest): SimResponse {
  if (isSsmRequest(request)) {
    return {
      status: error.status,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': request.requestId },
      body: Buffer.from(JSON.stringify({ __type: error.code, message: error.message })),
    };
  }
  const message = error.message.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c] ?? c);
  return {
    status: error.status,
    headers: { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': request.requestId },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${error.code}</Code><Message>${message}</Message></Error></Errors><RequestID>${request.requestId}</RequestID></Response>`,
  };
}

/** EC2 throttles with 503 `RequestLimitExceeded`; SSM with 400 `ThrottlingException`. */
export function amazonEC2Throttle(_throttle: Required<ThrottleSpec>, request: SimRequest): SimResponse {
  return renderAmazonEC2Error(
    isSsmRequest(request) ? new ApiError(400, 'ThrottlingException', 'Rate exceeded') : new ApiError(503, 'RequestLimitExceeded', 'Request limit exceeded.'),
    request,
  );
}
