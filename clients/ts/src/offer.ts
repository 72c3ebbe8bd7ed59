// Reading what a server sends: a `paychan` requirement (hostile until
// checked), the resync hint of a refusal, and the receipt of a paid answer.
import { ed25519 } from "@noble/curves/ed25519";
import type { PaymentRequired, PaymentRequirements, SettleResponse } from "@x402/core/types";

import { asRecord, bytesEqual, decodeBase58, parseAmount } from "./codec.js";
import { MAX_GRACE_PERIOD_SECS, MIN_GRACE_PERIOD_SECS } from "./program.js";

/** The scheme's name in x402. */
export const SCHEME = "paychan";
/** Longest string field of an offer looked at. */
const MAX_FIELD = 128;

/** What an acceptable offer must match. */
export interface OfferFilter {
  network: string;
  mint: string;
  programId: string;
  tokenProgram: string;
  /** The mint's decimals, when known: `extra.decimals` must equal it. */
  decimals: number | undefined;
  /** Highest price of one request, base units. */
  maxPrice: bigint;
  /** Value still payable within the budget. */
  remainingBudget: bigint;
  /** Longest grace period accepted, seconds. */
  maxGracePeriod: number;
  /** Refuse payees that cannot sign (off the curve, small order, non-canonical). */
  payeeMustSign: boolean;
}

/** A `paychan` requirement this client can pay, parsed. */
export interface Offer {
  payee: string;
  price: bigint;
  /** Grace period to open channels with (within the program's range). */
  gracePeriod: number;
  minimumDeposit: bigint;
}

/** The offer is not one this client pays. */
export class UnacceptableOfferError extends Error {
  override readonly name = "UnacceptableOfferError";
}

/**
 * Whether 32 bytes are a key that can sign: a canonical encoding of a point
 * on the Ed25519 curve that is not of small order.
 */
export function canSign(key: Uint8Array): boolean {
  if (key.length !== 32) {
    return false;
  }
  try {
    const point = ed25519.ExtendedPoint.fromHex(key, false);
    return !point.isSmallOrder() && bytesEqual(point.toRawBytes(), key);
  } catch {
    return false;
  }
}

/** Payees already checked with [`canSign`] (the check costs a point decompression). */
const signers = new Map<string, boolean>();
const MAX_CACHED_SIGNERS = 1024;

function payeeCanSign(payTo: string, bytes: Uint8Array): boolean {
  let known = signers.get(payTo);
  if (known === undefined) {
    known = canSign(bytes);
    if (signers.size >= MAX_CACHED_SIGNERS) {
      signers.clear();
    }
    signers.set(payTo, known);
  }
  return known;
}

function field(value: unknown): string | undefined {
  return typeof value === "string" && value.length <= MAX_FIELD ? value : undefined;
}

