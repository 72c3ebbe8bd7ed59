// The `paychan` scheme for @x402/core's x402Client: opens a channel to the
// offer's payee (from the committed IDL), tops it up within the budget, and
// pays each request with a cumulative voucher signed by the channel's
// session key, written durably before it leaves.
import { address as toAddress, type Address, type Commitment, type TransactionSigner } from "@solana/kit";
import type {
  DefaultAsset,
  FindDefaultAsset,
  Network,
  PaymentPayloadContext,
  PaymentPayloadResult,
  PaymentRequirements,
  SchemeClientHooks,
  SchemeNetworkClient,
} from "@x402/core/types";
import type { PaymentResponseContext, x402Client } from "@x402/core/client";
import {
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  decodePaymentSignatureHeader,
  encodePaymentSignatureHeader,
} from "@x402/core/http";
import type { PaymentPayload } from "@x402/core/types";
import { findDefaultAsset as findSvmDefaultAsset } from "@x402/svm";

import { Chain, TransactionFailedError, TransactionUnknownError } from "./chain.js";
import { Budget, BudgetExhaustedError, ChannelState, UntrustedResyncError } from "./channel.js";
import { decodeBase58, encodeBase58, parseAmount, toU64 } from "./codec.js";
import { checkRequirement, readReceipt, resyncHint, SCHEME, type Offer, type OfferFilter } from "./offer.js";
import {
  ChannelStatus,
  findAssociatedTokenAddress,
  openInstruction,
  PAYCHAN_PROGRAM_ID,
  TOKEN_PROGRAM_ID,
  topUpInstruction,
  type ChannelAccount,
} from "./program.js";
import {
  CorruptStateError,
  FileStateStore,
  Persister,
  STATE_VERSION,
  type ChannelRecord,
  type Phase,
  type StateDocument,
  type StateStore,
} from "./state.js";
import { paychanFetch, type TransportOptions } from "./transport.js";
import { parseSignedVoucherJson, SessionKey, signVoucher, type SignedVoucherJson } from "./voucher.js";

/** An amount of base units: a bigint, a safe integer, or a decimal string. */
export type Amount = bigint | number | string;

/** Everything the scheme needs. */
export interface PaychanSchemeConfig {
  /** JSON-RPC endpoint of the cluster the offers' network names. */
  rpcUrl: string;
  /** Funds deposits and top-ups, pays fees and rent; signs `open` and `top_up`. */
  payer: TransactionSigner;
  /** The accepted network, CAIP-2 (`solana:<genesis hash prefix>`). */
  network: string;
  /** The mint paid in. */
  mint: string;
  /** The mint's decimals: offers must say the same (`extra.decimals`). */
  decimals?: number;
  /** The mint's token program (default SPL Token). */
  tokenProgram?: string;
  /** The paychan program (default the one of the committed IDL). */
  programId?: string;
  /** The payer's token account in `mint` (default its associated token account). */
  payerTokens?: string;
  /** A state file path (written atomically, mode 0600), or a store. */
  state: string | StateStore;
  /**
   * Total value this state may ever put at stake, base units: deposits and
   * top-ups of live channels plus the final amounts of closed ones never
   * exceed it.
   */
  budget: Amount;
  /** Highest price of one request, base units. */
  maxPrice: Amount;
  /** Deposit of a new channel (less when the budget has less left; default 1,000,000). */
  deposit?: Amount;
  /** Top a channel up when less than this is left above what was accepted (default a tenth of `deposit`). */
  topUpThreshold?: Amount;
  /** Amount of a top-up (less when the budget has less left; default `deposit`). */
  topUpAmount?: Amount;
  /** Most channels open to one payee: one request at a time per channel (default 4). */
  maxChannelsPerPayee?: number;
  /** Vouchers expire this many seconds after signing (default: never). */
  voucherTtlSeconds?: number;
  /** Longest grace period of an offer accepted, seconds (default one day). */
  maxGracePeriodSeconds?: number;
  /** Refuse payees that cannot sign (default true; the all-zero key is always refused). */
  payeeMustSign?: boolean;
  /** Commitment of reads and confirmations (default `confirmed`). */
  commitment?: Commitment;
  /** How long to wait for a transaction to confirm (default 30 s). */
  confirmTimeoutMs?: number;
  /**
   * How long a channel stays reserved for a payment whose answer was never
   * reported (a transport that does not call the hooks), milliseconds
   * (default 60 s). Waiting for a free channel is bounded by the same.
   */
  leaseTimeoutMs?: number;
  /**
   * The symbol of a USD-pegged `mint` (e.g. `"USDC"`) that @x402/svm's
   * default table does not know (a local or test mint): `findDefaultAsset`
   * then reports it, so @x402/core's default spend controls (default
   * assets only, $1 per payment) accept its offers. Mints of that table
   * (USDC on mainnet and devnet, …) need nothing.
   */
  usdSymbol?: string;
}

