import { MemoryFileSystem } from './memory-filesystem.ts';

/** What an instance's seeded image needs to know. */
export interface ImageSeed {
  hostname: string;
  /** Public key lines installed in root's and the default user's `authorized_keys`. */
  authorizedKeys: readonly string[];
  /** Default login user with a home directory (default `ubuntu`). */
  defaultUser?: string;
}

const OS_RELEASE = `PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.1 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=noble
LOGO=ubuntu-logo
`;

const LSB_RELEASE = `DISTRIB_ID=Ubuntu
DISTRIB_RELEASE=24.04
DISTRIB_CODENAME=noble
DISTRIB_DESCRIPTION="Ubuntu 24.04.1 LTS"
`;

/** Kernel release reported by `uname -r`. */
export const KERNEL_RELEASE = '6.8.0-45-generic';

/** Builds a filesystem laid out like a fresh Ubuntu 24.04 cloud image. */
export function createUbuntuFileSystem(seed: ImageSeed): MemoryFileSystem {
  const fs = new MemoryFileSystem();
  const user = seed.defaultUser ?? 'ubuntu';
  for (const dir of ['/bin', '/boot', '/dev', '/etc', '/etc/ssh', '/home', '/lib', '/mnt', '/opt', '/proc', '/run', '/sbin', '/srv', '/sys', '/usr', '/usr/bin', '/usr/local/bin', '/usr/sbin', '/var', '/var/lib', '/var/log']) {
    fs.mkdir(dir, { recursive: true });
  }
  fs.mkdir('/root', { mode: 0o700 });
  fs.mkdir('/tmp', { mode: 0o1777 });
  fs.writeFile('/etc/os-release', OS_RELEASE);
  fs.writeFile('/etc/lsb-release', LSB_RELEASE);
  fs.writeFile('/etc/hostname', `${seed.hostname}\n`);
  fs.writeFile('/etc/hosts', `127.0.0.1 localhost\n127.0.1.1 ${seed.hostname}\n`);
  fs.writeFile('/etc/passwd', `root:x:0:0:root:/root:/bin/bash\n${user}:x:1000:1000:Ubuntu:/home/${user}:/bin/bash\n`);
  fs.writeFile('/etc/ssh/sshd_config', 'PermitRootLogin prohibit-password\nPasswordAuthentication no\n');
  const keys = seed.authorizedKeys.map((key) => `${key.trim()}\n`).join('');
  fs.mkdir('/root/.ssh', { mode: 0o700 });
  fs.writeFile('/root/.ssh/authorized_keys', keys, { mode: 0o600 });
  const owner = { uid: 1000, gid: 1000 };
  fs.mkdir(`/home/${user}`, { mode: 0o750, owner });
  fs.mkdir(`/home/${user}/.ssh`, { mode: 0o700, owner });
  fs.writeFile(`/home/${user}/.ssh/authorized_keys`, keys, { mode: 0o600, owner });
  fs.writeFile(`/home/${user}/.bashrc`, '# ~/.bashrc\n', { owner });
  return fs;
}

/** Home directory of `user` on a seeded image (created when missing). */
export function homeDirectory(fs: MemoryFileSystem, user: string): string {
  const home = user === 'root' ? '/root' : `/home/${user}`;
  if (!fs.exists(home)) fs.mkdir(home, { recursive: true, owner: { uid: 1000, gid: 1000 } });
  return home;
}
