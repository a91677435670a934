import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthError, createMemoryContext, parseFlags } from '@machine/driver-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import google, { googleFlags } from './index.ts';

describe('Application Default Credentials', () => {
  let emptyConfig: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    emptyConfig = await mkdtemp(join(tmpdir(), 'gcloud-empty-'));
    process.env.CLOUDSDK_CONFIG = emptyConfig; // no gcloud ADC file here
    process.env.METADATA_SERVER_DETECTION = 'none'; // never probe the metadata server
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
  });
  afterAll(async () => {
    process.env = saved;
    await rm(emptyConfig, { recursive: true, force: true });
  });

  it('with none anywhere, the first operation fails with one AuthError naming every place looked (real client library)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const name = 'no-creds';
      const context = createMemoryContext(name, join(emptyConfig, name));
      // https to a closed loopback port: nothing could leave the machine even if auth went through.
      const config = parseFlags(googleFlags, { 'google-project': 'my-project', 'google-endpoint': 'https://127.0.0.1:1' }, { env: {} });
      const driver = google.createDriver({ config, context });
      const error = await driver.create().catch((caught: unknown) => caught);
      expect(context.journal.entries()).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(error).toBeInstanceOf(AuthError);
      const message = (error as AuthError).message;
      expect(message).toContain('GOOGLE_APPLICATION_CREDENTIALS');
      expect(message).toContain('application_default_credentials.json');
      expect(message).toContain('gcloud auth application-default login');
      expect(message).toContain('metadata server');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
