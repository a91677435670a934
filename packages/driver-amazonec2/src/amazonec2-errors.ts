import {
  AuthError,
  CancelledError,
  CapacityError,
  type ErrorMapper,
  MachineError,
  NotFoundError,
  NotSupportedError,
  ProviderError,
  QuotaError,
  TimeoutError,
} from '@machine/driver-core';

/** The shape of an AWS SDK v3 service error (and of a few client-side errors). */
interface AwsErrorLike {
  name?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

const authCodes = new Set([
  'AuthFailure',
  'UnauthorizedOperation',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'ExpiredToken',
  'ExpiredTokenException',
  'RequestExpired',
  'OptInRequired',
  'Blocked',
  'AccessDenied',
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
]);

const quotaCodes = new Set([
  'InstanceLimitExceeded',
  'VcpuLimitExceeded',
  'MaxSpotInstanceCountExceeded',
  'SecurityGroupLimitExceeded',
  'RulesPerSecurityGroupLimitExceeded',
  'ResourceLimitExceeded',
  'VolumeLimitExceeded',
  'AddressLimitExceeded',
  'KeyPairLimitExceeded',
  'SpotMaxPriceTooLow',
]);

/** EC2 has no capacity right now: not a quota (raising a limit does not help); another zone, type or time may. */
const capacityCodes = new Set(['InsufficientInstanceCapacity', 'InsufficientCapacity', 'InsufficientHostCapacity', 'InsufficientReservedInstanceCapacity']);

const throttlingCodes = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'TooManyRequestsException']);

/** Where the SDK's default chain looks; said in full when it finds nothing. */
export const credentialSources =
  '--amazonec2-access-key/--amazonec2-secret-key, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the AWS_PROFILE (or default) profile in ~/.aws/credentials and ~/.aws/config (keys, SSO, credential_process, role), AWS_WEB_IDENTITY_TOKEN_FILE, the container credentials endpoint and the EC2 instance role';

/** Builds the error mapper for one machine; `secrets` (the explicit keys) are redacted from every message. */
export function amazonEC2ErrorMapper(secrets: readonly string[] = []): ErrorMapper {
  return (error, where) => mapAmazonEC2Error(error, { ...where, secrets });
}

/** Maps an AWS SDK error onto the core's typed errors, keeping the request id, status and AWS code. */
export function mapAmazonEC2Error(
  error: unknown,
  where: { machine?: string; operation?: string; secrets?: readonly string[] } = {},
): MachineError {
  if (MachineError.isInstance(error)) return error;
  const aws = (typeof error === 'object' && error !== null ? error : {}) as AwsErrorLike;
  const code = aws.name ?? 'Error';
  const message = aws.message ?? String(error);
  const base = {
    ...(where.machine === undefined ? {} : { machine: where.machine }),
    ...(where.operation === undefined ? {} : { operation: where.operation }),
    secrets: where.secrets ?? [],
    cause: error,
  };
  const requestId = aws.$metadata?.requestId;
  const statusCode = aws.$metadata?.httpStatusCode;
  const tagged = `${code}: ${message}${requestId === undefined ? '' : ` [request id ${requestId}]`}`;

  if (code === 'AbortError' || code === 'CancelledError') return new CancelledError('the operation was cancelled', base);
  if (code === 'CredentialsProviderError') {
    return new AuthError(`no AWS credentials found; looked in ${credentialSources}`, {
      ...base,
      hint: 'run `aws configure`, `aws sso login`, set AWS_PROFILE, or pass --amazonec2-access-key and --amazonec2-secret-key',
    });
  }
  if (authCodes.has(code)) {
    return new AuthError(`AWS refused the credentials or the permission: ${tagged}`, {
      ...base,
      hint: code === 'UnauthorizedOperation' ? 'the IAM identity lacks an EC2 permission named in the message' : 'check the access key, the profile or the session token expiry',
    });
  }
  if (capacityCodes.has(code)) {
    return new CapacityError(`EC2 has no capacity for the request: ${tagged}`, {
      ...base,
      providerCode: code,
      hint: 'try another zone (--amazonec2-zone) or instance type (--amazonec2-instance-type), or later',
    });
  }
  if (quotaCodes.has(code)) return new QuotaError(`AWS limit reached: ${tagged}`, base);
  if (code.endsWith('.NotFound') || code === 'ParameterNotFound') {
    const resource = code.replace(/\.NotFound$/, '');
    const userInput = resource !== 'InvalidInstanceID' && (where.operation === 'create' || where.operation === 'preCreateCheck');
    return new NotFoundError(tagged, { ...base, resource, ...(userInput ? { hint: 'check the id or name you passed and the region' } : {}) });
  }
  if (code === 'UnsupportedOperation') {
    return new NotSupportedError(`EC2 does not support this for the instance: ${tagged}`, {
      ...base,
      ...(message.includes('Spot') ? { hint: 'one-time spot instances cannot be stopped; remove and re-create instead' } : {}),
    });
  }
  if (throttlingCodes.has(code)) {
    return new ProviderError(`AWS throttled the requests even after retries: ${message}`, {
      ...base,
      providerCode: code,
      retryable: true,
      ...(requestId === undefined ? {} : { requestId }),
      ...(statusCode === undefined ? {} : { statusCode }),
      hint: 'raise --amazonec2-retries or run fewer commands at once',
    });
  }
  return new ProviderError(`${code}: ${message}`, {
    ...base,
    providerCode: code,
    ...(requestId === undefined ? {} : { requestId }),
    ...(statusCode === undefined ? {} : { statusCode }),
  });
}

/** Turns a failed SDK waiter into a core error: timeout, abort or the state that made it fail. */
export function mapWaiterError(error: unknown, what: string, where: { machine: string; operation: string; timeoutSeconds: number }): MachineError {
  const name = (error as { name?: string } | undefined)?.name;
  if (name === 'TimeoutError') {
    return new TimeoutError(`gave up waiting for ${what} after ${where.timeoutSeconds} s${lastObserved(error)}`, {
      machine: where.machine,
      operation: where.operation,
      hint: 'raise --amazonec2-wait-timeout, or look at the instance in the EC2 console',
    });
  }
  if (name === 'AbortError') return new CancelledError('the operation was cancelled', { machine: where.machine, operation: where.operation });
  if (MachineError.isInstance(error)) return error;
  return new ProviderError(`${what} did not happen: the instance reached a state it cannot leave${lastObserved(error)}`, {
    machine: where.machine,
    operation: where.operation,
    cause: error,
  });
}

function lastObserved(error: unknown): string {
  const text = error instanceof Error ? error.message : '';
  try {
    const parsed = JSON.parse(text) as { observedResponses?: Record<string, number> };
    const seen = Object.keys(parsed.observedResponses ?? {});
    const last = seen.at(-1);
    return last === undefined ? '' : `; last response: ${last.slice(0, 200)}`;
  } catch {
    return '';
  }
}
