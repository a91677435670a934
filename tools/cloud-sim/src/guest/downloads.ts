/**
 * What the simulated network serves to `curl` on an instance: the Docker convenience script at
 * get.docker.com (a stand-in that runs the real script's steps in the emulated shell: apt-get,
 * keyring, sources list, packages), Docker's apt key, and whatever a test adds with
 * `startSim({ downloads })`. Any other host fails like curl without network (exit 6).
 */

/** The stand-in for https://get.docker.com (and test.docker.com). */
export const DOCKER_INSTALL_SCRIPT = `#!/bin/sh
# cloud-sim stand-in for the Docker Engine convenience script (https://get.docker.com).
# It runs the real script's steps for Ubuntu 24.04 in the simulator's emulated shell.
echo '# Executing docker install script, commit: 4c94a56999e10efcf48c5b8e3f6afea464f9108e'
echo '+ sh -c apt-get -qq update >/dev/null'
apt-get -qq update >/dev/null || exit 100
echo '+ sh -c DEBIAN_FRONTEND=noninteractive apt-get -y -qq install ca-certificates curl >/dev/null'
DEBIAN_FRONTEND=noninteractive apt-get -y -qq install ca-certificates curl >/dev/null || exit 100
echo '+ sh -c install -m 0755 -d /etc/apt/keyrings'
install -m 0755 -d /etc/apt/keyrings
echo '+ sh -c curl -fsSL "https://download.docker.com/linux/ubuntu/gpg" -o /etc/apt/keyrings/docker.asc'
curl -fsSL https://download.docker.com/linux/ubuntu/gpg -o /etc/apt/keyrings/docker.asc || exit 1
echo '+ sh -c chmod a+r /etc/apt/keyrings/docker.asc'
chmod 0644 /etc/apt/keyrings/docker.asc
echo '+ sh -c echo "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu noble stable" > /etc/apt/sources.list.d/docker.list'
mkdir -p /etc/apt/sources.list.d
echo 'deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu noble stable' > /etc/apt/sources.list.d/docker.list
echo '+ sh -c apt-get -qq update >/dev/null'
apt-get -qq update >/dev/null || exit 100
echo '+ sh -c DEBIAN_FRONTEND=noninteractive apt-get -y -qq install docker-ce docker-ce-cli containerd.io docker-compose-plugin docker-ce-rootless-extras docker-buildx-plugin >/dev/null'
DEBIAN_FRONTEND=noninteractive apt-get -y -qq install docker-ce docker-ce-cli containerd.io docker-compose-plugin docker-ce-rootless-extras docker-buildx-plugin >/dev/null || exit 100
echo '+ sh -c docker version'
docker version
echo
echo '================================================================================'
echo
echo 'To run Docker as a non-privileged user, consider setting up the'
echo 'Docker daemon in rootless mode for your user:'
echo
echo '    dockerd-rootless-setuptool.sh install'
echo
echo 'Visit https://docs.docker.com/go/rootless/ to learn about rootless mode.'
echo
echo '================================================================================'
echo
`;

const DOCKER_APT_KEY = `-----BEGIN PGP PUBLIC KEY BLOCK-----

mQINBFit2ioBEADhWpZ8/wvZ6hUTiXOwQHXMAlaFHcPH9hAtr4F1y2+OYdbtMuth
lqqwp028AqyY+PRfVMtSYMbjuQuu5byyKR01BbqYhuS3jtqQmljZ/bJvXqnmiVXh
38UuLa+z077PxyxQhu5BbqntTPQMfiyqEiU+BKbq2WmANUKQf+1AmZY/IruOXbnq
L4C1+gJ8vfmXQt99npCaxEjaNRVYfOS8QcixNzHUYnb6emjlANyEVlZzeqo7XKl7
UrwV5inawTSzWNvtjEjj4nJL8NsLwscpLPQUhTQ+7BbQXAwAmeHCUTQIvvWXqw0N
cmhh4HgeQscQHYgOJjjDVfoY5MucvglbIgCqfzAHW9jxmRL4qbMZj+b1XoePEtht
ku4bIQN1X5P07fNWzlgaRL5Z4POXDDZTlIQ/El58j9kp4bnWRCJW0lya+f8ocodo
vZZ+Doi+fy4D5ZGrL4XEcIQP/Lv5uFyf+kQtl/94VFYVJOleAv8W92KdgDkhTcTD
G7c0tIkVEKNUq48b3aQ64NOZQW7fVjfoKwEZdOqPE72Pa45jrZzvUFxSpdiNk2tZ
XYukHjlxxEgBdC/J3cMMNRE1F4NCA3ApfV1Y7/hTeOnmDuDYwr9/obA8t016Yljj
q5rdkywPf4JF8mXUW5eCN1vAFHxeg9ZWemhBtQmGxXnw9M+z6hWwc6ahmwARAQAB
=cloud-sim
-----END PGP PUBLIC KEY BLOCK-----
`;

/** URLs every simulated instance can download. */
export const BUILT_IN_DOWNLOADS: Readonly<Record<string, string>> = {
  'https://get.docker.com': DOCKER_INSTALL_SCRIPT,
  'https://get.docker.com/': DOCKER_INSTALL_SCRIPT,
  'http://get.docker.com': DOCKER_INSTALL_SCRIPT,
  'http://get.docker.com/': DOCKER_INSTALL_SCRIPT,
  'https://test.docker.com': DOCKER_INSTALL_SCRIPT,
  'https://test.docker.com/': DOCKER_INSTALL_SCRIPT,
  'https://download.docker.com/linux/ubuntu/gpg': DOCKER_APT_KEY,
};

/**
 * Looks `url` up in `extra` (from `startSim({ downloads })`) and the built-ins. Unknown hosts are
 * curl's error 6 (no DNS, as without network); a known host with an unknown path is a 404 (22).
 */
export function download(url: string, extra: Readonly<Record<string, string>>): { data: Buffer } | { code: number; message: string } {
  const content = extra[url] ?? BUILT_IN_DOWNLOADS[url];
  if (content !== undefined) return { data: Buffer.from(content, 'utf8') };
  let host: string;
  try {
    const parsed = new URL(url);
    if (!['http:', 'https:'].includes(parsed.protocol)) return { code: 1, message: `Protocol "${parsed.protocol.slice(0, -1)}" not supported` };
    host = parsed.host;
  } catch {
    return { code: 3, message: 'URL using bad/illegal format or missing URL' };
  }
  const knownHosts = new Set([...Object.keys(extra), ...Object.keys(BUILT_IN_DOWNLOADS)].map((known) => new URL(known).host));
  if (knownHosts.has(host)) return { code: 22, message: 'The requested URL returned error: 404' };
  return { code: 6, message: `Could not resolve host: ${host.replace(/:\d+$/, '')}` };
}
