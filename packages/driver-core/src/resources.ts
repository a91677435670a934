import { randomBytes } from 'node:crypto';
import type { DriverContext, OperationOptions } from './driver.ts';
import { CancelledError } from './errors/cancelled-error.ts';
import { MachineError } from './errors/machine-error.ts';
import { ProviderError } from './errors/provider-error.ts';
import { assertValidMachineName } from './machine-name.ts';
import { intentQuery, type KindOperations, type RemoveSettings, removeEntries } from './resource-removal.ts';
import { throwIfAborted } from './wait.ts';

/** A resource as the journal keeps it: the provider's id, and what deleting it needs. */
export interface ResourceRef {
  readonly id: string;
  readonly region?: string;
  readonly meta?: Readonly<Record<string, string>>;
}

/** What a kind's `create` returns: the new resource, plus any it made alongside (a spot request made by RunInstances). */
export interface MadeResource extends ResourceRef {
  readonly also?: readonly { readonly kind: string; readonly ref: ResourceRef }[];
}

/** A resource a kind's `find` saw at the provider. */
export interface FoundResource extends ResourceRef {
  /** Its name at the provider, for reports. */
  readonly name?: string;
  /** When the provider made it (sweep shows the age and honours `minAgeMs`). */
  readonly createdAt?: Date;
  /** The intent token it carries, when the provider shows it (sweep keeps what a record's intent claims). */
  readonly token?: string;
  /** The machine it was made for, when the provider shows it. */
  readonly machineName?: string;
}

/** What core passes to every call of a kind. */
export interface ResourceCall {
  readonly machineName: string;
  /** Aborts the call; rollback and remove get a fresh one. */
  readonly signal: AbortSignal;
  /**
   * Unique per create call and journaled before it runs: put it in the resource's name, a tag or
   * the provider's idempotency token (EC2 `ClientToken`, Google `requestId`), so `find` can tell
   * what this call made. 8 lowercase hex characters.
   */
  readonly token: string;
  /** The managed-by value every resource carries (`machine`, or `machine-<storeId>`): see {@link managedByValue}. */
  readonly managedBy: string;
}

/**
 * What to look for at the provider. For an intent (a create whose reply was lost) `machineName`,
 * `token`, `since` and `meta` are set; for sweep only `managedBy` is.
 */
export interface ResourceQuery {
  readonly managedBy: string;
  readonly machineName?: string;
  readonly token?: string;
  /** The intent's time minus five minutes of clock skew: nothing older can be what it made. */
  readonly since?: Date;
  /** What `intent()` journaled for it (a deterministic name). */
  readonly meta?: Readonly<Record<string, string>>;
}

/** How a kind's errors read; each predicate has a default (see {@link defaultResourceErrors}). */
export interface ResourceErrors {
  /** A delete that fails this way found the resource already gone: done. Default: a NOT_FOUND MachineError. */
  gone?(error: unknown): boolean;
  /** The resource is still in use (a group while its instance terminates): the delete is retried until `timeouts.delete`. Default: never. */
  inUse?(error: unknown): boolean;
  /** A concurrent create of the same name won: `find` answers the one to adopt as shared. Default: never. */
  exists?(error: unknown): boolean;
  /** The create may have happened although it failed: `find` decides. Default: {@link isAmbiguousFailure}. */
  ambiguous?(error: unknown): boolean;
}

/**
 * One kind of provider resource, declared once; core runs create (with a write-ahead intent),
 * rollback, remove and sweep from it. `Spec` is what the driver's create step passes to `make`.
 */
export interface ResourceKind<Client, Spec = void> {
  /** The journal kind, e.g. `security-group`. */
  readonly kind: string;
  /** Words for progress and errors, e.g. `security group`. */
  readonly label: string;
  /** The progress step of its create (default `create-<kind>`). */
  readonly step?: string;
  /** Kinds removed before this one (`['instance']` for a group the instance is in); otherwise newest first. */
  readonly deleteAfter?: readonly string[];
  /** ms: how long a delete may be refused as in use, and how long it may take to be gone (default 300 000 each). */
  readonly timeouts?: { readonly delete?: number };
  /** Makes the resource; runs after its intent is durable. */
  create?(client: Client, spec: Spec, call: ResourceCall): Promise<MadeResource>;
  /** The progress line of its create (default `creating <label>`). */
  describe?(spec: Spec, call: ResourceCall): string;
  /** Extra data journaled with the intent, e.g. the name `create` will use. */
  intent?(spec: Spec, call: ResourceCall): Readonly<Record<string, string>>;
  /** Deletes it; a `gone` error counts as done. */
  delete(client: Client, ref: ResourceRef, call: ResourceCall): Promise<void>;
  /** True once it no longer exists (where deletion is asynchronous, core polls this until `timeouts.delete`). */
  isGone?(client: Client, ref: ResourceRef, call: ResourceCall): Promise<boolean>;
  /** What matches the query at the provider: what a lost reply made (by token), or everything managed (sweep). */
  find?(client: Client, query: ResourceQuery, call: ResourceCall): Promise<readonly FoundResource[]>;
  /** What else uses a shared resource; non-empty keeps it. */
  usedBy?(client: Client, ref: ResourceRef, call: ResourceCall): Promise<readonly string[]>;
  readonly errors?: ResourceErrors;
}