/** A channel as reported by [`PaychanScheme.channels`] (no secret). */
export interface ChannelInfo {
  address: string;
  payee: string;
  mint: string;
  network: string;
  signer: string;
  phase: Phase;
  deposit: bigint;
  settled: bigint;
  accepted: bigint;
  signed: bigint;
  /** The last voucher is owed to the server as is. */
  credit: boolean;
}

interface Lease {
  /** The signature of the voucher the leased request sends (once signed). */
  signature: string | undefined;
  /** Wall time after which the lease counts as abandoned. */
  until: number;
}

interface Entry {
  state: ChannelState;
  key: SessionKey | undefined;
  lease: Lease | undefined;
}

/** What the transport saw of a paid request (see [`PaychanScheme.fetch`]). */
interface TransportRecord {
  status: number;
  sameOrigin: boolean;
}

const MAX_TRANSPORT_RECORDS = 4096;
/** Most requests (method and URL) whose offer is remembered for paying ahead. */
export const MAX_CACHED_OFFERS = 4096;
/** Longest method and URL remembered. */
export const MAX_RESOURCE_KEY_LEN = 2048;

/**
 * The key an offer is remembered under: the method and the URL's origin,
 * path and query (not its credentials nor its fragment); `undefined` when
 * longer than [`MAX_RESOURCE_KEY_LEN`].
 */
export function resourceKey(method: string, url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  const key = `${method.toUpperCase()} ${u.origin}${u.pathname}${u.search}`;
  return key.length <= MAX_RESOURCE_KEY_LEN ? key : undefined;
}
const DEFAULT_DEPOSIT = 1_000_000n;

function nowUnix(): bigint {
  return BigInt(Math.floor(Date.now() / 1000));
}

/** The x402 `paychan` scheme client. Register it with [`registerPaychanScheme`]. */
export class PaychanScheme implements SchemeNetworkClient {
  readonly scheme = SCHEME;
  readonly schemeHooks: SchemeClientHooks;
  readonly findDefaultAsset: FindDefaultAsset;

  private readonly chain: Chain;
  private readonly store: StateStore;
  private readonly persister: Persister;
  private readonly book: Budget;
  private readonly network: string;
  private readonly mint: Address;
  private readonly programId: Address;
  private readonly tokenProgram: Address;
  private readonly decimals: number | undefined;
  private readonly maxPrice: bigint;
  private readonly deposit: bigint;
  private readonly topUpThreshold: bigint;
  private readonly topUpAmount: bigint;
  private readonly maxChannels: number;
  private readonly ttl: bigint | undefined;
  private readonly maxGrace: number;
  private readonly payeeMustSign: boolean;
  private readonly leaseMs: number;
  private readonly configuredPayerTokens: string | undefined;
  private payerTokens: Address | undefined;
  private readonly entries = new Map<string, Entry>();
  /** Channels being opened, per payee. */
  private readonly opening = new Map<string, number>();
  private waiters: Array<() => void> = [];
  private readonly transport = new Map<string, TransportRecord>();
  /** Offers paid before, by resource key: what a request is paid ahead with. */
  private readonly offers = new Map<string, Pick<PaymentPayload, "accepted" | "resource">>();
  /** Payments sent ahead, by voucher signature, until their answer. */
  private readonly prepaid = new Map<string, PaymentPayload>();
  private ready: Promise<void> | undefined;

