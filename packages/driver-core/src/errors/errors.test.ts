import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../redact.ts';
import {
  AuthError,
  CancelledError,
  CleanupError,
  InvalidConfigError,
  MachineError,
  NotFoundError,
  NotSupportedError,
  ProviderError,
  QuotaError,
  SSHError,
  TimeoutError,
} from './index.ts';

describe('typed errors', () => {
  it('every error type has its code, its name, and is recognised by isInstance', () => {
    const errors: [MachineError, string][] = [
      [new NotFoundError('droplet 1 not found'), 'NOT_FOUND'],
      [new AuthError('bad token'), 'AUTH'],
      [new QuotaError('droplet limit reached'), 'QUOTA'],
      [new InvalidConfigError([{ flag: 'x', message: 'bad' }]), 'INVALID_CONFIG'],
      [new TimeoutError('too slow'), 'TIMEOUT'],
      [new ProviderError('boom'), 'PROVIDER'],
      [new NotSupportedError('no'), 'NOT_SUPPORTED'],
      [new CancelledError(), 'CANCELLED'],
      [new SSHError('refused', { failure: 'refused' }), 'SSH'],
      [new CleanupError([], []), 'CLEANUP'],
    ];
    for (const [error, code] of errors) {
      expect(error.code).toBe(code);
      expect(MachineError.isInstance(error)).toBe(true);
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe(error.constructor.name);
    }
    expect(MachineError.isInstance(new Error('plain'))).toBe(false);
    expect(MachineError.isInstance({ code: 'NOT_FOUND' })).toBe(false);
  });

  it('names the machine, the operation and the hint in the message', () => {
    const error = new AuthError('the token was refused', { machine: 'web1', operation: 'create', hint: 'set DIGITALOCEAN_ACCESS_TOKEN' });
    expect(error.message).toBe('machine "web1": create: the token was refused (set DIGITALOCEAN_ACCESS_TOKEN)');
    expect(error.detail).toBe('the token was refused');
  });

  it('never shows secrets, given or shaped like credentials', () => {
    const token = `dop_v1_${'a'.repeat(64)}`;
    const error = new ProviderError(`request with ${token} and key AKIAABCDEFGHIJKLMNOP failed; secret_access_key=abc123 Bearer abcdefghijklmnop`, {
      secrets: ['my-passphrase'],
      hint: 'passphrase my-passphrase is wrong',
    });
    expect(error.message).not.toContain(token);
    expect(error.message).not.toContain('AKIAABCDEFGHIJKLMNOP');
    expect(error.message).not.toContain('abc123');
    expect(error.message).not.toContain('abcdefghijklmnop');
    expect(error.message).not.toContain('my-passphrase');
    expect(error.message).toContain('secret_access_key=[REDACTED]');
  });

  it('redacts private keys in any text', () => {
    const text = 'key: -----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY----- end';
    expect(redactSecrets(text)).toBe('key: [REDACTED] end');
  });

  it('ProviderError keeps the request id, status and cause; 5xx are retryable', () => {
    const cause = new Error('sdk');
    const error = new ProviderError('internal error', { requestId: 'req-1', statusCode: 503, providerCode: 'Unavailable', cause });
    expect(error.message).toContain('[request id req-1]');
    expect(error.cause).toBe(cause);
    expect(error.isRetryable).toBe(true);
    expect(new ProviderError('bad', { statusCode: 400 }).isRetryable).toBe(false);
  });

  it('SSHError is retryable only for refused connections and handshakes', () => {
    expect(new SSHError('x', { failure: 'refused' }).isRetryable).toBe(true);
    expect(new SSHError('x', { failure: 'auth' }).isRetryable).toBe(false);
    expect(new SSHError('x', { failure: 'host-key' }).isRetryable).toBe(false);
  });

  it('CleanupError lists what is left and how to retry', () => {
    const error = new CleanupError(
      [{ kind: 'ssh-key', id: 'k1', preExisting: false, recordedAt: '' }],
      [new Error('503 from API')],
      { machine: 'web1', operation: 'remove' },
    );
    expect(error.message).toContain('could not delete ssh-key k1: 503 from API');
    expect(error.message).toContain('machine rm');
  });
});

describe('isInstance per error class', () => {
  it('matches only its own class (and subclasses), MachineError matches all, detached calls work', () => {
    const notFound = new NotFoundError('gone');
    expect(NotFoundError.isInstance(notFound)).toBe(true);
    expect(InvalidConfigError.isInstance(notFound)).toBe(false);
    expect(AuthError.isInstance(new QuotaError('q'))).toBe(false);
    expect(MachineError.isInstance(notFound)).toBe(true);
    const { isInstance } = MachineError;
    expect([notFound, new Error('x')].filter(isInstance)).toEqual([notFound]);
    // A copy of the class from another package copy is recognised by name and marker.
    const foreign = { [Symbol.for('@machine/driver-core.error')]: true, name: 'NotFoundError', message: 'gone' };
    expect(NotFoundError.isInstance(foreign)).toBe(true);
  });
});