/** A kind of any spec (the runner's `make` is typed per kind). */
// biome-ignore lint/suspicious/noExplicitAny: a list of kinds with different specs; each spec is checked where `make` is called.
export type AnyResourceKind<Client> = ResourceKind<Client, any>;

/** A driver's resources: its kinds and a lazily built client. */
export interface ResourceModel<Client> {
  readonly kinds: readonly AnyResourceKind<Client>[];
  /** The SDK client (built on first use; may be the injected one). Remove with nothing to delete never calls it. */
  client(): Promise<Client>;
  /** Poll timing of in-use retries and gone checks (default 1 s, backing off to 10 s); tests shrink it. */
  readonly poll?: { readonly interval?: number; readonly maxInterval?: number };
  /** Turns what a kind throws into a typed error (default: MachineErrors pass, others become ProviderError). */
  mapError?(error: unknown, where: { machine: string; operation: string; resource: string }): MachineError;
}

/** What a driver's create body gets from {@link createResources}. */
export interface ResourceRunner<Client> {
  readonly client: Client;
  readonly signal: AbortSignal;
  /**
   * Journals an intent for `kind`, runs its `create`, and journals the id it answers. When the call
   * fails ambiguously (5xx, timeout, dropped connection), asks `find` what it made and carries on
   * with that: a lost reply never makes a twin and rollback deletes what it made.
   */
  make<Spec>(kind: ResourceKind<Client, Spec>, spec: Spec): Promise<ResourceRef>;
  /** Journals what the user named (never deleted) or, with `shared`, one another machine may use too (deleted by its last user). */
  adopt(kind: AnyResourceKind<Client>, ref: ResourceRef, options?: { shared?: boolean }): Promise<ResourceRef>;
}

/** Options of {@link createResources} and {@link removeResources}. */
export interface ResourceOperationOptions extends OperationOptions {
  /** The operation named in errors (default `create` / `remove`). */
  operation?: string;
}

/** The managed-by value resources carry: `machine`, or `machine-<storeId>` when the host names its store. */
export function managedByValue(storeId?: string): string {
  if (storeId === undefined) return 'machine';
  if (!/^[a-z0-9]{1,32}$/.test(storeId)) throw new Error(`store id "${storeId}" must be 1-32 lowercase letters and digits`);
  return `machine-${storeId}`;
}

/** A fresh intent token: 8 lowercase hex characters. */
export function newIntentToken(): string {
  return randomBytes(4).toString('hex');
}

/**
 * True when a failed create call may still have made its resource: no answer (a dropped connection,
 * a timeout, an abort while in flight), a 408 or a 5xx. An answered 4xx, auth or quota error is
 * a definite failure.
 */
export function isAmbiguousFailure(error: unknown): boolean {
  if (!MachineError.isInstance(error)) return true;
  if (error.code === 'CANCELLED' || error.code === 'TIMEOUT') return true;
  if (error.code !== 'PROVIDER') return false;
  const status = (error as ProviderError).statusCode;
  return status === undefined || status === 408 || status >= 500;
}

/** The defaults of {@link ResourceErrors}. */
export const defaultResourceErrors: Required<ResourceErrors> = {
  gone: (error) => MachineError.isInstance(error) && error.code === 'NOT_FOUND',
  inUse: () => false,
  exists: () => false,
  ambiguous: isAmbiguousFailure,
};

const neverAborted = new AbortController().signal;

/**
 * Runs a driver's create body with a {@link ResourceRunner}. If the body throws (or is aborted),
 * removes everything the journal holds (resolving intents first), newest first, then rethrows the
 * original error with the cleanup failure, if any, as `cleanupError`.
 */
