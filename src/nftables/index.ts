/**
 * Twill's nftables layer: masquerading for pod traffic (twilld --ip-masq) in one table that
 * Twill owns, `ip twill`, driven through the `nft` binary. Imports only src/core.
 */
export { Masquerade, type MasqueradeOptions } from './masquerade.js';
export { NftError } from './errors.js';
export { spawnRunner, type NftResult, type NftRunner, type SpawnRunnerOptions } from './runner.js';
export { parseTable, hasTable, type NftChain, type NftRule, type NftTable } from './ruleset.js';
export {
  renderMasqueradeScript, renderRemoveScript, KUBE_PROXY_MASQ_MARK, TABLE_FAMILY, TABLE_NAME, type MasqueradeSpec,
} from './script.js';
export { PodMasquerade, podMasqueradeOwner, POD_MASQ_TABLE, type MasqueradedPod, type PodMasqueradeOptions } from './pod-masquerade.js';
