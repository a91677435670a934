import { describe, expect, it } from 'vitest';
import { combineUserData, userDataContentType } from './user-data.ts';

describe('userDataContentType', () => {
  it.each([
    ['#cloud-config\npackages: [git]', 'text/cloud-config'],
    ['#!/bin/sh\necho hi', 'text/x-shellscript'],
    ['#cloud-boothook\necho', 'text/cloud-boothook'],
    ['#include\nhttps://example.com/a', 'text/x-include-url'],
    ['Content-Type: multipart/mixed; boundary="x"\n', 'multipart/mixed'],
    ['plain words', 'text/plain'],
  ])('%j is %s', (content, type) => {
    expect(userDataContentType(content)).toBe(type);
  });
});

describe('combineUserData', () => {
  it('returns undefined for nothing and a single piece unchanged', () => {
    expect(combineUserData([undefined, '  '])).toBeUndefined();
    expect(combineUserData(['#cloud-config\na: 1\n', undefined])).toBe('#cloud-config\na: 1\n');
  });

  it('makes one multipart archive with a typed part per piece', () => {
    const combined = combineUserData(['#cloud-config\nruncmd: [x]\n', '#!/bin/bash\necho user']) ?? '';
    const boundary = /boundary="([^"]+)"/.exec(combined)?.[1] ?? '';
    expect(boundary).not.toBe('');
    const sections = combined.split(`--${boundary}`);
    // preamble, two parts, closing "--\n"
    expect(sections).toHaveLength(4);
    expect(sections[1]).toContain('Content-Type: text/cloud-config');
    expect(sections[1]).toContain('\n\n#cloud-config\nruncmd: [x]\n');
    expect(sections[1]).toContain('Merge-Type: list(append)+dict(no_replace,recurse_list)+str()');
    expect(sections[2]).toContain('Content-Type: text/x-shellscript');
    expect(sections[2]).not.toContain('Merge-Type');
    expect(sections[2]).toContain('\n\n#!/bin/bash\necho user\n');
    expect(sections[3]).toBe('--\n');
  });

  it('embeds a piece that is already MIME with its own headers', () => {
    const inner = 'Content-Type: multipart/mixed; boundary="inner"\nMIME-Version: 1.0\n\n--inner\nContent-Type: text/x-shellscript\n\n#!/bin/sh\n--inner--\n';
    const combined = combineUserData(['#cloud-config\n{}', inner]) ?? '';
    expect(combined).toContain(`\n${inner.trimEnd()}\n`);
    expect(combined.match(/Content-Type: multipart\/mixed/g)).toHaveLength(2);
  });
});