export async function createResources<Client, T>(
  model: ResourceModel<Client>,
  context: DriverContext,
  options: ResourceOperationOptions,
  body: (run: ResourceRunner<Client>) => Promise<T>,
): Promise<T> {
  assertValidMachineName(context.machineName);
  const operation = options.operation ?? 'create';
  const where = { machine: context.machineName, operation };
  const signal = options.signal ?? neverAborted;
  throwIfAborted(signal, where);
  try {
    const client = await model.client();
    const managedBy = managedByValue(context.storeId);
    const run: ResourceRunner<Client> = {
      client,
      signal,
      make: (kind, spec) => make(model, context, client, { kind, spec, signal, managedBy, operation }),
      adopt: async (kind, ref, adoptOptions = {}) => {
        const shared = adoptOptions.shared === true;
        await context.journal.record({
          kind: kind.kind,
          id: ref.id,
          ...(ref.region === undefined ? {} : { region: ref.region }),
          ...(ref.meta === undefined ? {} : { meta: ref.meta }),
          preExisting: !shared,
          state: 'made',
          ...(shared ? { shared } : {}),
        });
        return ref;
      },
    };
    return await body(run);
  } catch (error) {
    try {
      await removeResources(model, context, { operation });
    } catch (cleanupError) {
      if (error instanceof Error) Object.assign(error, { cleanupError });
    }
    throw error;
  }
}

/**
 * Deletes every journaled resource, forgetting each as it goes: intents are resolved through
 * `find` first; pre-existing resources are only forgotten; shared ones are deleted only when
 * `usedBy` answers nothing; deletes follow `deleteAfter`, else newest first; an in-use refusal is
 * retried and an asynchronous delete is polled until `isGone`, both up to `timeouts.delete`.
 * Throws one CleanupError listing every resource left and why; succeeds only when all are gone.
 */
export async function removeResources<Client>(
  model: ResourceModel<Client>,
  context: DriverContext,
  options: ResourceOperationOptions = {},
): Promise<void> {
  const operation = options.operation ?? 'remove';
  const settings: RemoveSettings = {
    machine: context.machineName,
    operation,
    signal: options.signal ?? neverAborted,
    managedBy: managedByValue(context.storeId),
    ...(context.onProgress === undefined ? {} : { onProgress: context.onProgress }),
    ...(model.poll === undefined ? {} : { poll: model.poll }),
  };
  let client: Promise<Client> | undefined;
  const lazyClient = () => {
    client ??= model.client();
    return client;
  };
  const byKind = new Map(model.kinds.map((kind) => [kind.kind, bindKind(model, kind, lazyClient, settings)]));
  await removeEntries(context.journal, (kind) => byKind.get(kind), settings);
}

/** Turns a kind and a lazy client into the client-free operations the removal engine runs. */
export function bindKind<Client>(
  model: ResourceModel<Client>,
  kind: AnyResourceKind<Client>,
  client: () => Promise<Client>,
  settings: Pick<RemoveSettings, 'machine' | 'operation'>,
): KindOperations {
  const errors = { ...defaultResourceErrors, ...kind.errors };
  // Runs one call of the kind and turns what it throws into a typed error naming the resource.
  const typed = async <R>(resource: string, run: (c: Client) => Promise<R>): Promise<R> => {
    const c = await client();
    try {
      return await run(c);
    } catch (error) {
      throw typedError(model as ResourceModel<unknown>, error, { machine: settings.machine, operation: settings.operation, resource });
    }
  };
  const named = (ref: ResourceRef) => `${kind.label} ${ref.id}`;
  const { find, isGone, usedBy } = kind;
  const causeOf = (error: unknown) => (error as { cause?: unknown } | null)?.cause;
  return {
    kind: kind.kind,
    label: kind.label,
    ...(kind.deleteAfter === undefined ? {} : { deleteAfter: kind.deleteAfter }),
    ...(kind.timeouts?.delete === undefined ? {} : { deleteTimeout: kind.timeouts.delete }),
    // Predicates see both the mapped error and what it wraps: kinds may test either.
    gone: (error) => errors.gone(error) || errors.gone(causeOf(error)),
    inUse: (error) => errors.inUse(error) || errors.inUse(causeOf(error)),
    delete: (ref, call) => typed(named(ref), (c) => kind.delete(c, ref, call)),
    ...(find === undefined ? {} : { find: (query, call) => typed(`${kind.label}s`, (c) => find.call(kind, c, query, call)) }),
    ...(isGone === undefined ? {} : { isGone: (ref, call) => typed(named(ref), (c) => isGone.call(kind, c, ref, call)) }),
    ...(usedBy === undefined ? {} : { usedBy: (ref, call) => typed(named(ref), (c) => usedBy.call(kind, c, ref, call)) }),
  };
}

interface MakeRequest<Client, Spec> {
  kind: ResourceKind<Client, Spec>;
  spec: Spec;
  signal: AbortSignal;
  managedBy: string;
  operation: string;
}

