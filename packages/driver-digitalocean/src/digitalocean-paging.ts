import type { DotsLinks } from './digitalocean-api-types.ts';

/** Items per page the driver asks for: DigitalOcean's maximum. */
export const maxPerPage = 200;

/** What a DigitalOcean list answer says about the pages after it. */
export interface ListPaging {
  links?: DotsLinks | null;
  meta?: { total?: number | null } | null;
}

/**
 * Whether a list has a page after `page` (1-based), which held `received` items of `perPage`.
 *
 * `meta.total` decides when the answer has it. The `links.pages.next` URL is not reliable through
 * dots 1.19: it reads `pages` as the first member of its union (`Backward_links`, which has only
 * `first`/`prev`), so on a first page `next` and `last` land in `pages.additionalData`, and a
 * driver reading `pages.next` stops after 200 items. Both places are read here.
 */
export function hasNextPage(answer: ListPaging | null | undefined, page: number, perPage: number, received: number): boolean {
  if (received < perPage) return false;
  const total = answer?.meta?.total;
  if (typeof total === 'number' && Number.isFinite(total)) return page * perPage < total;
  const pages = answer?.links?.pages;
  if (pages === undefined || pages === null) return true; // no paging data: a full page may have a next one (an empty page ends it)
  const next = pages.next ?? pages.additionalData?.next;
  return typeof next === 'string' && next !== '';
}
