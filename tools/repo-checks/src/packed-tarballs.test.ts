import { describe, expect, it } from 'vitest';
import { importedSpecifiers, packageOfSpecifier } from './packed-tarballs.ts';

describe('importedSpecifiers', () => {
  it('finds static imports, re-exports, side-effect imports and import() of bare specifiers only', () => {
    const source = [
      "import { a } from '@scope/pkg/sub';",
      "import b from \"plain\";",
      "export { c } from 'reexported';",
      "export * from './local.js';",
      "import 'side-effect';",
      "const d = await import('lazy/deep/path');",
      "const e = await import('../relative.js');",
      "import {",
      "  f,",
      "} from 'multi-line';",
      "const message = 'not an import from here';",
    ].join('\n');
    expect(importedSpecifiers(source).sort()).toEqual(['@scope/pkg/sub', 'lazy/deep/path', 'multi-line', 'plain', 'reexported', 'side-effect']);
  });

  it('names the package of a specifier', () => {
    expect(packageOfSpecifier('@scope/pkg/sub/path')).toBe('@scope/pkg');
    expect(packageOfSpecifier('lazy/deep')).toBe('lazy');
    expect(packageOfSpecifier('ssh2')).toBe('ssh2');
  });
});
