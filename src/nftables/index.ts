/**
 * Twill's nftables layer: masquerading for pod traffic (twilld --ip-masq) in one table per
 * address family that Twill owns, `ip twill` and `ip6 twill`, driven through the `nft` binary.
 * Imports only src/core.
 */
export { Masquerade, type MasqueradeOptions } from './masquerade.js';
export { NftError } from './errors.js';
export { spawnRunner, type NftResult, type NftRunner, type SpawnRunnerOptions } from './runner.js';
export { parseTable, hasTable, type NftChain, type NftRule, type NftTable } from './ruleset.js';
export {
  masqueradeFamilyRules, renderMasqueradeScript, renderRemoveScript, KUBE_PROXY_MASQ_MARK, TABLE_FAMILIES, TABLE_FAMILY, TABLE_FAMILY_V6, TABLE_NAME,
  type MasqueradeFamily, type MasqueradeFamilyRules, type MasqueradeSpec,
} from './script.js';
export {
  PodMasquerade, podMasqueradeOwner, POD_MASQ_TABLE, type MasqueradedPod, type PodMasqueradeAddress, type PodMasqueradeOptions,
} from './pod-masquerade.js';
