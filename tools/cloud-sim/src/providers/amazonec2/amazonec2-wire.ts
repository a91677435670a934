import type { SimRequest, SimResponse } from '../../core/provider-front-end.ts';

/** A parsed Query-protocol request: `Filter.1.Value.2=x` becomes `{ Filter: { 1: { Value: { 2: 'x' } } } }`. */
export type QueryNode = { [key: string]: QueryNode | string };

/** Parses a form-encoded EC2 Query body (or the URL's query for GET) into a tree. */
export function parseQuery(request: SimRequest): QueryNode {
  const params = request.body.length > 0 ? new URLSearchParams(request.body.toString('utf8')) : request.url.searchParams;
  const root: QueryNode = {};
  for (const [key, value] of params) {
    const parts = key.split('.');
    let node = root;
    for (const [index, part] of parts.entries()) {
      if (index === parts.length - 1) {
        node[part] = value;
        break;
      }
      const next = node[part];
      if (typeof next === 'object') node = next;
      else {
        const created: QueryNode = {};
        node[part] = created;
        node = created;
      }
    }
  }
  return root;
}

/** A string parameter (`ImageId`), or undefined. */
export function param(node: QueryNode | undefined, ...path: string[]): string | undefined {
  let current: QueryNode | string | undefined = node;
  for (const part of path) {
    if (typeof current !== 'object') return undefined;
    current = current[part];
  }
  return typeof current === 'string' ? current : undefined;
}

/** A sub-structure (`MetadataOptions`), or undefined. */
export function struct(node: QueryNode | undefined, ...path: string[]): QueryNode | undefined {
  let current: QueryNode | string | undefined = node;
  for (const part of path) {
    if (typeof current !== 'object') return undefined;
    current = current[part];
  }
  return typeof current === 'object' ? current : undefined;
}

/** The members of a flattened list (`InstanceId.1`, `InstanceId.2`), in index order. */
export function members(node: QueryNode | undefined, name: string): (QueryNode | string)[] {
  const list = node?.[name];
  if (typeof list !== 'object') return [];
  return Object.keys(list)
    .filter((key) => /^\d+$/.test(key))
    .sort((a, b) => Number(a) - Number(b))
    .map((key) => list[key] as QueryNode | string);
}

/** String members of a flattened list. */
export function stringMembers(node: QueryNode | undefined, name: string): string[] {
  return members(node, name).filter((value): value is string => typeof value === 'string');
}

/** Structure members of a flattened list. */
export function structMembers(node: QueryNode | undefined, name: string): QueryNode[] {
  return members(node, name).filter((value): value is QueryNode => typeof value === 'object');
}

/** `true`/`false` parameters. */
export function boolParam(node: QueryNode | undefined, ...path: string[]): boolean | undefined {
  const value = param(node, ...path);
  return value === undefined ? undefined : value === 'true';
}

/** Integer parameters. */
export function intParam(node: QueryNode | undefined, ...path: string[]): number | undefined {
  const value = param(node, ...path);
  return value === undefined || !/^-?\d+$/.test(value) ? undefined : Number(value);
}

/** `Filter.N.Name` / `Filter.N.Value.M` as a map of name → values. */
export function filters(node: QueryNode): Map<string, string[]> {
  const result = new Map<string, string[]>();
  for (const filter of structMembers(node, 'Filter')) {
    const name = param(filter, 'Name');
    if (name !== undefined) result.set(name, stringMembers(filter, 'Value'));
  }
  return result;
}

/** An XML value: objects become elements, arrays become `<item>` lists, in EC2's lower-camel names. */
export type XmlValue = string | number | boolean | Date | undefined | null | XmlValue[] | { [key: string]: XmlValue };

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

/** Renders one element. */
export function xmlElement(name: string, value: XmlValue): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return `<${name}>${value.map((item) => xmlElement('item', item)).join('')}</${name}>`;
  if (value instanceof Date) return `<${name}>${value.toISOString()}</${name}>`;
  if (typeof value === 'object') {
    return `<${name}>${Object.entries(value)
      .map(([key, child]) => xmlElement(key, child))
      .join('')}</${name}>`;
  }
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

/** A successful EC2 answer: `<ActionResponse xmlns=…><requestId/>…</ActionResponse>`. */
export function ec2Response(action: string, request: SimRequest, body: Record<string, XmlValue>): SimResponse {
  const inner = Object.entries(body)
    .map(([key, value]) => xmlElement(key, value))
    .join('');
  return {
    status: 200,
    headers: { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': request.requestId },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>${request.requestId}</requestId>${inner}</${action}Response>`,
  };
}

/** The access key id and region of a SigV4 `Authorization` header. */
export function sigV4Scope(request: SimRequest): { accessKeyId: string; region: string; service: string } | undefined {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(header) : null;
  if (match === null) return undefined;
  return { accessKeyId: match[1] ?? '', region: match[2] ?? '', service: match[3] ?? '' };
}
