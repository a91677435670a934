/** Static catalogue data: the regions, sizes and distribution images the simulator offers. */

/** A region in DigitalOcean's JSON shape. */
export interface DigitalOceanRegion {
  slug: string;
  name: string;
  features: string[];
  available: boolean;
  sizes: string[];
}

/** A size in DigitalOcean's JSON shape. */
export interface DigitalOceanSize {
  slug: string;
  memory: number;
  vcpus: number;
  disk: number;
  transfer: number;
  price_monthly: number;
  price_hourly: number;
  regions: string[];
  available: boolean;
  description: string;
}

/** An image in DigitalOcean's JSON shape. */
export interface DigitalOceanImage {
  id: number;
  name: string;
  distribution: string;
  slug: string;
  public: boolean;
  regions: string[];
  created_at: string;
  min_disk_size: number;
  type: string;
  size_gigabytes: number;
  description: string;
  tags: string[];
  status: string;
  error_message: string;
}

const REGION_NAMES: Record<string, string> = {
  nyc1: 'New York 1',
  nyc3: 'New York 3',
  sfo3: 'San Francisco 3',
  ams3: 'Amsterdam 3',
  sgp1: 'Singapore 1',
  lon1: 'London 1',
  fra1: 'Frankfurt 1',
  tor1: 'Toronto 1',
  blr1: 'Bangalore 1',
  syd1: 'Sydney 1',
};

const SIZE_SPECS: [slug: string, memory: number, vcpus: number, disk: number, transfer: number, monthly: number, description: string][] = [
  ['s-1vcpu-512mb-10gb', 512, 1, 10, 0.5, 4, 'Basic'],
  ['s-1vcpu-1gb', 1024, 1, 25, 1, 6, 'Basic'],
  ['s-1vcpu-2gb', 2048, 1, 50, 2, 12, 'Basic'],
  ['s-2vcpu-2gb', 2048, 2, 60, 3, 18, 'Basic'],
  ['s-2vcpu-4gb', 4096, 2, 80, 4, 24, 'Basic'],
  ['s-4vcpu-8gb', 8192, 4, 160, 5, 48, 'Basic'],
];

const REGION_SLUGS = Object.keys(REGION_NAMES);

/** Regions, all available with every size. */
export const REGIONS: readonly DigitalOceanRegion[] = REGION_SLUGS.map((slug) => ({
  slug,
  name: REGION_NAMES[slug]!,
  features: ['backups', 'ipv6', 'metadata', 'install_agent', 'storage', 'image_transfer'],
  available: true,
  sizes: SIZE_SPECS.map(([size]) => size),
}));

/** Droplet sizes. */
export const SIZES: readonly DigitalOceanSize[] = SIZE_SPECS.map(([slug, memory, vcpus, disk, transfer, monthly, description]) => ({
  slug,
  memory,
  vcpus,
  disk,
  transfer,
  price_monthly: monthly,
  price_hourly: Math.round((monthly / 672) * 100000) / 100000,
  regions: [...REGION_SLUGS],
  available: true,
  description,
}));

const IMAGE_SPECS: [id: number, slug: string, distribution: string, name: string][] = [
  [170000001, 'ubuntu-24-04-x64', 'Ubuntu', '24.04 (LTS) x64'],
  [170000002, 'ubuntu-22-04-x64', 'Ubuntu', '22.04 (LTS) x64'],
  [170000003, 'ubuntu-20-04-x64', 'Ubuntu', '20.04 (LTS) x64'],
  [170000004, 'debian-12-x64', 'Debian', '12 x64'],
  [170000005, 'rockylinux-9-x64', 'Rocky Linux', '9 x64'],
];

/** Public distribution images (every image boots the same emulated Ubuntu filesystem). */
export const IMAGES: readonly DigitalOceanImage[] = IMAGE_SPECS.map(([id, slug, distribution, name]) => ({
  id,
  name,
  distribution,
  slug,
  public: true,
  regions: [...REGION_SLUGS],
  created_at: '2024-10-01T00:00:00Z',
  min_disk_size: 7,
  type: 'base',
  size_gigabytes: 2.36,
  description: `${distribution} ${name}`,
  tags: [],
  status: 'available',
  error_message: '',
}));

/** An image by numeric id or slug. */
export function findImage(idOrSlug: string | number): DigitalOceanImage | undefined {
  return IMAGES.find((image) => image.slug === idOrSlug || String(image.id) === String(idOrSlug));
}