/** Checks one requirement against the filter; throws [`UnacceptableOfferError`] saying why not. */
export function checkRequirement(r: PaymentRequirements, f: OfferFilter): Offer {
  const refuse = (why: string): never => {
    throw new UnacceptableOfferError(`paychan offer refused: ${why}`);
  };
  if (r.scheme !== SCHEME) {
    refuse(`scheme ${JSON.stringify(field(r.scheme) ?? "?")}`);
  }
  if (r.network !== f.network) {
    refuse(`network ${JSON.stringify(field(r.network) ?? "?")} is not ${f.network}`);
  }
  if (r.asset !== f.mint) {
    refuse(`asset ${JSON.stringify(field(r.asset) ?? "?")} is not the mint ${f.mint}`);
  }
  const payeeBytes = decodeBase58(r.payTo, 32);
  if (payeeBytes === undefined) {
    return refuse("payTo is not a key");
  }
  if (payeeBytes.every((b) => b === 0)) {
    refuse("payTo is the all-zero key, which nobody can sign for");
  }
  if (f.payeeMustSign && !payeeCanSign(r.payTo, payeeBytes)) {
    refuse(`payTo ${r.payTo} cannot sign (off the curve, small order or not canonical)`);
  }
  const extra = asRecord(r.extra);
  if (extra === undefined) {
    return refuse("no extra");
  }
  if (field(extra.programId) !== f.programId) {
    refuse(`programId ${JSON.stringify(field(extra.programId) ?? "?")} is not ${f.programId}`);
  }
  if (field(extra.tokenProgram) !== f.tokenProgram) {
    refuse(`tokenProgram ${JSON.stringify(field(extra.tokenProgram) ?? "?")} is not ${f.tokenProgram}`);
  }
  if (f.decimals !== undefined && extra.decimals !== f.decimals) {
    refuse(`decimals ${JSON.stringify(extra.decimals)} are not the mint's ${f.decimals}`);
  }
  const price = parseAmount(r.amount);
  if (price === undefined) {
    return refuse("malformed amount");
  }
  if (price === 0n) {
    refuse("zero price");
  }
  if (price > f.maxPrice) {
    refuse(`price ${price} above the cap ${f.maxPrice}`);
  }
  if (price > f.remainingBudget) {
    refuse(`price ${price} above the remaining budget ${f.remainingBudget}`);
  }
  const grace = extra.gracePeriodSeconds;
  if (typeof grace !== "number" || !Number.isSafeInteger(grace) || grace < 0) {
    return refuse("malformed gracePeriodSeconds");
  }
  if (grace > f.maxGracePeriod) {
    refuse(`grace period ${grace} s above the cap ${f.maxGracePeriod} s`);
  }
  const minimumDeposit = parseAmount(extra.minimumDeposit);
  if (minimumDeposit === undefined) {
    return refuse("malformed minimumDeposit");
  }
  return {
    payee: r.payTo,
    price,
    gracePeriod: Math.min(Math.max(grace, MIN_GRACE_PERIOD_SECS), MAX_GRACE_PERIOD_SECS),
    minimumDeposit,
  };
}

/** `extensions.paychan` of a refusal: the channel and the server's last accepted amount. */
export interface ResyncHint {
  channel: string | undefined;
  lastAccepted: bigint | undefined;
  code: string | undefined;
}

/** Reads `extensions.paychan` of a 402, if any. */
export function resyncHint(required: PaymentRequired | undefined): ResyncHint | undefined {
  const paychan = asRecord(asRecord(required?.extensions)?.paychan);
  if (paychan === undefined) {
    return undefined;
  }
  const channel = field(paychan.channel);
  const last = paychan.lastAccepted;
  return {
    channel: channel !== undefined && decodeBase58(channel, 32) !== undefined ? channel : undefined,
    lastAccepted: typeof last === "number" && Number.isSafeInteger(last) && last >= 0 ? BigInt(last) : parseAmount(last),
    code: field(paychan.code)?.slice(0, 64),
  };
}

/** What the receipt of an answer to a paid request says. */
export type Receipt =
  | { kind: "confirmed"; charged: bigint }
  | { kind: "missing" }
  | { kind: "failed"; reason: string | undefined }
  | { kind: "badAmount" }
  | { kind: "overcharged"; charged: bigint; increment: bigint };

/**
 * Reads a `PAYMENT-RESPONSE` for a voucher adding `increment` to what the
 * server confirmed before: confirmed only when it says `success: true` and
 * charged at most the increment (an `amount` left out is the increment).
 */
export function readReceipt(settle: SettleResponse | undefined, increment: bigint): Receipt {
  if (settle === undefined) {
    return { kind: "missing" };
  }
  if (settle.success !== true) {
    return { kind: "failed", reason: field(settle.errorReason)?.slice(0, 64) };
  }
  let charged = increment;
  if (settle.amount !== undefined) {
    const a = parseAmount(settle.amount);
    if (a === undefined) {
      return { kind: "badAmount" };
    }
    charged = a;
  }
  if (charged > increment) {
    return { kind: "overcharged", charged, increment };
  }
  return { kind: "confirmed", charged };
}
