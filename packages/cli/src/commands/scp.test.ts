import { describe, expect, it } from 'vitest';
import { parseLocation } from './scp.ts';

describe('scp locations', () => {
  it('parses [[user@]machine:]path', () => {
    expect(parseLocation('web1:/etc/hosts')).toEqual({ kind: 'remote', machine: 'web1', path: '/etc/hosts' });
    expect(parseLocation('ubuntu@web1:notes.txt')).toEqual({ kind: 'remote', machine: 'web1', user: 'ubuntu', path: 'notes.txt' });
    expect(parseLocation('web1:')).toEqual({ kind: 'remote', machine: 'web1', path: '.' });
  });

  it('treats plain paths and localhost: as local', () => {
    expect(parseLocation('./file.txt')).toEqual({ kind: 'local', path: './file.txt' });
    expect(parseLocation('/tmp/a:b')).toEqual({ kind: 'local', path: '/tmp/a:b' });
    expect(parseLocation('localhost:/tmp/x')).toEqual({ kind: 'local', path: '/tmp/x' });
  });
});
