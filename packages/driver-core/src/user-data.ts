import { randomBytes } from 'node:crypto';

/**
 * cloud-init user data helpers. A machine may boot with two pieces of user data: the host's
 * provisioning `#cloud-config` and whatever the user passed with the driver's user-data flag.
 * cloud-init accepts both at once as a MIME multipart archive, one part per piece, each with the
 * content type its first line implies.
 */

/**
 * How each combined `#cloud-config` part merges into the parts before it: lists append and existing
 * keys are kept. cloud-init's default would keep only one part's `runcmd`/`write_files` (the
 * provisioning install or the user's own commands would silently vanish).
 */
export const CLOUD_CONFIG_MERGE_TYPE = 'list(append)+dict(no_replace,recurse_list)+str()';

/** The MIME type cloud-init gives user data by its first line (`#cloud-config`, `#!`, …). */
export function userDataContentType(content: string): string {
  const firstLine = content.trimStart().split('\n', 1)[0]?.trim() ?? '';
  const lower = firstLine.toLowerCase();
  if (lower.startsWith('#cloud-config-archive')) return 'text/cloud-config-archive';
  if (lower.startsWith('#cloud-config')) return 'text/cloud-config';
  if (lower.startsWith('#cloud-boothook')) return 'text/cloud-boothook';
  if (lower.startsWith('#include')) return 'text/x-include-url';
  if (lower.startsWith('#part-handler')) return 'text/part-handler';
  if (lower.startsWith('#upstart-job')) return 'text/upstart-job';
  if (lower.startsWith('## template: jinja')) return 'text/jinja2';
  if (firstLine.startsWith('#!')) return 'text/x-shellscript';
  if (lower.startsWith('content-type:') || lower.startsWith('mime-version:')) return 'multipart/mixed';
  return 'text/plain';
}

/**
 * Combines user data pieces for cloud-init. Empty pieces are dropped; one piece is returned as is;
 * several become one `multipart/mixed` archive (a piece that is itself MIME is embedded with its
 * own headers; cloud-config parts carry {@link CLOUD_CONFIG_MERGE_TYPE}, so every part's lists count). Returns `undefined` when there is nothing.
 */
export function combineUserData(pieces: readonly (string | undefined)[]): string | undefined {
  const parts = pieces.filter((piece): piece is string => piece !== undefined && piece.trim() !== '');
  if (parts.length === 0) return undefined;
  if (parts.length === 1) return parts[0];
  const boundary = uniqueBoundary(parts);
  const lines = [`Content-Type: multipart/mixed; boundary="${boundary}"`, 'MIME-Version: 1.0', ''];
  parts.forEach((part, index) => {
    lines.push(`--${boundary}`);
    if (userDataContentType(part) === 'multipart/mixed') {
      lines.push(part.replace(/\r\n/g, '\n').replace(/\n+$/, ''));
      return;
    }
    const type = userDataContentType(part);
    lines.push(
      `Content-Type: ${type}; charset="utf-8"`,
      'MIME-Version: 1.0',
      ...(type === 'text/cloud-config' ? [`Merge-Type: ${CLOUD_CONFIG_MERGE_TYPE}`] : []),
      'Content-Transfer-Encoding: 8bit',
      `Content-Disposition: attachment; filename="part-${index + 1}"`,
      '',
      part.replace(/\n+$/, ''),
    );
  });
  lines.push(`--${boundary}--`, '');
  return lines.join('\n');
}

function uniqueBoundary(parts: readonly string[]): string {
  for (;;) {
    const boundary = `==MACHINE-${randomBytes(12).toString('hex')}==`;
    if (!parts.some((part) => part.includes(boundary))) return boundary;
  }
}
