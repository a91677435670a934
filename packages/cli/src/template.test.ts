import { describe, expect, it } from 'vitest';
import { alignColumns, parseTemplate } from './template.ts';

const host = { Name: 'web1', State: 'Running', Driver: { IPAddress: '10.0.0.1', SSHPort: 22, Tags: ['a', 'b'] }, Empty: null };

describe('Go template subset', () => {
  it('renders fields, nested fields and the dot', () => {
    expect(parseTemplate('{{.Name}} is {{ .State }}').render(host)).toBe('web1 is Running');
    expect(parseTemplate('{{.Driver.IPAddress}}:{{.Driver.SSHPort}}').render(host)).toBe('10.0.0.1:22');
    expect(parseTemplate('{{.}}').render('x')).toBe('x');
  });

  it('prints <no value> for missing fields, like Go', () => {
    expect(parseTemplate('{{.Nope}}|{{.Driver.Nope.Deeper}}|{{.Empty}}').render(host)).toBe('<no value>|<no value>|<no value>');
  });

  it('has json, prettyjson, upper and lower', () => {
    expect(parseTemplate('{{json .Driver.Tags}}').render(host)).toBe('["a","b"]');
    expect(parseTemplate('{{json .Name}}').render(host)).toBe('"web1"');
    expect(parseTemplate('{{prettyjson .Driver.Tags}}').render(host)).toBe('[\n    "a",\n    "b"\n]');
    expect(parseTemplate('{{upper .Name}}-{{lower "ABC"}}').render(host)).toBe('WEB1-abc');
  });

  it('unescapes \\t and \\n, and makes table formats with headers', () => {
    const template = parseTemplate('table {{.Name}}\\t{{.State}}');
    expect(template.table).toBe(true);
    expect(template.header({ Name: 'NAME' })).toBe('NAME\tSTATE');
    expect(template.render(host)).toBe('web1\tRunning');
    expect(parseTemplate('{{.Name}}\\n').render(host)).toBe('web1\n');
  });

  it('reports syntax errors clearly', () => {
    expect(() => parseTemplate('{{.Name')).toThrow('template: unclosed action');
    expect(() => parseTemplate('{{frob .Name}}')).toThrow('template: function "frob" not defined');
    expect(() => parseTemplate('{{json}}')).toThrow('template: json takes one argument');
    expect(() => parseTemplate('{{.Name .State}}')).toThrow('template: unexpected ".State"');
    expect(() => parseTemplate('{{}}')).toThrow('template: empty action');
  });

  it('aligns columns like the reference tabwriter (min width 5, padding 3)', () => {
    expect(alignColumns(['NAME\tSTATE\tURL', 'a\tRunning\ttcp://x', 'longer-name\tStopped\t'])).toBe(
      ['NAME          STATE     URL', 'a             Running   tcp://x', 'longer-name   Stopped'].join('\n'),
    );
  });
});
