// Reading a file the admin's configuration names (a VMI in vmiDir, a kubeconfig and its credentials): asynchronous, non-blocking, regular files only, with a size cap.
//
// The path is trusted (it comes from the agent configuration), the content merely bounded: a FIFO or a device put
// there by mistake cannot hang the daemon (O_NONBLOCK, then fstat must say regular file), and a huge file is refused
// instead of read into memory. The read runs on libuv's threadpool, so other invocations go on meanwhile.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { CNI_CODES, CniSpecError } from './errors.js';

/** The file's text, or null when it does not exist. Other failures are error 7 naming `field`. */
export async function readBoundedFile(path: string, maxBytes: number, field = 'vmiDir'): Promise<string | null> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    if (code === 'ENOENT') return null;
    throw new CniSpecError(CNI_CODES.invalidConfig, field, `cannot read ${path}: ${code}`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new CniSpecError(CNI_CODES.invalidConfig, field, `${path} is not a regular file`);
    if (st.size > maxBytes) throw new CniSpecError(CNI_CODES.invalidConfig, field, `${path} is larger than ${maxBytes} bytes`);
    const buf = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw new CniSpecError(CNI_CODES.invalidConfig, field, `${path} is larger than ${maxBytes} bytes`);
    }
    return buf.subarray(0, length).toString('utf8');
  } catch (error) {
    if (error instanceof CniSpecError) throw error;
    throw new CniSpecError(CNI_CODES.invalidConfig, field, `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  } finally {
    await handle.close();
  }
}
