/**
 * The part of the @digitalocean/dots client this driver uses, typed here.
 *
 * Why not the SDK's own types: dots ships TypeScript sources, not declarations, so importing its
 * types makes our `tsc` compile ~500 of its files under our settings, and they do not pass them
 * (`verbatimModuleSyntax`, `erasableSyntaxOnly`, `noUncheckedIndexedAccess` errors inside
 * node_modules, which `skipLibCheck` does not cover). The shapes below are copied from dots 1.19's
 * generated models (camelCase, as dots converts them); the tests drive the real client against
 * loopback servers, so a mismatch fails there.
 */

/** `Network_v4` / `Network_v6`. */
export interface DotsNetwork {
  ipAddress?: string | null;
  type?: string | null;
  netmask?: string | number | null;
  gateway?: string | null;
}

/** `Droplet`. */
export interface DotsDroplet {
  id?: number | null;
  name?: string | null;
  status?: string | null;
  locked?: boolean | null;
  createdAt?: Date | null;
  tags?: string[] | null;
  region?: { slug?: string | null } | null;
  networks?: { v4?: DotsNetwork[] | null; v6?: DotsNetwork[] | null } | null;
}

/** `Action`. */
export interface DotsAction {
  id?: number | null;
  status?: string | null;
  type?: string | null;
  resourceId?: number | null;
}

/** `SshKeys`. */
export interface DotsSshKey {
  id?: number | null;
  fingerprint?: string | null;
  name?: string | null;
  publicKey?: string | null;
}

/** `Region`. */
export interface DotsRegion {
  slug?: string | null;
  name?: string | null;
  available?: boolean | null;
  sizes?: string[] | null;
}

/** `Firewall_rule_target`. */
export interface DotsFirewallTarget {
  addresses?: string[] | null;
  dropletIds?: number[] | null;
  tags?: string[] | null;
}

/** `Firewall` (request and response). */
export interface DotsFirewall {
  id?: string | null;
  name?: string | null;
  status?: string | null;
  createdAt?: Date | null;
  dropletIds?: number[] | null;
  inboundRules?: { protocol?: string | null; ports?: string | null; sources?: DotsFirewallTarget | null }[] | null;
  outboundRules?: { protocol?: string | null; ports?: string | null; destinations?: DotsFirewallTarget | null }[] | null;
}

/** `Droplet_single_create`. */
export interface DotsDropletCreate {
  name: string;
  region: string;
  size: string;
  image: string | number;
  sshKeys?: string[];
  ipv6?: boolean;
  privateNetworking?: boolean;
  backups?: boolean;
  monitoring?: boolean;
  tags?: string[];
  userData?: string;
  vpcUuid?: string;
}

/**
 * Pagination links of list responses. dots deserializes `pages` as `Backward_links` whenever it
 * can (its union's first member), so `next`/`last` arrive in `additionalData` on a first page.
 */
export interface DotsLinks {
  pages?: { next?: string | null; last?: string | null; additionalData?: Record<string, unknown> } | null;
}

interface Query<Q> {
  queryParameters?: Q;
}

/** The request builders the driver calls (a subset of `DigitalOceanClient`). */
export interface DigitalOceanClient {
  v2: {
    account: {
      keys: {
        get(config?: Query<{ page?: number; perPage?: number }>): Promise<{ sshKeys?: DotsSshKey[] | null; links?: DotsLinks | null } | undefined>;
        post(body: { name: string; publicKey: string }): Promise<{ sshKey?: DotsSshKey | null } | undefined>;
        /** The API takes an id or a fingerprint here; dots types it as a number. */
        bySsh_key_identifier(identifier: number | string): {
          get(): Promise<{ sshKey?: DotsSshKey | null } | undefined>;
          delete(): Promise<void>;
        };
      };
    };
    actions: {
      byAction_id(id: number): { get(): Promise<{ action?: DotsAction | null } | undefined> };
    };
    droplets: {
      get(config?: Query<{ tagName?: string; name?: string; page?: number; perPage?: number }>): Promise<
        { droplets?: DotsDroplet[] | null; links?: DotsLinks | null; meta?: { total?: number | null } | null } | undefined
      >;
      post(body: DotsDropletCreate): Promise<{ droplet?: DotsDroplet | null } | { droplets?: DotsDroplet[] | null } | undefined>;
      byDroplet_id(id: number): {
        get(): Promise<{ droplet?: DotsDroplet | null } | undefined>;
        delete(): Promise<void>;
        actions: { post(body: { type: string }): Promise<{ action?: DotsAction | null } | undefined> };
      };
    };
    firewalls: {
      get(config?: Query<{ page?: number; perPage?: number }>): Promise<{ firewalls?: DotsFirewall[] | null; links?: DotsLinks | null } | undefined>;
      post(body: DotsFirewall & { name: string }): Promise<{ firewall?: DotsFirewall | null } | undefined>;
      byFirewall_id(id: string): { delete(): Promise<void> };
    };
    images: {
      /** The API takes an id or a slug here; dots types it as a number. */
      byImage_id(id: number | string): { get(): Promise<{ image?: { id?: number | null; slug?: string | null } | null } | undefined> };
    };
    regions: {
      get(config?: Query<{ page?: number; perPage?: number }>): Promise<{ regions?: DotsRegion[] | null; links?: DotsLinks | null } | undefined>;
    };
  };
}
