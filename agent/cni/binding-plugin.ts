// CNI ADD, role 2 (KubeVirt binding-plugin CNI, args.cni.logicNetworkName): not implemented yet.
import type { CniRequest } from './config.js';
import { CNI_CODES, CniSpecError } from './errors.js';

export async function bindingPluginAdd(request: CniRequest): Promise<string> {
  throw new CniSpecError(CNI_CODES.invalidConfig, 'args.cni.logicNetworkName', `the binding-plugin role (network ${JSON.stringify(request.conf.logicNetworkName)}) is not implemented yet; give "binding" for the chained role`);
}
