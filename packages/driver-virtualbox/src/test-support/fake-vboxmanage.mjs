#!/usr/bin/env node
// A fake VBoxManage for tests. It keeps its VMs, media, host-only interfaces and DHCP servers in a
// JSON file (path in FAKE_VBOX_STATE), prints VirtualBox's real --machinereadable and list formats
// and error texts, logs every invocation (one JSON line per call in `<state>.log`) and fails a
// command when the state's `faults` say so. State changes that take time on a real host (an ACPI
// shutdown) are stored as `pending` and applied by whichever later call (or the test harness)
// looks at the VM after their time has come.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * What the guest's cloud-init makes of its NoCloud seed for the adapter with `mac`: the seed's
 * `network-config` (read with isoinfo) gives that adapter a static address (`{ address, prefix }`)
 * or DHCP (`{ dhcp: true }`). Undefined when the VM has no readable seed: the guest then asks DHCP.
 */
function guestNetworkOf(vm, mac) {
  const seed = Object.values(vm.storage ?? {})
    .flatMap((ports) => Object.values(ports))
    .find((medium) => medium.endsWith('.iso'));
  if (seed === undefined || mac === undefined || !existsSync(seed)) return undefined;
  let text;
  try {
    text = execFileSync('isoinfo', ['-J', '-i', seed, '-x', '/network-config'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
  const colonMac = (mac.toLowerCase().match(/../g) ?? []).join(':');
  // The netplan `ethernets:` entries are the two-space-indented keys.
  const entry = text.split(/\n(?= {2}\S)/).find((block) => block.includes(`macaddress: "${colonMac}"`));
  if (entry === undefined) return undefined;
  const address = /addresses:\s*\n\s*-\s*"?(\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(entry);
  if (address !== null) return { address: address[1], prefix: Number(address[2]) };
  return { dhcp: /\bdhcp4:\s*true\b/.test(entry) };
}

class Exit extends Error {
  constructor(code) {
    super(`exit ${code}`);
    this.code = code;
  }
}

/**
 * Runs one fake VBoxManage invocation against the state file: returns what VBoxManage would print
 * and its exit code. The executable below and the tests' in-process runner both use it.
 */
export function runFakeVBoxManage(args, statePath) {
  /** `lost`: 'hold' | 'drop' when the command was carried out but its reply is to be lost (see `lostReplies`). */
  const io = { stdout: '', stderr: '', code: 0, lost: undefined };
  try {
    execute(args, statePath, io);
  } catch (error) {
    if (!(error instanceof Exit)) throw error;
    io.code = error.code;
  }
  return io;
}

function execute(args, statePath, io) {
  appendFileSync(`${statePath}.log`, `${JSON.stringify(args)}\n`);

  const state = JSON.parse(readFileSync(statePath, 'utf8'));
  state.vms ??= {};
  state.media ??= {};
  state.hostonlyifs ??= {};
  state.dhcpservers ??= {};
  state.faults ??= [];
  state.behaviour ??= {};
  state.createdFiles ??= [];
  state.lostReplies ??= [];

  function save() {
    const temporary = `${statePath}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(temporary, JSON.stringify(state, null, 2));
    renameSync(temporary, statePath);
  }

  function out(text) {
    io.stdout += text.endsWith('\n') ? text : `${text}\n`;
  }

  function fail(lines, code = 1) {
    save();
    io.stderr += `${lines.map((line) => `VBoxManage: error: ${line}`).join('\n')}\n`;
    throw new Exit(code);
  }

  function option(name) {
    const index = args.indexOf(name);
    return index === -1 ? undefined : args[index + 1];
  }

  // Faults: { command: 'startvm' | 'list hostonlyifs' | …, times?: number, stderr?: string, exitCode?: number, stdout?: string }
  const joined = args.join(' ');
  const fault = state.faults.find((candidate) => joined === candidate.command || joined.startsWith(`${candidate.command} `));
  if (fault !== undefined) {
    if (fault.times !== undefined) {
      fault.times -= 1;
      if (fault.times <= 0) state.faults = state.faults.filter((candidate) => candidate !== fault);
    }
    save();
    if (fault.stdout !== undefined) io.stdout += fault.stdout;
    if (fault.stderr !== undefined) io.stderr += fault.stderr.endsWith('\n') ? fault.stderr : `${fault.stderr}\n`;
    throw new Exit(fault.exitCode ?? 1);
  }

  function applyPending(vm) {
    if (vm.pending !== undefined && Date.now() >= vm.pending.at) {
      vm.state = vm.pending.state;
      vm.pending = undefined;
    }
  }

  function findVm(nameOrUuid) {
    const vm = Object.values(state.vms).find((candidate) => candidate.uuid === nameOrUuid || candidate.name === nameOrUuid);
    if (vm === undefined) {
      const uuidLike = /^[0-9a-f-]{36}$/i.test(nameOrUuid ?? '');
      fail([
        uuidLike ? `Could not find a registered machine with UUID {${nameOrUuid}}` : `Could not find a registered machine named '${nameOrUuid}'`,
        'Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports',
        'Context: "FindMachine(Bstr(VMNameOrUuid).raw(), machine.asOutParam())" at line 2785 of file VBoxManageInfo.cpp',
      ]);
    }
    applyPending(vm);
    return vm;
  }

  function requireUnlocked(vm, context) {
    if (['running', 'paused', 'starting', 'gurumeditation', 'stopping'].includes(vm.state)) {
      fail([
        `The machine '${vm.name}' is already locked for a session (or being unlocked)`,
        'Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine, callee nsISupports',
        `Context: "${context}" at line 525 of file VBoxManageModifyVM.cpp`,
      ]);
    }
  }

  function requireRunning(vm) {
    if (!['running', 'paused', 'gurumeditation', 'starting'].includes(vm.state)) fail([`Machine '${vm.name}' is not currently running`]);
  }

  function registerMedium(path, type) {
    state.media[path] ??= { type, uuid: randomUUID() };
  }

  function attachedVms(path) {
    return Object.values(state.vms).filter((vm) => Object.values(vm.storage ?? {}).some((ports) => Object.values(ports).includes(path)));
  }

  function machineReadable(vm) {
    const lines = [
      `name="${vm.name}"`,
      'groups="/"',
      `ostype="${vm.ostype === 'Ubuntu_64' ? 'Ubuntu (64-bit)' : vm.ostype}"`,
      `UUID="${vm.uuid}"`,
      `CfgFile="${join(vm.basefolder, vm.name, `${vm.name}.vbox`)}"`,
      `LogFldr="${join(vm.basefolder, vm.name, 'Logs')}"`,
      `memory=${vm.settings.memory ?? 1024}`,
      `cpus=${vm.settings.cpus ?? 1}`,
      `firmware="${(vm.settings.firmware ?? 'bios').toUpperCase()}"`,
      `VMState="${vm.state}"`,
      `VMStateChangeTime="${new Date(vm.stateChangedAt ?? Date.now()).toISOString().replace('Z', '000000')}"`,
    ];
    let controllerIndex = 0;
    for (const [controller, ports] of Object.entries(vm.storage ?? {})) {
      lines.push(`storagecontrollername${controllerIndex}="${controller}"`, `storagecontrollertype${controllerIndex}="IntelAhci"`);
      controllerIndex += 1;
      for (const [slot, medium] of Object.entries(ports)) {
        lines.push(`"${controller}-${slot}"="${medium}"`);
        const uuid = state.media[medium]?.uuid;
        if (uuid !== undefined) lines.push(`"${controller}-ImageUUID-${slot}"="${uuid}"`);
      }
    }
    for (const [index, nic] of Object.entries(vm.nics ?? {})) {
      if (nic.type === 'nat') lines.push(`natnet${index}="nat"`);
      if (nic.type === 'hostonly' && nic.adapter !== undefined) lines.push(`hostonlyadapter${index}="${nic.adapter}"`);
      if (nic.type === 'hostonlynet' && nic.network !== undefined) lines.push(`hostonly-network${index}="${nic.network}"`);
      if (nic.mac !== undefined) lines.push(`macaddress${index}="${nic.mac}"`);
      // VBoxManage names a host-only network attachment "hostonlynetwork" (modifyvm takes "hostonlynet").
      lines.push(`cableconnected${index}="${nic.cable ?? 'on'}"`, `nic${index}="${nic.type === 'hostonlynet' ? 'hostonlynetwork' : nic.type}"`);
      if (nic.nictype !== undefined) lines.push(`nictype${index}="${nic.nictype}"`);
      if (nic.promisc !== undefined) lines.push(`nicpromisc${index}="${nic.promisc}"`);
      (vm.natpf?.[index] ?? []).forEach((rule, ruleIndex) => {
        lines.push(`Forwarding(${ruleIndex})="${rule.name},${rule.proto},${rule.hostip},${rule.hostport},${rule.guestip},${rule.guestport}"`);
      });
    }
    (vm.sharedfolders ?? []).forEach((share, index) => {
      lines.push(`SharedFolderNameMachineMapping${index + 1}="${share.name}"`, `SharedFolderPathMachineMapping${index + 1}="${share.hostpath}"`);
    });
    if (vm.uart !== undefined) lines.push(`uart1="${vm.uart}"`, `uartmode1="${vm.uartmode ?? 'disconnected'}"`);
    return `${lines.join('\n')}\n`;
  }

  function setState(vm, next) {
    vm.state = next;
    vm.stateChangedAt = Date.now();
    vm.pending = undefined;
  }

  function startVm(vm) {
    if (['running', 'paused', 'starting'].includes(vm.state)) {
      fail([`The machine '${vm.name}' is already locked by a session (or being locked or unlocked)`, 'Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine, callee nsISupports']);
    }
    const hostOnlyNet = Object.values(vm.nics ?? {}).find((nic) => nic.type === 'hostonlynet');
    if (hostOnlyNet !== undefined && state.hostonlynets?.[hostOnlyNet.network] === undefined) {
      fail([`Failed to open a session for the virtual machine ${vm.name}.`, `Could not find a host-only network named '${hostOnlyNet.network}'`]);
    }
    const hostOnly = Object.values(vm.nics ?? {}).find((nic) => nic.type === 'hostonly');
    if (hostOnly !== undefined && state.hostonlyifs[hostOnly.adapter] === undefined) {
      fail([`Failed to open a session for the virtual machine ${vm.name}.`, `The host network interface named '${hostOnly.adapter}' could not be found`]);
    }
    const logDir = join(vm.basefolder, vm.name, 'Logs');
    mkdirSync(logDir, { recursive: true });
    const started = state.behaviour.startState ?? 'running';
    if (started === 'aborted' && state.behaviour.startLog !== undefined) {
      writeFileSync(join(logDir, 'VBox.log'), `00:00:00.000000 VirtualBox VM starting\n${state.behaviour.startLog}\n`);
    }
    setState(vm, started);
    const hostOnlyNic = hostOnly ?? hostOnlyNet;
    const guestNetwork = hostOnlyNic === undefined || vm.guestIp !== undefined ? undefined : guestNetworkOf(vm, hostOnlyNic.mac);
    if (guestNetwork?.address !== undefined) {
      // A static address from the seed: the guest asks no DHCP server.
      vm.guestIp = guestNetwork.address;
      vm.guestPrefix = guestNetwork.prefix;
    } else if (hostOnlyNic !== undefined && vm.guestIp === undefined && guestNetwork?.dhcp !== false) {
      const server = hostOnly !== undefined ? state.dhcpservers[`HostInterfaceNetworking-${hostOnly.adapter}`] : state.hostonlynets[hostOnlyNet.network];
      // Only an enabled server answers (a host-only network's built-in DHCP is on while the network is).
      if (server?.enabled) {
        state.leases = (state.leases ?? 0) + 1;
        const lower = server.lower.split('.').map(Number);
        lower[3] += state.leases - 1;
        vm.guestIp = lower.join('.');
      }
    }
    out(`Waiting for VM "${vm.name}" to power on...\nVM "${vm.name}" has been successfully started.`);
  }

  const [command, ...rest] = args;
  switch (command) {
    case '--version':
    case '-v':
      out(state.version ?? '7.1.4r165100');
      break;
    case 'list': {
      const what = rest[0];
      if (what === 'vms') {
        for (const vm of Object.values(state.vms)) out(`"${vm.name}" {${vm.uuid}}`);
      } else if (what === 'runningvms') {
        for (const vm of Object.values(state.vms)) {
          applyPending(vm);
          if (vm.state === 'running') out(`"${vm.name}" {${vm.uuid}}`);
        }
      } else if (what === 'hostonlyifs') {
        for (const [name, ifc] of Object.entries(state.hostonlyifs)) {
          out(
            [
              `Name:            ${name}`,
              `GUID:            ${ifc.guid}`,
              'DHCP:            Disabled',
              `IPAddress:       ${ifc.ip ?? ''}`,
              `NetworkMask:     ${ifc.netmask ?? ''}`,
              'IPV6Address:     ',
              'IPV6NetworkMaskPrefixLength: 0',
              `HardwareAddress: 0a:00:27:00:00:0${name.replace(/\D/g, '') || '0'}`,
              'MediumType:      Ethernet',
              'Wireless:        No',
              'Status:          Up',
              `VBoxNetworkName: HostInterfaceNetworking-${name}`,
              // VBoxManage separates the blocks with a blank line.
              '',
              '',
            ].join('\n'),
          );
        }
      } else if (what === 'hostonlynets') {
        // VirtualBox 7 on macOS (vmnet); empty unless a test adds some.
        for (const [name, net] of Object.entries(state.hostonlynets ?? {})) {
          out(
            [
              `Name:            ${name}`,
              `GUID:            ${net.guid}`,
              `State:           ${net.enabled ? 'Enabled' : 'Disabled'}`,
              `NetworkMask:     ${net.netmask}`,
              `LowerIP:         ${net.lower}`,
              `UpperIP:         ${net.upper}`,
              `VBoxNetworkName: hostonly-${name}`,
              // VBoxManage separates the blocks with a blank line.
              '',
              '',
            ].join('\n'),
          );
        }
      } else if (what === 'dhcpservers') {
        for (const [network, server] of Object.entries(state.dhcpservers)) {
          out(
            [
              `NetworkName:    ${network}`,
              `Dhcpd IP:       ${server.ip}`,
              `LowerIPAddress: ${server.lower}`,
              `UpperIPAddress: ${server.upper}`,
              `NetworkMask:    ${server.netmask}`,
              `Enabled:        ${server.enabled ? 'Yes' : 'No'}`,
              'Global Configuration:',
              '    minLeaseTime:     default',
              // VBoxManage separates the blocks with a blank line.
              '',
              '',
            ].join('\n'),
          );
        }
      } else if (what === 'hdds') {
        for (const [path, medium] of Object.entries(state.media)) {
          if (medium.type !== 'disk') continue;
          const location = existsSync(path) ? 'Created' : 'Inaccessible';
          out([`UUID:           ${medium.uuid}`, 'Parent UUID:    base', `State:          ${location.toLowerCase()}`, 'Type:           normal (base)', `Location:       ${path}`, 'Storage format: VDI', `Capacity:       ${medium.sizeMB ?? 1} MBytes`, 'Encryption:     disabled', '', ''].join('\n'));
        }
      } else {
        fail([`Invalid parameter '${what}'`]);
      }
      break;
    }
    case 'showmediuminfo': {
      const path = ['disk', 'dvd', 'floppy'].includes(rest[0]) ? rest[1] : rest[0];
      const medium = state.media[path];
      if (medium === undefined) fail([`Could not find file for the medium '${path}' (VERR_FILE_NOT_FOUND)`, 'Details: code VBOX_E_FILE_ERROR (0x80bb0004), component MediumWrap']);
      const lines = [`UUID:           ${medium.uuid}`, 'Parent UUID:    base', 'State:          created', 'Type:           normal (base)', `Location:       ${path}`];
      if (medium.description !== undefined) lines.push(`Description:    ${medium.description}`);
      lines.push('Storage format: VDI', `Capacity:       ${medium.sizeMB ?? 1} MBytes`, 'Size on disk:   1 MBytes', 'Encryption:     disabled');
      const users = attachedVms(path);
      if (users.length > 0) lines.push(`In use by VMs:  ${users.map((vm) => `${vm.name} (UUID: ${vm.uuid})`).join(', ')}`);
      out(lines.join('\n'));
      break;
    }
    case 'showvminfo': {
      const vm = findVm(rest[0]);
      if (!rest.includes('--machinereadable')) fail(['this fake only prints --machinereadable']);
      save();
      io.stdout += machineReadable(vm);
      break;
    }
    case 'createvm': {
      const name = option('--name');
      const uuid = option('--uuid') ?? randomUUID();
      const basefolder = option('--basefolder') ?? join(process.env.HOME ?? '/tmp', 'VirtualBox VMs');
      if (Object.values(state.vms).some((vm) => vm.name === name)) {
        fail([`Could not create the machine: a machine named '${name}' already exists`, 'Details: code VBOX_E_FILE_ERROR (0x80bb0004)']);
      }
      const folder = join(basefolder, name);
      const settingsFile = join(folder, `${name}.vbox`);
      if (existsSync(settingsFile)) {
        fail([`Machine settings file '${settingsFile}' already exists`, 'Details: code VBOX_E_FILE_ERROR (0x80bb0004), component MachineWrap, interface IMachine']);
      }
      mkdirSync(folder, { recursive: true });
      writeFileSync(settingsFile, `<?xml version="1.0"?>\n<VirtualBox><Machine uuid="{${uuid}}" name="${name}"/></VirtualBox>\n`);
      state.createdFiles.push(folder);
      state.vms[uuid] = { name, uuid, basefolder, ostype: option('--ostype') ?? 'Other', state: 'poweroff', settings: {}, nics: {}, natpf: {}, storage: {} };
      out(`Virtual machine '${name}' is created and registered.\nUUID: ${uuid}\nSettings file: '${settingsFile}'`);
      break;
    }
    case 'modifyvm': {
      const vm = findVm(rest[0]);
      requireUnlocked(vm, 'LockMachine(a->session, LockType_Write)');
      for (let index = 1; index < rest.length; index++) {
        const flag = rest[index];
        const value = rest[index + 1];
        const nicMatch = /^--(nic|nictype|cableconnected|macaddress|hostonlyadapter|host-only-net|nicpromisc|natpf|natdnshostresolver|natdnsproxy)(\d)$/.exec(flag);
        if (nicMatch !== null) {
          const [, key, slot] = nicMatch;
          vm.nics[slot] ??= { type: 'null' };
          const nic = vm.nics[slot];
          if (key === 'natpf') {
            vm.natpf[slot] ??= [];
            if (value === 'delete') {
              const ruleName = rest[index + 2];
              const before = vm.natpf[slot].length;
              vm.natpf[slot] = vm.natpf[slot].filter((rule) => rule.name !== ruleName);
              if (vm.natpf[slot].length === before) fail([`Code NS_ERROR_INVALID_ARG (0x80070057) - Invalid argument value (extended info not available)`, `Context: "RemoveRedirect(Bstr(ValueUnion.psz).raw())"`]);
              index += 2;
              continue;
            }
            const [name, proto, hostip, hostport, guestip, guestport] = value.split(',');
            if (vm.natpf[slot].some((rule) => rule.name === name)) fail([`A NAT rule of this name already exists`]);
            vm.natpf[slot].push({ name, proto, hostip, hostport: Number(hostport), guestip, guestport: Number(guestport) });
          } else if (key === 'nic') nic.type = value;
          else if (key === 'nictype') nic.nictype = value;
          else if (key === 'cableconnected') nic.cable = value;
          else if (key === 'macaddress') nic.mac = value;
          else if (key === 'hostonlyadapter') nic.adapter = value;
          else if (key === 'host-only-net') nic.network = value;
          else if (key === 'nicpromisc') nic.promisc = value;
          else nic[key] = value;
          index += 1;
          continue;
        }
        if (flag === '--uart1') {
          vm.uart = `${rest[index + 1]},${rest[index + 2]}`;
          index += 2;
          continue;
        }
        if (flag === '--uartmode1') {
          vm.uartmode = rest[index + 1] === 'file' ? `file,${rest[index + 2]}` : rest[index + 1];
          index += rest[index + 1] === 'file' ? 2 : 1;
          continue;
        }
        if (!flag.startsWith('--') || value === undefined) fail([`Invalid parameter '${flag}'`]);
        vm.settings[flag.slice(2)] = /^\d+$/.test(value) ? Number(value) : value;
        index += 1;
      }
      break;
    }
    case 'storagectl': {
      const vm = findVm(rest[0]);
      requireUnlocked(vm, 'LockMachine');
      const name = option('--name');
      if (vm.storage[name] !== undefined) fail([`Storage controller named '${name}' already exists`]);
      vm.storage[name] = {};
      break;
    }
    case 'storageattach': {
      const vm = findVm(rest[0]);
      requireUnlocked(vm, 'LockMachine');
      const controller = option('--storagectl');
      const medium = option('--medium');
      const type = option('--type');
      if (vm.storage[controller] === undefined) fail([`Could not find a controller named '${controller}'`]);
      if (!existsSync(medium)) {
        fail([`Could not find file for the medium '${medium}' (VERR_FILE_NOT_FOUND)`, 'Details: code VBOX_E_FILE_ERROR (0x80bb0004), component MediumWrap, interface IMedium']);
      }
      registerMedium(medium, type === 'dvddrive' ? 'dvd' : 'disk');
      // Attached files must be gone once the machine is removed (the leak report checks them).
      if (!state.createdFiles.includes(medium) && !(state.preExistingFiles ?? []).includes(medium)) state.createdFiles.push(medium);
      vm.storage[controller][`${option('--port')}-${option('--device')}`] = medium;
      break;
    }
    case 'sharedfolder': {
      const vm = findVm(rest[1]);
      requireUnlocked(vm, 'LockMachine');
      vm.sharedfolders ??= [];
      vm.sharedfolders.push({ name: option('--name'), hostpath: option('--hostpath') });
      break;
    }
    case 'startvm': {
      startVm(findVm(rest[0]));
      break;
    }
    case 'controlvm': {
      const vm = findVm(rest[0]);
      const action = rest[1];
      requireRunning(vm);
      if (action === 'poweroff') {
        setState(vm, 'poweroff');
        if (state.behaviour.unlockDelayMs !== undefined) vm.unlockAt = Date.now() + state.behaviour.unlockDelayMs;
        out('0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%');
      } else if (action === 'acpipowerbutton') {
        if (vm.state === 'running' && state.behaviour.ignoreAcpi !== true) vm.pending = { state: 'poweroff', at: Date.now() + (state.behaviour.acpiDelayMs ?? 50) };
      } else if (action === 'reset') {
        vm.resets = (vm.resets ?? 0) + 1;
        setState(vm, 'running');
      } else if (action === 'resume') {
        if (vm.state === 'paused') setState(vm, 'running');
      } else if (action === 'pause') {
        setState(vm, 'paused');
      } else {
        fail([`Invalid parameter '${action}'`]);
      }
      break;
    }
    case 'discardstate': {
      const vm = findVm(rest[0]);
      if (vm.state !== 'saved' && vm.state !== 'aborted-saved') fail([`Machine '${vm.name}' is not in the saved state`]);
      setState(vm, 'poweroff');
      break;
    }
    case 'unregistervm': {
      const vm = findVm(rest[0]);
      // A VM powered off a moment ago still holds its session for a while (behaviour.unlockDelayMs).
      if (['running', 'paused', 'starting', 'gurumeditation'].includes(vm.state) || (vm.unlockAt ?? 0) > Date.now()) {
        fail([
          `Cannot unregister the machine '${vm.name}' while it is locked`,
          'Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine',
        ]);
      }
      delete state.vms[vm.uuid];
      // A VM's extra data lives in its settings file: it goes with the VM.
      if (state.extradata !== undefined) delete state.extradata[vm.uuid];
      if (rest.includes('--delete')) {
        for (const ports of Object.values(vm.storage ?? {})) {
          for (const medium of Object.values(ports)) {
            if (state.media[medium]?.type === 'disk') {
              delete state.media[medium];
              rmSync(medium, { force: true });
            }
          }
        }
        rmSync(join(vm.basefolder, vm.name), { recursive: true, force: true });
      }
      out('0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%');
      break;
    }
    case 'setextradata':
    case 'getextradata': {
      const [target, key, value] = rest;
      const scopeKey = target === 'global' ? 'global' : findVm(target).uuid;
      state.extradata ??= {};
      state.extradata[scopeKey] ??= {};
      const scope = state.extradata[scopeKey];
      if (command === 'getextradata') {
        out(scope[key] === undefined ? 'No value set!' : `Value: ${scope[key]}`);
      } else if (value === undefined || value === '') {
        delete scope[key];
      } else {
        scope[key] = value;
      }
      break;
    }
    case 'clonemedium':
    case 'clonehd': {
      const [, source, target] = rest[0] === 'disk' ? rest : ['disk', ...rest];
      if (!existsSync(source)) fail([`Could not find file for the medium '${source}' (VERR_FILE_NOT_FOUND)`, 'Details: code VBOX_E_FILE_ERROR (0x80bb0004), component MediumWrap']);
      if (existsSync(target)) fail([`Cannot register the hard disk '${target}' because a hard disk '${target}' already exists`, 'Details: code VBOX_E_FILE_ERROR (0x80bb0004)']);
      copyFileSync(source, target);
      state.createdFiles.push(target);
      registerMedium(source, 'disk');
      registerMedium(target, 'disk');
      state.media[target].sizeMB = Math.max(1, Math.ceil(statSync(target).size / 1048576));
      out(`0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\nClone medium created in format '${option('--format') ?? 'VDI'}'. UUID: ${state.media[target].uuid}`);
      break;
    }
    case 'modifymedium':
    case 'modifyhd': {
      const path = rest[0] === 'disk' ? rest[1] : rest[0];
      const medium = state.media[path];
      if (medium === undefined) fail([`Could not find file for the medium '${path}' (VERR_FILE_NOT_FOUND)`, 'Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001)']);
      const resize = option('--resize');
      if (resize !== undefined) {
        const size = Number(resize);
        if (size < (medium.sizeMB ?? 0)) fail([`Resize medium operation for this format is not implemented yet!`, 'Shrinking is not yet supported']);
        medium.sizeMB = size;
      }
      if (option('--description') !== undefined) medium.description = option('--description');
      out('0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%');
      break;
    }
    case 'closemedium': {
      const path = ['disk', 'dvd', 'floppy'].includes(rest[0]) ? rest[1] : rest[0];
      if (state.media[path] === undefined && !existsSync(path)) {
        fail([`Could not find file for the medium '${path}' (VERR_FILE_NOT_FOUND)`, 'Details: code VBOX_E_FILE_ERROR (0x80bb0004), component MediumWrap, interface IMedium']);
      }
      const users = attachedVms(path);
      if (users.length > 0) fail([`Cannot close medium '${path}' because it is still attached to ${users.length} virtual machines`, 'Details: code VBOX_E_OBJECT_IN_USE (0x80bb000c)']);
      delete state.media[path];
      if (rest.includes('--delete')) rmSync(path, { force: true });

      break;
    }
    case 'hostonlyif': {
      const action = rest[0];
      if (action === 'create') {
        let index = 0;
        while (state.hostonlyifs[`vboxnet${index}`] !== undefined) index++;
        const name = `vboxnet${index}`;
        state.hostonlyifs[name] = { guid: randomUUID(), createdByFake: true };
      if (state.behaviour.defaultDhcp === true) {
        state.dhcpservers[`HostInterfaceNetworking-${name}`] = { ip: '192.168.56.100', netmask: '255.255.255.0', lower: '192.168.56.101', upper: '192.168.56.254', enabled: false, createdByFake: true };
      }
        out(`0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\nInterface '${name}' was successfully created`);
      } else if (action === 'ipconfig' || action === 'remove') {
        const name = rest[1];
        if (state.hostonlyifs[name] === undefined) fail([`The host network interface named '${name}' could not be found`, 'Details: code E_INVALIDARG (0x80070057), component HostWrap, interface IHost']);
        if (action === 'remove') {
          delete state.hostonlyifs[name];
          out('0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%');
        } else {
          const ip = option('--ip');
          const allowed = state.behaviour.allowedHostOnly;
          if (allowed !== undefined && !ip.startsWith(allowed)) {
            fail(['Code E_ACCESSDENIED (0x80070005) - Access denied (extended info not available)', `Context: "EnableStaticIPConfig(Bstr(pszIp).raw(), Bstr(pszNetmask).raw())" at line 242 of file VBoxManageHostonly.cpp`]);
          }
          state.hostonlyifs[name].ip = ip;
          state.hostonlyifs[name].netmask = option('--netmask');
        }
      } else {
        fail([`Invalid parameter '${action}'`]);
      }
      break;
    }
    case 'hostonlynet': {
      const action = rest[0];
      const name = option('--name');
      state.hostonlynets ??= {};
      if (action === 'add') {
        if (state.hostonlynets[name] !== undefined) fail([`Host-only network '${name}' already exists`]);
        state.hostonlynets[name] = { guid: randomUUID(), netmask: option('--netmask'), lower: option('--lower-ip'), upper: option('--upper-ip'), enabled: rest.includes('--enable'), createdByFake: true };
      } else if (action === 'remove') {
        if (state.hostonlynets[name] === undefined) fail([`Could not find a host-only network named '${name}'`, 'Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001)']);
        delete state.hostonlynets[name];
      } else {
        fail([`Invalid parameter '${action}'`]);
      }
      break;
    }
    case 'dhcpserver': {
      const action = rest[0];
      const ifname = option('--interface') ?? option('--ifname');
      const network = ifname === undefined ? option('--network') : `HostInterfaceNetworking-${ifname}`;
      if (ifname !== undefined && state.hostonlyifs[ifname] === undefined) {
        // VBoxManage looks the interface up first (IHost::FindHostNetworkInterfaceByName).
        fail([
          `The host network interface named '${ifname}' could not be found`,
          'Details: code E_INVALIDARG (0x80070057), component HostWrap, interface IHost, callee nsISupports',
          `Context: "FindHostNetworkInterfaceByName(bstrInterface.raw(), ptrIHostIf.asOutParam())" at line 110 of file VBoxManageDHCPServer.cpp`,
          action === 'remove' ? `Failed to locate host-only interface '${ifname}'` : `Could not find interface '${ifname}'`,
        ]);
      }
      if (action === 'add') {
        if (state.dhcpservers[network] !== undefined) fail(['DHCP server already exists']);
        state.dhcpservers[network] = {
          ip: option('--server-ip') ?? option('--ip'),
          netmask: option('--netmask'),
          lower: option('--lower-ip') ?? option('--lowerip'),
          upper: option('--upper-ip') ?? option('--upperip'),
          enabled: rest.includes('--enable'),
          createdByFake: true,
        };
      } else if (action === 'modify') {
        if (state.dhcpservers[network] === undefined) fail(['DHCP server does not exist']);
        const server = state.dhcpservers[network];
        server.ip = option('--server-ip') ?? server.ip;
        server.netmask = option('--netmask') ?? server.netmask;
        server.lower = option('--lower-ip') ?? server.lower;
        server.upper = option('--upper-ip') ?? server.upper;
        if (args.includes('--enable')) server.enabled = true;
      } else if (action === 'remove') {
        if (state.dhcpservers[network] === undefined) {
          fail([ifname === undefined ? `Failed to find DHCP server for network '${network}'` : `Failed to find DHCP server for host-only interface '${ifname}' (network '${network}')`]);
        }
        delete state.dhcpservers[network];
      } else {
        fail([`Invalid parameter '${action}'`]);
      }
      break;
    }
    default:
      fail([`Unknown command '${command ?? ''}'`, `Usage: ${basename('VBoxManage')} <command>`]);
  }
  // Lost replies: { command, how: 'hold' | 'drop', skip?, times? } (skip: let that many calls answer first). The command is carried out (and saved),
  // then its process hangs ('hold') or dies ('drop') before it prints anything: the caller never
  // learns what it made, as when VBoxManage or machine is killed at that moment.
  const lost = state.lostReplies.find((candidate) => joined === candidate.command || joined.startsWith(`${candidate.command} `));
  if (lost !== undefined && (lost.skip ?? 0) > 0) {
    lost.skip -= 1;
  } else if (lost !== undefined) {
    lost.times = (lost.times ?? 1) - 1;
    if (lost.times <= 0) state.lostReplies = state.lostReplies.filter((candidate) => candidate !== lost);
    io.lost = lost.how;
    io.stdout = '';
  }
  save();
  // Carried out: what the tests count as "the call reached VirtualBox".
  appendFileSync(`${statePath}.done`, `${JSON.stringify(args)}\n`);
}

/** The executable: `FAKE_VBOX_STATE=state.json fake-vboxmanage.mjs <args>`. */
export function main(argv = process.argv.slice(2)) {
  const statePath = process.env.FAKE_VBOX_STATE;
  if (statePath === undefined || statePath === '') {
    process.stderr.write('fake VBoxManage: FAKE_VBOX_STATE is not set\n');
    process.exit(2);
  }
  const result = runFakeVBoxManage(argv, statePath);
  if (result.lost === 'drop') process.kill(process.pid, 'SIGKILL');
  if (result.lost === 'hold') {
    // Never answers; gives up (unanswered) once the fake's state is gone, or the harness kills it.
    appendFileSync(`${statePath}.held`, `${process.pid}\n`);
    setInterval(() => {
      if (!existsSync(statePath)) process.exit(1);
    }, 100);
    return;
  }
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exitCode = result.code;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) main();
