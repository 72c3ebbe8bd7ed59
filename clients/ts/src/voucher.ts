// The v1 voucher (PROTOCOL §2): 50 bytes signed with the channel's session
// key, and its JSON form (crates/paychan-voucher/src/json.rs).
import { createKeyPairFromPrivateKeyBytes, getAddressFromPublicKey, signBytes } from "@solana/kit";

import {
  asRecord,
  concatBytes,
  decodeBase58,
  encodeBase58,
  formatRfc3339,
  i64Le,
  parseCanonicalU64,
  parseRfc3339,
  u64Le,
} from "./codec.js";

/** Length of an encoded v1 voucher. */
export const VOUCHER_V1_LEN = 50;
/** Magic of a v1 voucher: `'V'`, version 1. */
export const MAGIC_V1 = Uint8Array.of(0x56, 0x01);
/** The only `signatureType`. */
export const SIGNATURE_TYPE_ED25519 = "ed25519";

/** "The payer owes `cumulativeAmount` in total on `channelId`." */
export interface VoucherV1 {
  /** The channel PDA address (32 bytes). */
  channelId: Uint8Array;
  /** Total owed on the channel so far, base units (u64). */
  cumulativeAmount: bigint;
  /** Unix seconds after which the voucher is void; 0 = never (i64). */
  expiresAt: bigint;
}

/** The JSON form of a signed v1 voucher, as the paywall decodes it. */
export interface SignedVoucherJson {
  voucher: {
    /** Channel address, base58. */
    channelId: string;
    /** Decimal u64. */
    cumulativeAmount: string;
    /** RFC 3339; absent when the voucher never expires. */
    expiresAt?: string;
  };
  /** The session key's public key, base58. */
  signer: string;
  /** Ed25519 signature of the 50 bytes, base58. */
  signature: string;
  signatureType: "ed25519";
}

/** A signed voucher read back from its JSON form (fields validated). */
export interface SignedVoucher {
  voucher: VoucherV1;
  signer: Uint8Array;
  signature: Uint8Array;
}

/** The 50 bytes that are signed: `0x56 0x01 || channel id || cumulative u64 LE || expires_at i64 LE`. */
export function encodeVoucherV1(v: VoucherV1): Uint8Array {
  if (v.channelId.length !== 32) {
    throw new RangeError("a channel id is 32 bytes");
  }
  return concatBytes(MAGIC_V1, v.channelId, u64Le(v.cumulativeAmount), i64Le(v.expiresAt));
}

/** An Ed25519 session key: the channel's `authorized_signer`. */
export class SessionKey {
  private constructor(
    /** The 32-byte seed (secret: persisted with the channel's state). */
    readonly seed: Uint8Array,
    /** The public key, base58 (the channel's `authorized_signer`). */
    readonly address: string,
    private readonly privateKey: CryptoKey,
  ) {}

  /** The key of a 32-byte seed. */
  static async fromSeed(seed: Uint8Array): Promise<SessionKey> {
    if (seed.length !== 32) {
      throw new RangeError("an Ed25519 seed is 32 bytes");
    }
    const copy = new Uint8Array(seed);
    const pair = await createKeyPairFromPrivateKeyBytes(copy, false);
    const address = await getAddressFromPublicKey(pair.publicKey);
    return new SessionKey(copy, address, pair.privateKey);
  }

  /** A new random key. */
  static async generate(): Promise<SessionKey> {
    return SessionKey.fromSeed(crypto.getRandomValues(new Uint8Array(32)));
  }

  /** The public key's 32 bytes. */
  publicKeyBytes(): Uint8Array {
    const bytes = decodeBase58(this.address, 32);
    if (bytes === undefined) {
      throw new Error("unreachable: an address is 32 bytes of base58");
    }
    return bytes;
  }

  /** Ed25519 signature of `message` (64 bytes). */
  async sign(message: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await signBytes(this.privateKey, message));
  }
}

/** Signs `v` with `key` and returns its JSON form. */
export async function signVoucher(key: SessionKey, v: VoucherV1): Promise<SignedVoucherJson> {
  const signature = await key.sign(encodeVoucherV1(v));
  return voucherJson(v, key.publicKeyBytes(), signature);
}

/** The JSON form of a signed voucher. */
export function voucherJson(v: VoucherV1, signer: Uint8Array, signature: Uint8Array): SignedVoucherJson {
  const voucher: SignedVoucherJson["voucher"] = {
    channelId: encodeBase58(v.channelId),
    cumulativeAmount: v.cumulativeAmount.toString(),
  };
  if (v.expiresAt !== 0n) {
    voucher.expiresAt = formatRfc3339(v.expiresAt);
  }
  return {
    voucher,
    signer: encodeBase58(signer),
    signature: encodeBase58(signature),
    signatureType: SIGNATURE_TYPE_ED25519,
  };
}

/**
 * Reads the JSON form back, validating every field as the Rust decoder does
 * (base58 lengths, canonical decimal amount, RFC 3339 expiry, signature
 * type). Does not verify the signature. `undefined` when anything is wrong.
 */
export function parseSignedVoucherJson(value: unknown): SignedVoucher | undefined {
  const root = asRecord(value);
  const inner = asRecord(root?.voucher);
  if (root === undefined || inner === undefined || root.signatureType !== SIGNATURE_TYPE_ED25519) {
    return undefined;
  }
  const channelId = decodeBase58(inner.channelId, 32);
  const cumulativeAmount = parseCanonicalU64(inner.cumulativeAmount);
  let expiresAt = 0n;
  if (inner.expiresAt !== undefined && inner.expiresAt !== null) {
    const t = parseRfc3339(inner.expiresAt);
    if (t === undefined || t === 0n) {
      return undefined;
    }
    expiresAt = t;
  }
  const signer = decodeBase58(root.signer, 32);
  const signature = decodeBase58(root.signature, 64);
  if (channelId === undefined || cumulativeAmount === undefined || signer === undefined || signature === undefined) {
    return undefined;
  }
  return { voucher: { channelId, cumulativeAmount, expiresAt }, signer, signature };
}
