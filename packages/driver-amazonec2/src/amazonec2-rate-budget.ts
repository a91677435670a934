import type { EC2Client } from '@aws-sdk/client-ec2';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { accountFingerprint, type RateBucket, type RateLimit, rateBudget } from '@machine/driver-core';

/**
 * EC2's request throttling ("Request throttling for the Amazon EC2 API"): token buckets per account
 * and region, sized by the kind of action. EC2 keeps one bucket per API of each kind; the budget
 * keeps one per kind, which is stricter (a Describe of groups and one of instances share 100 tokens
 * here), never looser.
 */
export type AmazonEC2RateCategory = 'non-mutating' | 'unfiltered' | 'mutating' | 'resource-intensive' | 'launch' | 'ssm';

/** Real-cloud limits of each category: the request buckets of EC2's documentation, SSM's GetParameter rate. */
export const amazonEC2RateLimits: Readonly<Record<AmazonEC2RateCategory, RateLimit>> = {
  // Describe*, Get*, List*, Search*: 100 tokens, 20 a second.
  'non-mutating': { burst: 100, perSecond: 20 },
  // A non-mutating call with no filter, no id and no page size: 50 tokens, 10 a second.
  unfiltered: { burst: 50, perSecond: 10 },
  // Every other action (Create*, Delete*, Import*, Modify*, tags): 50 tokens, 5 a second.
  mutating: { burst: 50, perSecond: 5 },
  // Resource-intensive actions: 50 tokens, 5 a second.
  'resource-intensive': { burst: 50, perSecond: 5 },
  // RunInstances and StartInstances are resource-intensive requests whose instances also draw from
  // a resource bucket refilled at 2 instances a second (1 000 tokens): the slower refill binds.
  launch: { burst: 50, perSecond: 2 },
  // SSM GetParameter (the default AMI lookup): 40 transactions a second.
  ssm: { burst: 40, perSecond: 40 },
};

/** EC2's resource-intensive actions (of those a docker-machine driver sends, and their neighbours). */
const RESOURCE_INTENSIVE = new Set([
  'AuthorizeSecurityGroupIngress',
  'RevokeSecurityGroupIngress',
  'CancelSpotInstanceRequests',
  'CreateKeyPair',
  'RequestSpotInstances',
  'StopInstances',
  'TerminateInstances',
  'RebootInstances',
  'CreateImage',
  'CopyImage',
  'CreateSnapshot',
  'CreateVolume',
]);
const LAUNCH = new Set(['RunInstances', 'StartInstances']);
/** Input fields that do not narrow what a non-mutating call reads. */
const NOT_A_FILTER = new Set(['DryRun', 'NextToken']);

/** The category an EC2 action counts against; `input` tells a filtered Describe from an unfiltered one. */
export function amazonEC2RateCategory(action: string, input?: object): Exclude<AmazonEC2RateCategory, 'ssm'> {
  if (LAUNCH.has(action)) return 'launch';
  if (RESOURCE_INTENSIVE.has(action)) return 'resource-intensive';
  if (!/^(Describe|Get|List|Search)/.test(action)) return 'mutating';
  const narrowed = Object.entries(input ?? {}).some(([name, value]) => !NOT_A_FILTER.has(name) && value !== undefined && !(Array.isArray(value) && value.length === 0));
  return narrowed ? 'non-mutating' : 'unfiltered';
}

/**
 * The shared budget of one EC2 (or SSM) request: `amazonec2:<account>:<region>:<category>`.
 * `account` is the AWS account id when the credentials say it, otherwise the access key id; it is
 * fingerprinted, never in clear. SSM calls go in their own `ssm` bucket.
 */
export function amazonEC2RateBucket(account: string, region: string, action: string, input?: object, service: 'ec2' | 'ssm' = 'ec2'): RateBucket {
  const category = service === 'ssm' ? 'ssm' : amazonEC2RateCategory(action, input);
  return { key: `amazonec2:${accountFingerprint(account)}:${region}:${category}`, limit: amazonEC2RateLimits[category] };
}

/** What the SDK's error says: EC2 throttles with 503 `RequestLimitExceeded`, SSM with 400 `ThrottlingException`. */
export function isAmazonEC2Throttle(error: unknown): boolean {
  const { name, $metadata } = (error ?? {}) as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  return (
    name === 'RequestLimitExceeded' ||
    name === 'Throttling' ||
    name === 'ThrottlingException' ||
    name === 'TooManyRequestsException' ||
    $metadata?.httpStatusCode === 503
  );
}

/** The name the middleware has in the client's stack. */
export const rateBudgetMiddlewareName = 'machineRateBudgetMiddleware';

/** What a finalizeRequest middleware gets: the command's input and the HTTP request. */
interface FinalizeArguments {
  input: object;
  request: unknown;
}

/** The part of the SDK's handler context the middleware reads (`__smithy_context` is the SDK's SMITHY_CONTEXT_KEY). */
interface HandlerContext {
  commandName?: string;
  __smithy_context?: {
    abortSignal?: AbortSignal;
    selectedHttpAuthScheme?: { identity?: { accessKeyId?: unknown; accountId?: unknown } };
  };
}

/**
 * Meters a client's requests with the process's rate budget ({@link rateBudget}): before every
 * attempt it takes a slot of the request's bucket, and a throttled answer is fed back. The
 * middleware sits in the `finalizeRequest` step right before `httpSigningMiddleware`, which the SDK
 * places after `retryMiddleware`: the retry middleware calls everything after it once per attempt,
 * so each attempt (first try, SDK retry, waiter poll) passes here once, and the request is signed
 * after its wait (a signature is only good for minutes). With no budget configured it only calls on.
 * The driver meters the clients it builds; a host that injects its own may call this on them.
 */
export function addRateBudgetMiddleware(client: EC2Client | SSMClient, service: 'ec2' | 'ssm' = 'ec2'): void {
  const region = client.config.region;
  const credentials = client.config.credentials as (() => Promise<{ accessKeyId: string; accountId?: string }>) | undefined;
  const middleware =
    (next: (args: FinalizeArguments) => Promise<unknown>, context: HandlerContext) =>
    async (args: FinalizeArguments): Promise<unknown> => {
      const budget = rateBudget();
      if (budget === undefined) return next(args);
      const { commandName = '', __smithy_context: smithy } = context;
      const identity = smithy?.selectedHttpAuthScheme?.identity ?? (await credentials?.());
      const account = String(identity?.accountId ?? identity?.accessKeyId ?? 'anonymous');
      const bucket = amazonEC2RateBucket(account, await region(), commandName.replace(/Command$/, ''), args.input, service);
      await budget.take(bucket, smithy?.abortSignal);
      try {
        return await next(args);
      } catch (error) {
        if (isAmazonEC2Throttle(error)) await budget.observe(bucket, { throttled: true });
        throw error;
      }
    };
  // The stack's parameter is a union of every step's middleware type, which TypeScript cannot infer
  // a function against; this one is a finalizeRequest middleware (arguments: input and request).
  type Stack = EC2Client['middlewareStack'];
  (client.middlewareStack as unknown as Stack).addRelativeTo(middleware as unknown as Parameters<Stack['addRelativeTo']>[0], {
    name: rateBudgetMiddlewareName,
    relation: 'before',
    toMiddleware: 'httpSigningMiddleware',
    override: true,
  });
}