  constructor(config: PaychanSchemeConfig) {
    this.network = config.network;
    this.mint = toAddress(config.mint);
    this.programId = toAddress(config.programId ?? PAYCHAN_PROGRAM_ID);
    this.tokenProgram = toAddress(config.tokenProgram ?? TOKEN_PROGRAM_ID);
    this.decimals = config.decimals;
    this.book = new Budget(toU64(config.budget, "budget"));
    this.maxPrice = toU64(config.maxPrice, "maxPrice");
    this.deposit = toU64(config.deposit ?? DEFAULT_DEPOSIT, "deposit");
    if (this.deposit === 0n) {
      throw new RangeError("deposit must be positive");
    }
    this.topUpThreshold = toU64(config.topUpThreshold ?? this.deposit / 10n, "topUpThreshold");
    this.topUpAmount = toU64(config.topUpAmount ?? this.deposit, "topUpAmount");
    this.maxChannels = config.maxChannelsPerPayee ?? 4;
    if (!Number.isSafeInteger(this.maxChannels) || this.maxChannels < 1) {
      throw new RangeError("maxChannelsPerPayee must be at least 1");
    }
    const ttl = config.voucherTtlSeconds;
    if (ttl !== undefined && (!Number.isSafeInteger(ttl) || ttl <= 0)) {
      throw new RangeError("voucherTtlSeconds must be a positive integer");
    }
    this.ttl = ttl === undefined ? undefined : BigInt(ttl);
    this.maxGrace = config.maxGracePeriodSeconds ?? 24 * 60 * 60;
    this.payeeMustSign = config.payeeMustSign ?? true;
    this.leaseMs = config.leaseTimeoutMs ?? 60_000;
    this.configuredPayerTokens = config.payerTokens;
    this.chain = new Chain(config.rpcUrl, config.payer, config.commitment ?? "confirmed", config.confirmTimeoutMs ?? 30_000);
    this.store = typeof config.state === "string" ? new FileStateStore(config.state) : config.state;
    this.persister = new Persister(this.store, () => this.document());
    this.schemeHooks = { onPaymentResponse: (ctx) => this.onPaymentResponse(ctx) };
    const usdSymbol = config.usdSymbol;
    this.findDefaultAsset = (asset: string, network: Network): DefaultAsset | undefined => {
      try {
        const known = findSvmDefaultAsset(asset, network);
        if (known !== undefined) {
          return known;
        }
      } catch {
        // @x402/svm throws for networks it does not know (local clusters).
      }
      if (usdSymbol !== undefined && asset === this.mint && network === this.network && this.decimals !== undefined) {
        return { asset, decimals: this.decimals, symbol: usdSymbol };
      }
      return undefined;
    };
  }

  /** The payer. */
  get payer(): string {
    return this.chain.payer.address;
  }

  /**
   * A fetch for `wrapFetchWithPayment` to wrap: it sends an `Idempotency-Key`
   * with each paychan payment (and retries a paid request cut off by the
   * network with the same voucher and key, so the server answers it once),
   * follows redirects only within the request's origin (a payment header
   * never reaches another origin), and tells this scheme the status of
   * every paid answer (a 5xx or an answer without a confirming
   * `PAYMENT-RESPONSE` is a credit, never counted as paid).
   */
  fetch(base: typeof globalThis.fetch = globalThis.fetch, options: TransportOptions = {}): typeof globalThis.fetch {
    return paychanFetch(base, options, {
      isOwnPayment: (signature) => this.isOwnPayment(signature),
      onAnswer: (signature, status, sameOrigin) => this.recordAnswer(signature, status, sameOrigin),
      onTransportError: (signature) => this.onTransportError(signature),
      prepare: (method, url) => this.prepare(method, url),
      onPrepaidAnswer: (signature, response, method, url) => this.onPrepaidAnswer(signature, response, method, url),
      remember: (method, url, header, response) => this.remember(method, url, header, response),
    });
  }

  /** Reads the state and reconciles it with the chain (done on first use). */
  init(): Promise<void> {
    if (this.ready === undefined) {
      this.ready = this.load().catch((e: unknown) => {
        this.ready = undefined;
        throw e;
      });
    }
    return this.ready;
  }

  /** The budget book: limit, value signed, value escrowed. */
  budget(): { limit: bigint; spent: bigint; committed: bigint } {
    return { limit: this.book.limit, spent: this.book.spent, committed: this.book.committed };
  }

  /** Every known channel (no secrets). */
  channels(): ChannelInfo[] {
    return [...this.entries.values()].map(({ state: s }) => ({
      address: s.address,
      payee: s.payee,
      mint: s.mint,
      network: s.network,
      signer: s.signer,
      phase: s.phase,
      deposit: s.deposit,
      settled: s.settled,
      accepted: s.accepted,
      signed: s.signed,
      credit: s.hasCredit(),
    }));
  }

  /** Writes the in-memory state (e.g. the accepted amounts before exiting). */
  async flush(): Promise<void> {
    await this.init();
    await this.persister.persist();
  }

