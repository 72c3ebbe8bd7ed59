// Small, strict codecs shared by the package: decimal u64 amounts, base58
// keys, RFC 3339 expiries, standard base64 JSON headers.
import { getBase58Decoder, getBase58Encoder } from "@solana/kit";

/** Largest u64. */
export const U64_MAX = (1n << 64n) - 1n;
/** Largest i64. */
export const I64_MAX = (1n << 63n) - 1n;

const base58Encoder = getBase58Encoder();
const base58Decoder = getBase58Decoder();

/**
 * A decimal amount of base units from a server: ASCII digits only, at most 20
 * of them, fitting a u64. `undefined` for anything else (signs, fractions,
 * exponents, spaces, empty).
 */
export function parseAmount(value: unknown): bigint | undefined {
  if (typeof value !== "string" || value.length === 0 || value.length > 20) {
    return undefined;
  }
  if (!/^[0-9]+$/.test(value)) {
    return undefined;
  }
  const n = BigInt(value);
  return n <= U64_MAX ? n : undefined;
}

/**
 * A canonical decimal u64 (what the voucher JSON form requires): digits only,
 * no leading zero except `"0"` itself.
 */
export function parseCanonicalU64(value: unknown): bigint | undefined {
  const n = parseAmount(value);
  if (n === undefined || (typeof value === "string" && value.length > 1 && value.startsWith("0"))) {
    return undefined;
  }
  return n;
}

/** An amount given by the caller (bigint, safe integer or decimal string) as a u64. */
export function toU64(value: bigint | number | string, what: string): bigint {
  let n: bigint | undefined;
  if (typeof value === "bigint") {
    n = value;
  } else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new RangeError(`${what} must be an integer, got ${value}`);
    }
    n = BigInt(value);
  } else {
    n = parseAmount(value);
  }
  if (n === undefined || n < 0n || n > U64_MAX) {
    throw new RangeError(`${what} must be a u64 amount of base units, got ${String(value)}`);
  }
  return n;
}

/**
 * Bytes of a base58 string of exactly `length` bytes, or `undefined`. Longer
 * text is refused before decoding (the decoder is quadratic).
 */
export function decodeBase58(value: unknown, length: number): Uint8Array | undefined {
  if (typeof value !== "string" || value.length === 0 || value.length > Math.ceil((length * 138) / 100) + 1) {
    return undefined;
  }
  if (!/^[1-9A-HJ-NP-Za-km-z]+$/.test(value)) {
    return undefined;
  }
  try {
    const bytes = base58Encoder.encode(value);
    return bytes.length === length ? new Uint8Array(bytes) : undefined;
  } catch {
    return undefined;
  }
}

/** Base58 text of `bytes`. */
export function encodeBase58(bytes: Uint8Array): string {
  return base58Decoder.decode(bytes);
}

/**
 * RFC 3339 (UTC, whole seconds, `Z`) of Unix seconds, as the Rust voucher
 * crate writes it: `2023-11-14T22:13:20Z`.
 */
export function formatRfc3339(unixSeconds: bigint): string {
  const ms = Number(unixSeconds) * 1000;
  const date = new Date(ms);
  if (!Number.isFinite(ms) || Number.isNaN(date.getTime()) || date.getUTCFullYear() > 9999 || date.getUTCFullYear() < 0) {
    throw new RangeError(`expiry ${unixSeconds} has no RFC 3339 form`);
  }
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Unix seconds of an RFC 3339 time with an offset (`Z` or `±hh:mm`);
 * fractional seconds are dropped (rounded down). `undefined` if malformed.
 */
export function parseRfc3339(value: unknown): bigint | undefined {
  if (typeof value !== "string" || value.length > 64) {
    return undefined;
  }
  if (!/^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(value)) {
    return undefined;
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) {
    return undefined;
  }
  return BigInt(Math.floor(ms / 1000));
}

/** Little-endian bytes of a u64. */
export function u64Le(value: bigint): Uint8Array {
  if (value < 0n || value > U64_MAX) {
    throw new RangeError(`${value} is not a u64`);
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value, true);
  return out;
}

/** Little-endian bytes of an i64. */
export function i64Le(value: bigint): Uint8Array {
  if (value < -(1n << 63n) || value > I64_MAX) {
    throw new RangeError(`${value} is not an i64`);
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, value, true);
  return out;
}

/** Concatenation of byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Whether two byte arrays are equal. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Standard base64 (with padding) of a JSON value, as x402 headers carry it. */
export function encodeBase64Json(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64");
}

/**
 * A JSON value from standard base64 (with padding), bounded by `maxLength`
 * characters of header; `undefined` when it is not one.
 */
export function decodeBase64Json(value: string, maxLength: number): unknown {
  if (value.length > maxLength || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
    return undefined;
  }
  try {
    return JSON.parse(Buffer.from(value, "base64").toString("utf8")) as unknown;
  } catch {
    return undefined;
  }
}

/** `value` as a plain object, or `undefined`. */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