async function make<Client, Spec>(
  model: ResourceModel<Client>,
  context: DriverContext,
  client: Client,
  request: MakeRequest<Client, Spec>,
): Promise<ResourceRef> {
  const { kind, spec, signal, managedBy, operation } = request;
  const { journal, machineName } = context;
  const where = { machine: machineName, operation };
  throwIfAborted(signal, where);
  if (kind.create === undefined) throw new Error(`resource kind "${kind.kind}" has no create`);
  const token = newIntentToken();
  const call: ResourceCall = { machineName, signal, token, managedBy };
  const meta = { ...kind.intent?.(spec, call), token, at: new Date().toISOString() };
  await journal.record({ kind: kind.kind, id: token, state: 'intended', meta });
  const step = kind.step ?? `create-${kind.kind}`;
  context.onProgress?.({ step, phase: 'start', message: kind.describe?.(spec, call) ?? `creating ${kind.label}` });
  const errors = { ...defaultResourceErrors, ...kind.errors };
  let made: MadeResource;
  let shared = false;
  try {
    made = await kind.create(client, spec, call);
  } catch (raw) {
    const error = typedError(model as ResourceModel<unknown>, raw, { machine: machineName, operation, resource: kind.label });
    const resolved = await resolveFailedCreate(context, client, { kind, call, error, errors, meta });
    if (resolved === undefined) throw error;
    made = resolved.ref;
    shared = resolved.shared;
    context.onProgress?.({ step, phase: 'info', message: `the ${kind.label} call failed (${messageOf(error)}), but it was made: ${kind.label} ${made.id}` });
  }
  await journal.record({
    kind: kind.kind,
    id: made.id,
    ...(made.region === undefined ? {} : { region: made.region }),
    meta: { ...made.meta, token },
    state: 'made',
    ...(shared ? { shared } : {}),
  });
  for (const also of made.also ?? []) {
    await journal.record({ kind: also.kind, id: also.ref.id, ...(also.ref.region === undefined ? {} : { region: also.ref.region }), meta: { ...also.ref.meta, token }, state: 'made' });
  }
  await journal.forget(kind.kind, token);
  context.onProgress?.({ step, phase: 'done', message: `${kind.label} ${made.id}` });
  return { id: made.id, ...(made.region === undefined ? {} : { region: made.region }), meta: { ...made.meta, token } };
}

/**
 * After a failed create call: the resource it made, if `find` shows one; undefined when the call
 * certainly made nothing (the intent is forgotten) or nothing was found (the intent stays, so
 * rollback and remove look again).
 */
async function resolveFailedCreate<Client>(
  context: DriverContext,
  client: Client,
  failure: {
    kind: AnyResourceKind<Client>;
    call: ResourceCall;
    error: unknown;
    errors: Required<ResourceErrors>;
    meta: Readonly<Record<string, string>>;
  },
): Promise<{ ref: MadeResource; shared: boolean } | undefined> {
  const { kind, call, error, errors } = failure;
  const exists = errors.exists(error);
  const ambiguous = !exists && (errors.ambiguous(error) || call.signal.aborted || CancelledError.isInstance(error));
  if (!exists && !ambiguous) {
    await context.journal.forget(kind.kind, call.token);
    return undefined;
  }
  if (kind.find === undefined) return undefined;
  // The caller's signal may be what failed the call: look with a fresh one.
  const lookup: ResourceCall = { ...call, signal: neverAborted };
  const query = intentQuery({ kind: kind.kind, id: call.token, preExisting: false, recordedAt: '', meta: failure.meta }, context.machineName, call.managedBy);
  let found: readonly FoundResource[];
  try {
    found = await kind.find(client, query, lookup);
  } catch {
    return undefined; // the intent stays: remove looks again
  }
  const [first, ...twins] = found;
  if (first === undefined) return undefined;
  // More than one (a retried call the provider did twice): journal all, so remove deletes the twins.
  for (const twin of twins) {
    await context.journal.record({ kind: kind.kind, id: twin.id, ...(twin.region === undefined ? {} : { region: twin.region }), meta: { ...twin.meta, token: call.token }, state: 'made' });
  }
  return { ref: first, shared: exists };
}

function typedError(model: ResourceModel<unknown>, error: unknown, where: { machine: string; operation: string; resource: string }): unknown {
  if (MachineError.isInstance(error)) return error;
  return model.mapError?.(error, where) ?? new ProviderError(error instanceof Error ? error.message : String(error), { ...where, cause: error });
}

function messageOf(error: unknown): string {
  return MachineError.isInstance(error) ? error.detail : error instanceof Error ? error.message : String(error);
}
