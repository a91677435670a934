/**
 * Splits instance user data into the parts cloud-init would handle: a plain piece is one part
 * typed by its first line (`#cloud-config`, `#!`…); a MIME `multipart/*` archive (as
 * driver-core's `combineUserData` makes, or any tool that follows cloud-init's format) is split by
 * its boundary, recursively for nested multiparts, with `base64` and `quoted-printable` bodies
 * decoded. Deliberately small: cloud-init's own user data never needs more of MIME than this.
 */

import { userDataContentType } from '@machine/driver-core';

/** One part of the user data, with its body decoded to text. */
export interface UserDataPart {
  /** `text/cloud-config`, `text/x-shellscript`, `text/cloud-boothook`, `text/plain`… */
  contentType: string;
  content: string;
  /** `Content-Disposition` filename, when given. */
  filename?: string;
  /** The part's `Merge-Type` (or `X-Merge-Type`) header: how cloud-init merges it into earlier parts. */
  mergeType?: string;
}

/** Every leaf part of `userData`, in order. */
export function splitUserData(userData: string): UserDataPart[] {
  const text = userData.replace(/\r\n/g, '\n');
  const type = userDataContentType(text);
  if (type !== 'multipart/mixed') return [{ contentType: type, content: text }];
  return splitEntity(text, 0);
}

interface Entity {
  headers: Map<string, string>;
  body: string;
}

function parseEntity(text: string): Entity {
  const trimmed = text.replace(/^\n+/, '');
  const end = trimmed.indexOf('\n\n');
  const headerText = end === -1 ? trimmed : trimmed.slice(0, end);
  const body = end === -1 ? '' : trimmed.slice(end + 2);
  const headers = new Map<string, string>();
  let last: string | undefined;
  for (const line of headerText.split('\n')) {
    if (/^[ \t]/.test(line) && last !== undefined) {
      headers.set(last, `${headers.get(last) ?? ''} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    headers.set(last, line.slice(colon + 1).trim());
  }
  return { headers, body };
}

/** `multipart/mixed; boundary="x"` → `{ type: 'multipart/mixed', params: { boundary: 'x' } }`. */
function parseHeaderValue(value: string): { type: string; params: Record<string, string> } {
  const [type = '', ...rest] = value.split(';');
  const params: Record<string, string> = {};
  for (const param of rest) {
    const match = /^\s*([^=\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]*))/.exec(param);
    if (match !== null) params[match[1]!.toLowerCase()] = match[2] ?? match[3] ?? '';
  }
  return { type: type.trim().toLowerCase(), params };
}

function splitEntity(text: string, depth: number): UserDataPart[] {
  if (depth > 8) return [];
  const { headers, body } = parseEntity(text);
  const contentType = parseHeaderValue(headers.get('content-type') ?? 'text/plain');
  if (contentType.type.startsWith('multipart/')) {
    const boundary = contentType.params.boundary;
    if (boundary === undefined || boundary === '') return [];
    return multipartBodies(body, boundary).flatMap((part) => splitEntity(part, depth + 1));
  }
  const decoded = decodeBody(body, headers.get('content-transfer-encoding'));
  const disposition = parseHeaderValue(headers.get('content-disposition') ?? '');
  // cloud-init types untyped or text/plain parts by their first line, as for plain user data.
  const type = contentType.type === '' || contentType.type === 'text/plain' || contentType.type === 'text/x-not-multipart' ? userDataContentType(decoded) : contentType.type;
  const mergeType = headers.get('merge-type') ?? headers.get('x-merge-type');
  return [
    {
      contentType: type,
      content: decoded,
      ...(disposition.params.filename === undefined ? {} : { filename: disposition.params.filename }),
      ...(mergeType === undefined ? {} : { mergeType }),
    },
  ];
}

/** The bodies between `--boundary` delimiter lines (the newline before each delimiter belongs to it). */
function multipartBodies(body: string, boundary: string): string[] {
  const parts: string[] = [];
  const lines = body.split('\n');
  let current: string[] | undefined;
  for (const line of lines) {
    const trimmed = line.trimEnd();
    if (trimmed === `--${boundary}--`) {
      if (current !== undefined) parts.push(current.join('\n'));
      return parts;
    }
    if (trimmed === `--${boundary}`) {
      if (current !== undefined) parts.push(current.join('\n'));
      current = [];
      continue;
    }
    current?.push(line);
  }
  if (current !== undefined) parts.push(current.join('\n'));
  return parts;
}

function decodeBody(body: string, encoding: string | undefined): string {
  switch (encoding?.trim().toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    case 'quoted-printable':
      return Buffer.from(
        body.replace(/=\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
        'latin1',
      ).toString('utf8');
    default:
      return body;
  }
}
