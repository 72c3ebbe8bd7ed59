// @paychan/x402-client: the `paychan` x402 scheme (prepaid escrow payment
// channels on Solana) for @x402/core's x402Client and @x402/fetch.
export { PaychanScheme, registerPaychanScheme } from "./scheme.js";
export type { Amount, ChannelInfo, PaychanSchemeConfig, RegisterPaychanOptions } from "./scheme.js";
export { Budget, BudgetExhaustedError, ChannelState, UntrustedResyncError } from "./channel.js";
export type { NextVoucher } from "./channel.js";
export { UnacceptableOfferError, canSign, checkRequirement, readReceipt, resyncHint, SCHEME } from "./offer.js";
export type { Offer, OfferFilter, Receipt, ResyncHint } from "./offer.js";
export {
  CorruptStateError,
  FileStateStore,
  MemoryStateStore,
  STATE_VERSION,
  writeFileAtomic,
} from "./state.js";
export type { ChannelRecord, PendingTransaction, Phase, StateDocument, StateStore } from "./state.js";
export {
  encodeVoucherV1,
  parseSignedVoucherJson,
  SessionKey,
  signVoucher,
  voucherJson,
  VOUCHER_V1_LEN,
} from "./voucher.js";
export type { SignedVoucher, SignedVoucherJson, VoucherV1 } from "./voucher.js";
export { fetchWithinOrigin, IDEMPOTENCY_KEY, paychanFetch } from "./transport.js";
export type { TransportHooks, TransportOptions } from "./transport.js";
export { TransactionFailedError, TransactionUnknownError } from "./chain.js";
export * as program from "./program.js";