  /** x402 `SchemeNetworkClient`: the voucher paying `requirements` once. */
  async createPaymentPayload(
    x402Version: number,
    requirements: PaymentRequirements,
    context?: PaymentPayloadContext,
  ): Promise<PaymentPayloadResult> {
    if (x402Version !== 2) {
      throw new Error(`paychan pays x402 version 2 offers, not version ${x402Version}`);
    }
    await this.init();
    const offer = checkRequirement(requirements, this.filter());
    const cap = context?.maxAmountPerPayment;
    if (cap !== undefined) {
      const max = parseAmount(cap);
      if (max === undefined || offer.price > max) {
        throw new BudgetExhaustedError(offer.price, max ?? 0n, "maxAmountPerPayment");
      }
    }
    const entry = await this.lease(offer);
    try {
      const voucher = await this.voucherFor(entry, offer.price);
      entry.lease = { signature: voucher.signature, until: Date.now() + this.leaseMs };
      return { x402Version: 2, payload: voucher as unknown as Record<string, unknown> };
    } catch (e) {
      this.release(entry);
      throw e;
    }
  }

  /** x402 `onPaymentResponse`: how the server answered a paid request. */
  async onPaymentResponse(ctx: PaymentResponseContext): Promise<void | { recovered: true }> {
    if (ctx.requirements.scheme !== SCHEME) {
      return undefined;
    }
    const paid = parseSignedVoucherJson(ctx.paymentPayload.payload);
    if (paid === undefined) {
      return undefined;
    }
    const entry = this.entries.get(encodeBase58(paid.voucher.channelId));
    if (entry === undefined) {
      return undefined;
    }
    const signature = encodeBase58(paid.signature);
    const seen = this.transport.get(signature);
    this.transport.delete(signature);
    const state = entry.state;
    const cumulative = paid.voucher.cumulativeAmount;
    let recovered = false;
    try {
      if (seen !== undefined && !seen.sameOrigin) {
        state.onUnconfirmed(cumulative);
      } else if (ctx.paymentRequired !== undefined || seen?.status === 402) {
        const hint = resyncHint(ctx.paymentRequired);
        if (hint !== undefined && hint.channel === state.address && hint.lastAccepted !== undefined) {
          try {
            state.resync(hint.lastAccepted);
            recovered = true;
          } catch (e) {
            if (!(e instanceof UntrustedResyncError)) {
              throw e;
            }
            state.onRejected();
          }
        } else {
          state.onRejected();
          await this.refresh(entry).catch(() => undefined);
        }
      } else if (seen !== undefined && seen.status >= 500) {
        state.onUnconfirmed(cumulative);
      } else if (seen !== undefined && seen.status === 400 && ctx.settleResponse === undefined) {
        state.onRejected();
      } else {
        const increment = cumulative > state.accepted ? cumulative - state.accepted : 0n;
        const receipt = readReceipt(ctx.settleResponse, increment);
        if (receipt.kind === "confirmed") {
          state.onPaid(cumulative);
        } else {
          state.onUnconfirmed(cumulative);
        }
      }
    } finally {
      if (entry.lease?.signature === signature) {
        this.release(entry);
      }
    }
    return recovered ? { recovered: true } : undefined;
  }

  // ---- channels -------------------------------------------------------

  private filter(): OfferFilter {
    return {
      network: this.network,
      mint: this.mint,
      programId: this.programId,
      tokenProgram: this.tokenProgram,
      decimals: this.decimals,
      maxPrice: this.maxPrice,
      remainingBudget: this.book.remainingToSpend(),
      maxGracePeriod: this.maxGrace,
      payeeMustSign: this.payeeMustSign,
    };
  }

