import {
  InvalidConfigError,
  MachineError,
  NotFoundError,
  NotSupportedError,
  ProviderError,
  QuotaError,
  TimeoutError,
} from '@machine/driver-core';
import { firstErrorLine, VBoxManageError } from './vboxmanage.ts';

/** Where an error happened, for the typed error's prefix. */
export interface ErrorWhere {
  machine?: string;
  operation?: string;
}

const vtxMarkers = [
  /VERR_VMX_NO_VMX/,
  /VERR_VMX_MSR_(?:ALL_)?VMX_DISABLED/,
  /VERR_SVM_NO_SVM/,
  /VERR_SVM_DISABLED/,
  /VERR_NEM_NOT_AVAILABLE/,
  /VT-x is not available/i,
  /VT-x is disabled/i,
  /AMD-V is disabled/i,
  /AMD-V is not available/i,
];

/** True when VBoxManage's output says the CPU's virtualization extensions are unusable. */
export function mentionsVtxUnavailable(text: string): boolean {
  return vtxMarkers.some((marker) => marker.test(text));
}

/**
 * True for VirtualBox's "the session is locked" errors: another VBoxManage or the GUI holds the VM,
 * or a VM just powered off has not released its session yet (`unregistervm` right after
 * `controlvm poweroff` says "Cannot unregister the machine '…' while it is locked").
 */
export function isSessionLocked(error: unknown): boolean {
  return (
    error instanceof VBoxManageError &&
    /is already locked (?:by|for) a session|is being (?:locked|unlocked)|Cannot unregister the machine .* while it is locked/i.test(error.stderr)
  );
}

/** The VirtualBox result code from `Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001)`. */
export function vboxResultCode(stderr: string): string | undefined {
  return /Details: code ([A-Z_0-9]+)/.exec(stderr)?.[1] ?? /\bCode ([A-Z_0-9]+) \(0x/.exec(stderr)?.[1];
}

/**
 * Turns a failed VBoxManage run into a typed error: VM not found → NotFoundError, locked session →
 * retryable ProviderError, missing host-only interface → NotFoundError, VT-x/AMD-V unavailable →
 * NotSupportedError, VirtualBox refusing the host-only range → InvalidConfigError on
 * `--virtualbox-hostonly-cidr`, VBoxManage missing → InvalidConfigError on the path flag.
 */
export function mapVBoxManageError(error: unknown, where: ErrorWhere = {}): MachineError {
  if (MachineError.isInstance(error)) return error;
  const context = {
    ...(where.machine === undefined ? {} : { machine: where.machine }),
    ...(where.operation === undefined ? {} : { operation: where.operation }),
    cause: error,
  };
  if (!(error instanceof VBoxManageError)) {
    return new ProviderError(error instanceof Error ? error.message : String(error), context);
  }
  const stderr = error.stderr;
  const line = firstErrorLine(stderr) ?? `exit code ${error.exitCode ?? '?'}`;
  const command = `VBoxManage ${error.args[0] ?? ''}`.trim();
  const code = vboxResultCode(stderr);
  if (error.timedOutMs !== undefined) {
    return new TimeoutError(`${command} did not finish within ${error.timedOutMs / 1000} s and was stopped`, {
      ...context,
      hint: 'VirtualBox (VBoxSVC) may be hung: if `VBoxManage list vms` hangs too, restart VirtualBox',
    });
  }
  if (error.spawnCode === 'ENOENT' || error.spawnCode === 'EACCES') {
    return new InvalidConfigError(
      [{ flag: 'virtualbox-vboxmanage-path', message: `could not run VBoxManage (${error.spawnCode}); install VirtualBox 6.1 or newer or fix the path` }],
      context,
    );
  }
  if (/Could not find a registered machine (?:named|with UUID)/i.test(stderr)) {
    return new NotFoundError(`${command}: ${line}`, { ...context, resource: 'virtual machine' });
  }
  if (/host(?:-only)? network interface (?:named|with name) .* could not be found|Could not find a host-only network named|Could not find a host-only interface/i.test(stderr)) {
    return new NotFoundError(`${command}: ${line}`, {
      ...context,
      resource: 'host-only interface',
      hint: 'the host-only interface is gone; `VBoxManage list hostonlyifs` lists the ones that exist',
    });
  }
  if (mentionsVtxUnavailable(stderr)) {
    return new NotSupportedError(`${command}: VT-x/AMD-V is not available to VirtualBox (${line})`, {
      ...context,
      hint: 'enable Intel VT-x / AMD-V in the firmware settings and turn off Hyper-V / WSL2 / other hypervisors that hold it',
    });
  }
  if (/vboxdrv|kernel driver (?:is )?not (?:installed|accessible)|VERR_VM_DRIVER_(?:NOT_INSTALLED|NOT_ACCESSIBLE|OPEN_ERROR)|kernel module is not loaded/i.test(stderr)) {
    return new NotSupportedError(`${command}: the VirtualBox kernel driver is not loaded (${line})`, {
      ...context,
      hint: 'on Linux run `sudo /sbin/vboxconfig` (and sign the modules when Secure Boot is on); on macOS allow the Oracle system extension in Privacy & Security',
    });
  }
  if (isSessionLocked(error)) {
    return new ProviderError(`${command}: ${line}`, {
      ...context,
      providerCode: code ?? 'VBOX_E_INVALID_OBJECT_STATE',
      retryable: true,
      hint: 'another VBoxManage, the VirtualBox GUI or a running VM session holds this VM; wait for it or close it, then retry',
    });
  }
  if (code === 'E_ACCESSDENIED' && /hostonlyif|hostonlynet|dhcpserver/.test(error.args[0] ?? '')) {
    return new InvalidConfigError(
      [
        {
          flag: 'virtualbox-hostonly-cidr',
          message: `VirtualBox refused the host-only range (${line}); VirtualBox 6.1.28+ only allows 192.168.56.0/21 unless /etc/vbox/networks.conf lists more (e.g. "* 192.168.59.0/24")`,
        },
      ],
      context,
    );
  }
  if (/VERR_DISK_FULL|not enough (?:free )?(?:disk )?space|No space left on device/i.test(stderr)) {
    return new QuotaError(`${command}: the host disk is full (${line})`, {
      ...context,
      hint: 'free disk space where the machine folder lives, or pass a smaller --virtualbox-disk-size',
    });
  }
  if (/Shrinking is not yet supported|cannot be shrunk|smaller than the current size/i.test(stderr)) {
    return new InvalidConfigError([{ flag: 'virtualbox-disk-size', message: `is smaller than the image's own disk (${line})` }], context);
  }
  return new ProviderError(`${command}: ${line}`, {
    ...context,
    ...(code === undefined ? {} : { providerCode: code }),
    retryable: false,
  });
}
