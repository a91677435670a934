import { createServer, type Server } from 'node:net';
import { runConformanceSuite } from '@machine/driver-core/conformance';
import noneDriver from './index.ts';

let server: Server;
let url = '';

// The none driver makes no provider resources and offers no SSH or power control: the suite runs
// create → Running (the URL's port answers) → remove → not found, the typed errors on a machine
// never created, and flag validation.
runConformanceSuite(
  'none',
  async () => {
    server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    url = `tcp://127.0.0.1:${address.port}`;
    return {
      descriptor: noneDriver,
      validFlags: { url },
      invalidFlags: { url: 'not a url' },
      leaks: () => [],
      apiCalls: () => 0,
      expectedUrl: () => url,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  },
  { ssh: false, start: false, stop: false, kill: false, restart: false, failCreate: false, abortCreate: false, deleteOutside: false },
);