  /** A free channel to the offer's payee that can pay its price (topped up if needed), or a new one. */
  private async lease(offer: Offer): Promise<Entry> {
    const deadline = Date.now() + this.leaseMs;
    for (;;) {
      const now = Date.now();
      const pool = [...this.entries.values()].filter(
        (e) =>
          e.state.payee === offer.payee &&
          e.state.mint === this.mint &&
          e.state.programId === this.programId &&
          e.state.network === this.network &&
          e.state.phase === "open" &&
          e.state.pending?.kind !== "open",
      );
      const remaining = this.book.remainingToCommit();
      let busy = 0;
      let chosen: Entry | undefined;
      for (const e of pool) {
        if (e.lease !== undefined && e.lease.until > now) {
          busy += 1;
          continue;
        }
        if (e.lease !== undefined) {
          this.abandon(e);
        }
        const headroom = e.state.headroom();
        const need = offer.price > headroom ? offer.price - headroom : 0n;
        if (e.state.canPay(offer.price) || need <= remaining) {
          chosen = e;
          break;
        }
      }
      if (chosen !== undefined) {
        chosen.lease = { signature: undefined, until: now + this.leaseMs };
        try {
          await this.ensureCapacity(chosen, offer.price);
        } catch (e) {
          this.release(chosen);
          throw e;
        }
        return chosen;
      }
      const opening = this.opening.get(offer.payee) ?? 0;
      if (pool.length + opening < this.maxChannels) {
        this.opening.set(offer.payee, opening + 1);
        try {
          return await this.open(offer);
        } finally {
          this.opening.set(offer.payee, (this.opening.get(offer.payee) ?? 1) - 1);
          this.wake();
        }
      }
      if (busy === 0 && opening === 0) {
        throw new BudgetExhaustedError(offer.price, remaining);
      }
      if (now >= deadline) {
        throw new Error(`no channel to ${offer.payee} became free within ${this.leaseMs} ms`);
      }
      await this.waitForRelease(deadline - now);
    }
  }

  private release(entry: Entry): void {
    entry.lease = undefined;
    this.wake();
  }

