import { type ConfigOf, defineFlags } from '@machine/driver-core';
import { parseHostCidr } from './host-network.ts';

/** Ubuntu 24.04 LTS (noble) server cloud image, as a VMDK VirtualBox can clone; SHA256SUMS sits next to it. */
export const defaultImageUrl = 'https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.vmdk';

/** The reference's default `192.168.99.1/24` is refused by VirtualBox ≥ 6.1.28; this one is what minikube moved to. */
export const defaultHostOnlyCidr = '192.168.59.1/24';

const nicTypes = ['Am79C970A', 'Am79C973', 'Am79C960', '82540EM', '82543GC', '82545EM', 'virtio'] as const;

/** The virtualbox driver's flags: the reference's names and env vars, with the newer defaults. */
export const virtualBoxFlags = defineFlags([
  {
    name: 'virtualbox-vboxmanage-path',
    key: 'vboxManagePath',
    type: 'string',
    envVar: 'VBOX_MANAGE_PATH',
    description: 'Path of VBoxManage (default: VBOX_MSI_INSTALL_PATH, VBOX_INSTALL_PATH, then PATH)',
  },
  {
    name: 'virtualbox-memory',
    key: 'memory',
    type: 'int',
    envVar: 'VIRTUALBOX_MEMORY_SIZE',
    default: 2048,
    min: 256,
    description: 'Memory of the VM, MB',
  },
  {
    name: 'virtualbox-cpu-count',
    key: 'cpuCount',
    type: 'int',
    envVar: 'VIRTUALBOX_CPU_COUNT',
    default: 2,
    min: -1,
    max: 32,
    validate: (value: number) => (value === 0 ? 'must be 1-32, or -1 for all host CPUs (capped at 32)' : undefined),
    description: 'CPUs of the VM (-1 = all host CPUs, capped at 32)',
  },
  {
    name: 'virtualbox-disk-size',
    key: 'diskSize',
    type: 'int',
    envVar: 'VIRTUALBOX_DISK_SIZE',
    default: 20000,
    min: 4096,
    description: 'Disk size, MB (the image is grown to it)',
  },
  {
    name: 'virtualbox-image-url',
    key: 'imageUrl',
    type: 'string',
    envVar: 'VIRTUALBOX_IMAGE_URL',
    default: defaultImageUrl,
    validate: (value: string) => (/^https?:\/\/[^\s]+$/.test(value) ? undefined : 'must be an http(s) URL'),
    description: 'Cloud image to download (VMDK, VDI or VHD), verified against SHA256SUMS next to it, cached under <storage>/cache/virtualbox',
  },
  {
    name: 'virtualbox-image-path',
    key: 'imagePath',
    type: 'string',
    envVar: 'VIRTUALBOX_IMAGE_PATH',
    description: 'Local cloud image file to use instead of downloading --virtualbox-image-url',
  },
  {
    name: 'virtualbox-image-checksum',
    key: 'imageChecksum',
    type: 'string',
    envVar: 'VIRTUALBOX_IMAGE_CHECKSUM',
    validate: (value: string) => (/^(?:sha256:)?[0-9a-fA-F]{64}$/.test(value) ? undefined : 'must be a SHA-256 hex digest (64 hex digits, optionally "sha256:")'),
    description: 'Expected SHA-256 of the image (default: from SHA256SUMS next to the URL; checked for --virtualbox-image-path too when set)',
  },
  {
    name: 'virtualbox-userdata',
    key: 'userData',
    type: 'string',
    envVar: 'VIRTUALBOX_USERDATA',
    description: 'File with extra cloud-init user data (cloud-config or script), added to the seed',
  },
  {
    name: 'virtualbox-ssh-user',
    key: 'sshUser',
    type: 'string',
    envVar: 'VIRTUALBOX_SSH_USER',
    default: 'docker',
    validate: (value: string) => (/^[a-z_][a-z0-9_-]{0,31}$/.test(value) ? undefined : 'must be a Linux user name (a-z, 0-9, _ and -, up to 32)'),
    description: 'User cloud-init creates with the machine key and passwordless sudo',
  },
  {
    name: 'virtualbox-host-dns-resolver',
    key: 'hostDnsResolver',
    type: 'bool',
    envVar: 'VIRTUALBOX_HOST_DNS_RESOLVER',
    description: "Use the host's DNS resolver for the NAT adapter",
  },
  {
    name: 'virtualbox-nat-nictype',
    key: 'natNicType',
    type: 'string',
    envVar: 'VIRTUALBOX_NAT_NICTYPE',
    default: '82540EM',
    choices: nicTypes,
    description: 'NIC type of the NAT adapter',
  },
  {
    name: 'virtualbox-hostonly-cidr',
    key: 'hostOnlyCidr',
    type: 'string',
    envVar: 'VIRTUALBOX_HOSTONLY_CIDR',
    default: defaultHostOnlyCidr,
    validate: (value: string) => {
      try {
        parseHostCidr(value);
        return undefined;
      } catch (error) {
        return (error as Error).message;
      }
    },
    description: "The host's address and prefix on the host-only network",
  },
  {
    name: 'virtualbox-hostonly-nictype',
    key: 'hostOnlyNicType',
    type: 'string',
    envVar: 'VIRTUALBOX_HOSTONLY_NIC_TYPE',
    default: '82540EM',
    choices: nicTypes,
    description: 'NIC type of the host-only adapter',
  },
  {
    name: 'virtualbox-hostonly-nicpromisc',
    key: 'hostOnlyNicPromisc',
    type: 'string',
    envVar: 'VIRTUALBOX_HOSTONLY_NIC_PROMISC',
    default: 'deny',
    choices: ['deny', 'allow-vms', 'allow-all'],
    description: 'Promiscuous mode of the host-only adapter',
  },
  {
    name: 'virtualbox-hostonly-no-dhcp',
    key: 'hostOnlyNoDhcp',
    type: 'bool',
    envVar: 'VIRTUALBOX_HOSTONLY_NO_DHCP',
    description: 'Add no DHCP server to the host-only network: the guest gets a free static address in the CIDR from its cloud-init seed',
  },
  {
    name: 'virtualbox-ui-type',
    key: 'uiType',
    type: 'string',
    envVar: 'VIRTUALBOX_UI_TYPE',
    default: 'headless',
    choices: ['headless', 'gui', 'sdl', 'separate'],
    description: 'How the VM is started (startvm --type)',
  },
  {
    name: 'virtualbox-no-share',
    key: 'noShare',
    type: 'bool',
    envVar: 'VIRTUALBOX_NO_SHARE',
    description: 'Do not add the home folder share',
  },
  {
    name: 'virtualbox-share-folder',
    key: 'shareFolder',
    type: 'string',
    envVar: 'VIRTUALBOX_SHARE_FOLDER',
    validate: (value: string) => (/^.+:[^:/\\]+$/.test(value) ? undefined : 'must be hostdir:sharename'),
    description: 'Folder to share as hostdir:sharename (default: the home folder share of your OS)',
  },
  {
    name: 'virtualbox-no-dns-proxy',
    key: 'noDnsProxy',
    type: 'bool',
    envVar: 'VIRTUALBOX_NO_DNS_PROXY',
    description: 'Turn off the NAT DNS proxy',
  },
  {
    name: 'virtualbox-no-vtx-check',
    key: 'noVtxCheck',
    type: 'bool',
    envVar: 'VIRTUALBOX_NO_VTX_CHECK',
    description: 'Skip the VT-x/AMD-V check before create',
  },
  {
    name: 'virtualbox-boot-timeout',
    key: 'bootTimeout',
    type: 'int',
    envVar: 'VIRTUALBOX_BOOT_TIMEOUT',
    default: 300,
    min: 1,
    description: 'Seconds to wait for the VM to run and answer SSH (first boot runs cloud-init)',
  },
  {
    name: 'virtualbox-stop-timeout',
    key: 'stopTimeout',
    type: 'int',
    envVar: 'VIRTUALBOX_STOP_TIMEOUT',
    default: 60,
    min: 1,
    description: 'Seconds stop waits after the ACPI power button before it powers the VM off',
  },
] as const);

/** Parsed virtualbox flags. */
export type VirtualBoxConfig = ConfigOf<typeof virtualBoxFlags>;
