// The CNI plugin's state root on first use: made root-only (0700, every folder it creates), before setup records anything below it.
//
// The state root is root's alone (the launcher side never reads a CNI attachment's folder). Made by setup's generic
// code it would get 0755 folders, and by default it shares its parent with the daemon socket
// (/run/virt-net-agent/cni beside /run/virt-net-agent/cni.sock), whose directory the daemon accepts only as root 0700:
// an ADD by the fallback executable before the daemon's first start must not leave that directory 0755.
import { mkdirSync } from 'node:fs';
import { CNI_CODES, CniSpecError } from './errors.js';

export function ensureStateRoot(stateRoot: string): void {
  const previous = process.umask(0o077);
  try {
    mkdirSync(stateRoot, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new CniSpecError(CNI_CODES.ioFailure, 'stateRoot', `cannot make ${stateRoot}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  } finally {
    process.umask(previous);
  }
}