  /** A lease whose answer never came: like a transport failure. */
  private abandon(entry: Entry): void {
    const signature = entry.lease?.signature;
    const last = entry.state.lastVoucher;
    if (signature !== undefined && last !== undefined && last.signature === signature) {
      const cumulative = entry.state.lastCumulative();
      if (cumulative !== undefined) {
        entry.state.onUnconfirmed(cumulative);
      }
    }
    entry.lease = undefined;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      w();
    }
  }

  private waitForRelease(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.min(ms, this.leaseMs));
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private async payerTokenAccount(): Promise<Address> {
    if (this.payerTokens === undefined) {
      this.payerTokens =
        this.configuredPayerTokens !== undefined
          ? toAddress(this.configuredPayerTokens)
          : await findAssociatedTokenAddress(this.chain.payer.address, this.mint, this.tokenProgram);
    }
    return this.payerTokens;
  }

  private async keyOf(entry: Entry): Promise<SessionKey> {
    if (entry.key === undefined) {
      const seed = decodeBase58(entry.state.sessionKey, 32);
      if (seed === undefined) {
        throw new CorruptStateError(`channel ${entry.state.address}: the session key is not 32 bytes of base58`);
      }
      const key = await SessionKey.fromSeed(seed);
      if (key.address !== entry.state.signer) {
        throw new CorruptStateError(`channel ${entry.state.address}: the session key does not match its signer`);
      }
      entry.key = key;
    }
    return entry.key;
  }

  /** Opens a channel for `offer` (leased to the caller). */
  private async open(offer: Offer): Promise<Entry> {
    const remaining = this.book.remainingToCommit();
    const deposit = this.deposit < remaining ? this.deposit : remaining;
    let floor = offer.minimumDeposit > offer.price ? offer.minimumDeposit : offer.price;
    if (floor < 1n) {
      floor = 1n;
    }
    if (deposit < floor) {
      throw new BudgetExhaustedError(floor, remaining);
    }
    this.book.commit(deposit);
    let entry: Entry;
    let tx;
    try {
      const key = await SessionKey.generate();
      const salt = new DataView(crypto.getRandomValues(new Uint8Array(8)).buffer).getBigUint64(0, true);
      const openSlot = await this.chain.slot();
      const payee = toAddress(offer.payee);
      const { instruction, channel } = await openInstruction(
        {
          programId: this.programId,
          payer: this.chain.payer,
          rentPayer: this.chain.payer,
          payee,
          mint: this.mint,
          payerTokens: await this.payerTokenAccount(),
          tokenProgram: this.tokenProgram,
        },
        { salt, openSlot, deposit, gracePeriod: BigInt(offer.gracePeriod), authorizedSigner: toAddress(key.address) },
      );
      tx = await this.chain.prepare([instruction]);
      const record: ChannelRecord = {
        address: channel,
        payee,
        mint: this.mint,
        programId: this.programId,
        tokenProgram: this.tokenProgram,
        network: this.network,
        signer: key.address,
        sessionKey: encodeBase58(key.seed),
        salt: salt.toString(),
        openSlot: openSlot.toString(),
        gracePeriod: offer.gracePeriod,
        deposit: deposit.toString(),
        settled: "0",
        accepted: "0",
        signed: "0",
        resend: false,
        phase: "opening",
        pending: { kind: "open", amount: deposit.toString(), signature: tx.signature, lastValidBlockHeight: tx.lastValidBlockHeight.toString() },
      };
      entry = { state: new ChannelState(record), key, lease: { signature: undefined, until: Date.now() + this.leaseMs } };
      this.entries.set(channel, entry);
      try {
        // The session key and the channel are durable before the transaction is sent.
        await this.persister.persist();
      } catch (e) {
        this.entries.delete(channel);
        throw e;
      }
    } catch (e) {
      this.book.release(deposit);
      throw e;
    }
    try {
      await this.chain.submit(tx);
    } catch (e) {
      if (e instanceof TransactionFailedError) {
        this.entries.delete(entry.state.address);
        this.book.release(deposit);
        await this.persister.persist().catch(() => undefined);
      } else {
        // It may still land: kept as `opening` (budget reserved) for the next start to reconcile.
        entry.lease = undefined;
      }
      throw e;
    }
    entry.state.phase = "open";
    entry.state.pending = undefined;
    return entry;
  }

  /** Tops the channel up when its headroom is under the threshold (or the price), within the budget. */
  private async ensureCapacity(entry: Entry, price: bigint): Promise<void> {
    const s = entry.state;
    if (s.pending?.kind === "topUp") {
      // A top-up whose fate was unknown: settle that first.
      const [exposure, signed] = [s.exposure(), s.signed];
      await this.resolvePending(s, await this.chain.channel(toAddress(s.address), toAddress(s.programId)));
      this.book.committed += s.exposure() - exposure;
      this.book.spent += s.signed - signed;
    }
    const headroom = s.headroom();
    const want = this.topUpThreshold > price ? this.topUpThreshold : price;
    if (s.hasCredit() || headroom >= want || s.pending !== undefined) {
      if (!s.canPay(price)) {
        throw new BudgetExhaustedError(price, headroom, `channel ${s.address} deposit`);
      }
      return;
    }
    const need = price > headroom ? price - headroom : 0n;
    const remaining = this.book.remainingToCommit();
    let amount = this.topUpAmount > need ? this.topUpAmount : need;
    if (amount > remaining) {
      amount = remaining;
    }
    if (amount === 0n || amount < need) {
      if (s.canPay(price)) {
        return;
      }
      throw new BudgetExhaustedError(need, remaining);
    }
    this.book.commit(amount);
    try {
      const instruction = await topUpInstruction(
        {
          programId: toAddress(s.programId),
          payer: this.chain.payer,
          channel: toAddress(s.address),
          payee: toAddress(s.payee),
          mint: toAddress(s.mint),
          payerTokens: await this.payerTokenAccount(),
          tokenProgram: toAddress(s.tokenProgram),
        },
        amount,
      );
      const tx = await this.chain.prepare([instruction]);
      // Recorded before it is sent: after a crash the amount stays reserved until its fate is known.
      s.pending = { kind: "topUp", amount: amount.toString(), signature: tx.signature, lastValidBlockHeight: tx.lastValidBlockHeight.toString() };
      await this.persister.persist();
      await this.chain.submit(tx);
      s.pending = undefined;
      s.deposit += amount;
    } catch (e) {
      const unknown = s.pending !== undefined && e instanceof TransactionUnknownError;
      if (!unknown) {
        // Never sent, or certainly failed: the reservation goes back.
        s.pending = undefined;
        this.book.release(amount);
      }
      if (s.canPay(price)) {
        return;
      }
      throw e;
    }
  }

  /** The voucher for the next request of `price` on a leased channel, durable before it is returned. */
  private async voucherFor(entry: Entry, price: bigint): Promise<SignedVoucherJson> {
    const key = await this.keyOf(entry);
    const next = entry.state.nextVoucher(price, nowUnix(), this.ttl);
    if (next.kind === "resend") {
      return next.voucher;
    }
    this.book.spend(next.spend);
    const channelId = decodeBase58(entry.state.address, 32);
    if (channelId === undefined) {
      throw new CorruptStateError(`channel address ${entry.state.address} is not a key`);
    }
    const voucher = await signVoucher(key, { channelId, cumulativeAmount: next.cumulative, expiresAt: next.expiresAt });
    entry.state.onSigned(voucher, next.cumulative);
    // Durable before it leaves: a crash never loses what was signed.
    await this.persister.persist();
    return voucher;
  }

  // ---- transport reports ------------------------------------------------

  private isOwnPayment(signature: string): boolean {
    for (const e of this.entries.values()) {
      if (e.lease?.signature === signature) {
        return true;
      }
    }
    return false;
  }

  /** The payment header paying `method url` ahead, when its offer was paid before. */
  private async prepare(method: string, url: string): Promise<string | undefined> {
    const key = resourceKey(method, url);
    const known = key === undefined ? undefined : this.offers.get(key);
    if (known === undefined) {
      return undefined;
    }
    const { payload } = await this.createPaymentPayload(2, known.accepted);
    const payment: PaymentPayload = { x402Version: 2, accepted: known.accepted, payload };
    if (known.resource !== undefined) {
      payment.resource = known.resource;
    }
    const signature = typeof payload.signature === "string" ? payload.signature : undefined;
    if (signature === undefined) {
      return undefined;
    }
    if (this.prepaid.size >= MAX_TRANSPORT_RECORDS) {
      this.prepaid.clear();
    }
    this.prepaid.set(signature, payment);
    return encodePaymentSignatureHeader(payment);
  }

  /**
   * Reads the answer to a request paid ahead as the x402 hooks read a paid
   * answer; an answer that does not confirm the payment makes the request
   * be paid after its 402 again (and remembered again once paid).
   */
  private async onPrepaidAnswer(signature: string, response: Response, method: string, url: string): Promise<void> {
    const payment = this.prepaid.get(signature);
    this.prepaid.delete(signature);
    if (payment === undefined) {
      return;
    }
    const header = (name: string): string | null => response.headers.get(name);
    const ctx: PaymentResponseContext = { paymentPayload: payment, requirements: payment.accepted };
    try {
      const h = header("PAYMENT-RESPONSE") ?? header("X-PAYMENT-RESPONSE");
      if (h !== null) {
        ctx.settleResponse = decodePaymentResponseHeader(h);
      }
    } catch {
      // Not a receipt: not paid.
    }
    if (ctx.settleResponse === undefined && response.status === 402) {
      try {
        const h = header("PAYMENT-REQUIRED");
        if (h !== null) {
          ctx.paymentRequired = decodePaymentRequiredHeader(h);
        }
      } catch {
        // A refusal without a readable offer.
      }
    }
    if (ctx.settleResponse?.success !== true || response.status >= 400) {
      const key = resourceKey(method, url);
      if (key !== undefined) {
        this.offers.delete(key);
      }
    }
    await this.onPaymentResponse(ctx);
  }

  /** Remembers the offer a request was paid with after its 402, once its answer confirms the payment. */
  private remember(method: string, url: string, paymentHeader: string, response: Response): void {
    const key = resourceKey(method, url);
    if (key === undefined || response.status >= 400) {
      return;
    }
    const receipt = response.headers.get("PAYMENT-RESPONSE");
    try {
      if (receipt === null || decodePaymentResponseHeader(receipt).success !== true) {
        return;
      }
      const payment = decodePaymentSignatureHeader(paymentHeader);
      if (payment.x402Version !== 2 || payment.accepted.scheme !== SCHEME) {
        return;
      }
      this.offers.delete(key);
      if (this.offers.size >= MAX_CACHED_OFFERS) {
        const oldest = this.offers.keys().next();
        if (oldest.done !== true) {
          this.offers.delete(oldest.value);
        }
      }
      const known: Pick<PaymentPayload, "accepted" | "resource"> = { accepted: payment.accepted };
      if (payment.resource !== undefined) {
        known.resource = payment.resource;
      }
      this.offers.set(key, known);
    } catch {
      // Not a payment this scheme can pay ahead.
    }
  }

  private recordAnswer(signature: string, status: number, sameOrigin: boolean): void {
    if (this.transport.size >= MAX_TRANSPORT_RECORDS) {
      const oldest = this.transport.keys().next();
      if (oldest.done !== true) {
        this.transport.delete(oldest.value);
      }
    }
    this.transport.set(signature, { status, sameOrigin });
  }

  private onTransportError(signature: string): void {
    for (const e of this.entries.values()) {
      if (e.lease?.signature === signature) {
        this.abandon(e);
        this.wake();
        return;
      }
    }
  }

  // ---- state and chain ----------------------------------------------------

  private document(): StateDocument {
    return {
      version: STATE_VERSION,
      payer: this.chain.payer.address,
      channels: [...this.entries.values()].map((e) => e.state.record()),
    };
  }

  /** Recomputes the budget book from the channels. */
  private recount(): void {
    let spent = 0n;
    let committed = 0n;
    for (const { state } of this.entries.values()) {
      spent += state.signed;
      committed += state.exposure();
    }
    this.book.spent = spent;
    this.book.committed = committed;
  }

  private async load(): Promise<void> {
    const doc = await this.store.load();
    this.entries.clear();
    if (doc !== undefined) {
      if (doc.payer !== this.chain.payer.address) {
        throw new CorruptStateError(`the state holds channels of payer ${doc.payer}, not ${this.chain.payer.address}`);
      }
      for (const r of doc.channels) {
        const state = new ChannelState(r);
        this.entries.set(state.address, { state, key: undefined, lease: undefined });
      }
    }
    for (const entry of this.entries.values()) {
      await this.keyOf(entry);
    }
    // Channels of another network (the state file of a payer used with
    // another cluster) are kept and budgeted, not read from this cluster.
    const live = [...this.entries.values()].filter((e) => e.state.phase !== "closed" && e.state.network === this.network);
    await Promise.all(live.map((e) => this.reconcile(e)));
    for (const { state } of this.entries.values()) {
      // A voucher signed but never confirmed (the process stopped before its
      // answer) is owed as is: re-sent, never signed below.
      if (state.signed > state.accepted && state.lastCumulative() === state.signed) {
        state.resend = true;
      }
    }
    // Over a budget smaller than the state's: nothing more is signed or escrowed.
    this.recount();
    await this.persister.persist();
  }

  /** Brings one channel in line with the chain (pending transactions included). */
  private async reconcile(entry: Entry): Promise<void> {
    const s = entry.state;
    const account = await this.chain.channel(toAddress(s.address), toAddress(s.programId));
    if (!(await this.resolvePending(s, account))) {
      this.entries.delete(s.address);
    }
  }

  /**
   * Resolves an `open` or `top_up` whose fate was unknown against the
   * channel's account, then applies the account. Returns false when the
   * channel never came to be (its `open` can no longer land).
   */
  private async resolvePending(s: ChannelState, account: ChannelAccount | null): Promise<boolean> {
    const pending = s.pending;
    if (pending?.kind === "open") {
      if (account !== null) {
        s.pending = undefined;
        s.phase = "open";
      } else if (await this.chain.expired(pending.signature, BigInt(pending.lastValidBlockHeight))) {
        return false;
      } else {
        return true;
      }
    } else if (pending?.kind === "topUp") {
      if (account !== null && account.deposit >= s.deposit + BigInt(pending.amount)) {
        s.pending = undefined;
      } else if (account === null || (await this.chain.expired(pending.signature, BigInt(pending.lastValidBlockHeight)))) {
        s.pending = undefined;
      }
    }
    this.apply(s, account);
    return true;
  }

  private apply(s: ChannelState, account: ChannelAccount | null): void {
    if (account === null) {
      if (s.phase !== "opening") {
        s.phase = "closed";
      }
      return;
    }
    if (account.deposit > s.deposit) {
      s.deposit = account.deposit;
    }
    if (account.settled > s.settled) {
      s.settled = account.settled;
    }
    if (s.settled > s.signed) {
      s.signed = s.settled;
    }
    if (s.settled > s.accepted) {
      s.accepted = s.settled;
    }
    s.phase = account.status === ChannelStatus.Open ? "open" : account.status === ChannelStatus.Closing ? "closing" : "closed";
  }

  /** Re-reads a channel from the chain (after a refusal without a hint), keeping the budget book in step. */
  private async refresh(entry: Entry): Promise<void> {
    const s = entry.state;
    const account = await this.chain.channel(toAddress(s.address), toAddress(s.programId));
    const [exposure, signed] = [s.exposure(), s.signed];
    this.apply(s, account);
    this.book.committed += s.exposure() - exposure;
    this.book.spent += s.signed - signed;
  }
}

/** What [`registerPaychanScheme`] takes: the scheme's configuration. */
export type RegisterPaychanOptions = PaychanSchemeConfig;

/**
 * Registers the `paychan` scheme for `config.network` on an x402 client and
 * returns the scheme (for its `fetch()` transport, `channels()`, `budget()`
 * and `flush()`).
 */
export function registerPaychanScheme(client: x402Client, config: RegisterPaychanOptions): PaychanScheme {
  const scheme = new PaychanScheme(config);
  client.register(config.network as Network, scheme);
  return scheme;
}


