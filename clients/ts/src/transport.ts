// The fetch `wrapFetchWithPayment` wraps (see `PaychanScheme.fetch`):
// payment headers never leave the request's origin, paid requests carry an
// `Idempotency-Key` and are retried with the same voucher and key when the
// connection fails, and the scheme learns the status of every paid answer.
import { randomBytes } from "node:crypto";

import { asRecord, decodeBase64Json } from "./codec.js";
import { SCHEME } from "./offer.js";

/** Options of the transport. */
export interface TransportOptions {
  /**
   * How many times a paid request whose connection failed is sent again
   * (same voucher, same `Idempotency-Key`: the server answers it once, from
   * its stored answer when it already ran), and a 409 `in_flight` waited
   * for. Default 1.
   */
  retries?: number;
  /** Most redirects followed within the request's origin (default 10). */
  maxRedirects?: number;
  /** Longest wait for a 409's `Retry-After`, milliseconds (default 2,000). */
  maxRetryAfterMs?: number;
  /**
   * Pay ahead: a request (same method, same URL) whose paychan offer was
   * paid before carries a voucher at once instead of waiting for its 402,
   * halving the round trips (default true). Such payments do not go through
   * the x402Client's selection and hooks (its spend controls passed the
   * same offer the first time); a refusal is handed back to
   * `wrapFetchWithPayment` as the 402 it is, which then pays as usual.
   */
  prepay?: boolean;
}

/** What the transport reports to the scheme. */
export interface TransportHooks {
  /** Whether a voucher signature is one of the scheme's payments in flight. */
  isOwnPayment(signature: string): boolean;
  /** A paid request was answered. */
  onAnswer(signature: string, status: number, sameOrigin: boolean): void;
  /** A paid request got no answer (the connection failed). */
  onTransportError(signature: string): void;
  /** The PAYMENT-SIGNATURE to pay `method url` ahead with, if its offer is known. */
  prepare(method: string, url: string): Promise<string | undefined>;
  /** How a request paid ahead was answered (the x402 hooks never see it). */
  onPrepaidAnswer(signature: string, response: Response, method: string, url: string): Promise<void>;
  /** A paid request (paid after its 402) was answered: remember its offer if it was paid. */
  remember(method: string, url: string, paymentHeader: string, response: Response): void;
}

/** Header of an Idempotency-Key. */
export const IDEMPOTENCY_KEY = "Idempotency-Key";
/** Largest payment header looked at. */
const MAX_PAYMENT_HEADER = 8 * 1024;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** A fresh `Idempotency-Key`: 32 hex digits. */
export function idempotencyKey(): string {
  return randomBytes(16).toString("hex");
}

/** The voucher signature of a `paychan` PAYMENT-SIGNATURE header, if it is one. */
export function paychanSignature(header: string | null | undefined): string | undefined {
  if (header === null || header === undefined) {
    return undefined;
  }
  const payment = asRecord(decodeBase64Json(header, MAX_PAYMENT_HEADER));
  const accepted = asRecord(payment?.accepted);
  const payload = asRecord(payment?.payload);
  if (accepted?.scheme !== SCHEME || typeof payload?.signature !== "string") {
    return undefined;
  }
  return payload.signature;
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/**
 * Sends `request`, following redirects only within its origin (at most
 * `maxRedirects`); a redirect to another origin is returned, not followed.
 * A request whose redirect mode is not `follow` is sent as it is.
 */
export async function fetchWithinOrigin(
  base: typeof globalThis.fetch,
  request: Request,
  maxRedirects: number,
): Promise<Response> {
  if (request.redirect !== "follow") {
    return base(request);
  }
  const origin = new URL(request.url).origin;
  let current = request;
  for (let hop = 0; ; hop++) {
    const spare = hop < maxRedirects ? current.clone() : undefined;
    const res = await base(new Request(current, { redirect: "manual" }));
    const location = res.headers.get("location");
    if (!REDIRECTS.has(res.status) || location === null || spare === undefined) {
      return res;
    }
    let next: URL;
    try {
      next = new URL(location, current.url);
    } catch {
      return res;
    }
    if (next.origin !== origin) {
      return res;
    }
    await res.body?.cancel();
    const method = spare.method;
    const toGet = res.status === 303 ? method !== "GET" && method !== "HEAD" : (res.status === 301 || res.status === 302) && method === "POST";
    const headers = new Headers(spare.headers);
    let body: ArrayBuffer | null = null;
    if (toGet) {
      for (const h of ["content-type", "content-length", "content-encoding", "content-language", "content-location"]) {
        headers.delete(h);
      }
    } else if (method !== "GET" && method !== "HEAD") {
      body = await spare.arrayBuffer();
    }
    current = new Request(next, { method: toGet ? "GET" : method, headers, body, redirect: "follow", signal: spare.signal });
  }
}

function retryAfterMs(res: Response, max: number): number {
  const value = res.headers.get("retry-after");
  const seconds = value === null ? NaN : Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds * 1000, max) : Math.min(1000, max);
}

/** The transport; see [`TransportOptions`] and [`TransportHooks`]. */
export function paychanFetch(
  base: typeof globalThis.fetch,
  options: TransportOptions,
  hooks: TransportHooks,
): typeof globalThis.fetch {
  const retries = options.retries ?? 1;
  const maxRedirects = options.maxRedirects ?? 10;
  const maxRetryAfter = options.maxRetryAfterMs ?? 2_000;
  const prepay = options.prepay ?? true;
  return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    let header = request.headers.get("PAYMENT-SIGNATURE");
    let prepaid = false;
    if (header === null && !request.headers.has("X-PAYMENT") && prepay) {
      const ahead = await hooks.prepare(request.method, request.url).catch(() => undefined);
      if (ahead !== undefined) {
        request.headers.set("PAYMENT-SIGNATURE", ahead);
        header = ahead;
        prepaid = true;
      }
    }
    const signature = paychanSignature(header);
    if (header === null || signature === undefined || !hooks.isOwnPayment(signature)) {
      return fetchWithinOrigin(base, request, maxRedirects);
    }
    if (!request.headers.has(IDEMPOTENCY_KEY)) {
      request.headers.set(IDEMPOTENCY_KEY, idempotencyKey());
    }
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetchWithinOrigin(base, request.clone(), maxRedirects);
      } catch (e) {
        if (attempt < retries && !(request.signal?.aborted ?? false)) {
          continue;
        }
        hooks.onTransportError(signature);
        throw e;
      }
      if (res.status === 409 && attempt < retries) {
        // The run this voucher paid is still in flight: its answer comes to the same voucher and key.
        await res.body?.cancel();
        await new Promise((resolve) => setTimeout(resolve, retryAfterMs(res, maxRetryAfter)));
        continue;
      }
      hooks.onAnswer(signature, res.status, sameOrigin(res.url === "" ? request.url : res.url, request.url));
      if (prepaid) {
        await hooks.onPrepaidAnswer(signature, res, request.method, request.url);
      } else {
        hooks.remember(request.method, request.url, header, res);
      }
      return res;
    }
  };
}
