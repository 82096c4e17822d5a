// The command that makes the spoof guard drop frames (test/helpers/spoof_frames.py), for tests that count its drops.
import { resolve } from 'node:path';

const SPOOF_FRAMES = resolve('test/helpers/spoof_frames.py');

/**
 * argv (run it inside the pod's netns) that writes frames from another MAC into a guarded bridge port until the guard
 * counted `count` drops and prints the guard's count: `tap` opens the guest's tap, `packet` sends out a veth whose
 * peer is the port.
 */
export function spoofFramesCommand(mode: 'tap' | 'packet', ifname: string, count: number): string[] {
  return ['python3', SPOOF_FRAMES, mode, ifname, String(count)];
}
