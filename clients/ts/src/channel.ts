// Per-channel sequencing rules and the budget (pure logic, no I/O), as the
// Rust client's `state.rs` keeps them.
import { U64_MAX } from "./codec.js";
import type { ChannelRecord, PendingTransaction, Phase } from "./state.js";
import type { SignedVoucherJson } from "./voucher.js";
import { parseSignedVoucherJson } from "./voucher.js";

/** The budget would be exceeded. */
export class BudgetExhaustedError extends Error {
  override readonly name = "BudgetExhaustedError";
  constructor(
    readonly needed: bigint,
    readonly remaining: bigint,
    what = "budget",
  ) {
    super(`${what} exhausted: ${needed} needed, ${remaining} left`);
  }
}

/** A server's `lastAccepted` the client cannot have produced. */
export class UntrustedResyncError extends Error {
  override readonly name = "UntrustedResyncError";
}

/**
 * Budget book: `committed` (deposits and top-ups of live channels, the final
 * amounts of closed ones) and `spent` (cumulative amounts signed) both stay
 * within `limit`.
 */
export class Budget {
  spent = 0n;
  committed = 0n;

  constructor(readonly limit: bigint) {}

  /** Value that may still be signed. */
  remainingToSpend(): bigint {
    return this.limit > this.spent ? this.limit - this.spent : 0n;
  }

  /** Value that may still be escrowed. */
  remainingToCommit(): bigint {
    return this.limit > this.committed ? this.limit - this.committed : 0n;
  }

  /** Records `amount` more signed value, or refuses it. */
  spend(amount: bigint): void {
    if (this.spent + amount > this.limit) {
      throw new BudgetExhaustedError(amount, this.remainingToSpend());
    }
    this.spent += amount;
  }

  /** Reserves `amount` more escrow, or refuses it. */
  commit(amount: bigint): void {
    if (this.committed + amount > this.limit) {
      throw new BudgetExhaustedError(amount, this.remainingToCommit());
    }
    this.committed += amount;
  }

  /** Gives a reservation back. */
  release(amount: bigint): void {
    this.committed = this.committed > amount ? this.committed - amount : 0n;
  }
}

/** What the next request on a channel sends. */
export type NextVoucher =
  /** `voucher` again, as is (a credit, or the identical voucher of a retry). */
  | { kind: "resend"; voucher: SignedVoucherJson; cumulative: bigint }
  /** A new voucher for `cumulative`, expiring at `expiresAt` (0: never); `spend` more signed value. */
  | { kind: "sign"; cumulative: bigint; expiresAt: bigint; spend: bigint };

/** One channel in memory (amounts as bigint). */
export class ChannelState {
  address: string;
  payee: string;
  mint: string;
  programId: string;
  tokenProgram: string;
  network: string;
  signer: string;
  sessionKey: string;
  salt: bigint;
  openSlot: bigint;
  gracePeriod: number;
  deposit: bigint;
  settled: bigint;
  accepted: bigint;
  signed: bigint;
  lastVoucher: SignedVoucherJson | undefined;
  resend: boolean;
  phase: Phase;
  pending: PendingTransaction | undefined;

  constructor(r: ChannelRecord) {
    this.address = r.address;
    this.payee = r.payee;
    this.mint = r.mint;
    this.programId = r.programId;
    this.tokenProgram = r.tokenProgram;
    this.network = r.network;
    this.signer = r.signer;
    this.sessionKey = r.sessionKey;
    this.salt = BigInt(r.salt);
    this.openSlot = BigInt(r.openSlot);
    this.gracePeriod = r.gracePeriod;
    this.deposit = BigInt(r.deposit);
    this.settled = BigInt(r.settled);
    this.accepted = BigInt(r.accepted);
    this.signed = BigInt(r.signed);
    this.lastVoucher = r.lastVoucher;
    this.resend = r.resend;
    this.phase = r.phase;
    this.pending = r.pending;
  }

  /** The persisted form. */
  record(): ChannelRecord {
    const r: ChannelRecord = {
      address: this.address,
      payee: this.payee,
      mint: this.mint,
      programId: this.programId,
      tokenProgram: this.tokenProgram,
      network: this.network,
      signer: this.signer,
      sessionKey: this.sessionKey,
      salt: this.salt.toString(),
      openSlot: this.openSlot.toString(),
      gracePeriod: this.gracePeriod,
      deposit: this.deposit.toString(),
      settled: this.settled.toString(),
      accepted: this.accepted.toString(),
      signed: this.signed.toString(),
      resend: this.resend,
      phase: this.phase,
    };
    if (this.lastVoucher !== undefined) {
      r.lastVoucher = this.lastVoucher;
    }
    if (this.pending !== undefined) {
      r.pending = this.pending;
    }
    return r;
  }

  /** A top-up in flight, not yet in `deposit`. */
  pendingTopUp(): bigint {
    return this.pending?.kind === "topUp" ? BigInt(this.pending.amount) : 0n;
  }

  /** The most this channel can cost: its deposit (and a top-up in flight) while it lives; the highest signed amount once closed. */
  exposure(): bigint {
    if (this.phase === "closed") {
      return this.signed > this.settled ? this.signed : this.settled;
    }
    return this.deposit + this.pendingTopUp();
  }

  /** Escrow left above what the server accepted. */
  headroom(): bigint {
    return this.deposit > this.accepted ? this.deposit - this.accepted : 0n;
  }

  /** The cumulative amount of the last voucher, if any. */
  lastCumulative(): bigint | undefined {
    const v = this.lastVoucher === undefined ? undefined : parseSignedVoucherJson(this.lastVoucher);
    return v?.voucher.cumulativeAmount;
  }

  /** Whether the last voucher is owed as is (a credit). */
  hasCredit(): boolean {
    return this.resend && this.lastVoucher !== undefined;
  }

  /** Whether a request of `price` can be paid without a top-up. */
  canPay(price: bigint): boolean {
    return this.phase === "open" && (this.hasCredit() || this.accepted + price <= this.deposit);
  }

  /**
   * The voucher for the next request of `price`:
   *
   * * a credit (`resend`: the last voucher was not confirmed) is re-sent as
   *   is, whatever the price;
   * * else the target is `accepted + price`, never below what was already
   *   signed: when the last voucher is for exactly the target (and is not
   *   near its expiry) it is re-sent byte for byte, otherwise a new one is
   *   signed and the new value is charged to the budget by the caller.
   */
  nextVoucher(price: bigint, nowUnix: bigint, ttlSeconds: bigint | undefined): NextVoucher {
    if (this.phase !== "open") {
      throw new Error(`channel ${this.address} is ${this.phase}`);
    }
    const last = this.lastVoucher === undefined ? undefined : parseSignedVoucherJson(this.lastVoucher);
    const fresh = (expiresAt: bigint): boolean =>
      ttlSeconds === undefined ? expiresAt === 0n : expiresAt !== 0n && expiresAt - nowUnix >= ttlSeconds / 2n;
    if (this.resend && this.lastVoucher !== undefined && last !== undefined && fresh(last.voucher.expiresAt)) {
      return { kind: "resend", voucher: this.lastVoucher, cumulative: last.voucher.cumulativeAmount };
    }
    let target = this.accepted + price;
    if (target < this.signed) {
      target = this.signed;
    }
    if (target > this.deposit || target > U64_MAX) {
      throw new BudgetExhaustedError(target - this.deposit, this.headroom(), `channel ${this.address} deposit`);
    }
    if (this.lastVoucher !== undefined && last !== undefined && last.voucher.cumulativeAmount === target && fresh(last.voucher.expiresAt)) {
      return { kind: "resend", voucher: this.lastVoucher, cumulative: target };
    }
    const expiresAt = ttlSeconds === undefined ? 0n : nowUnix + ttlSeconds;
    return { kind: "sign", cumulative: target, expiresAt, spend: target > this.signed ? target - this.signed : 0n };
  }

  /** A new voucher was signed (before it is persisted and sent). */
  onSigned(voucher: SignedVoucherJson, cumulative: bigint): void {
    if (cumulative > this.signed) {
      this.signed = cumulative;
    }
    this.lastVoucher = voucher;
    this.resend = false;
  }

  /** The server confirmed a voucher for `cumulative`. */
  onPaid(cumulative: bigint): void {
    if (cumulative > this.accepted && cumulative <= this.signed) {
      this.accepted = cumulative;
    }
    const last = this.lastCumulative();
    if (last !== undefined && last <= this.accepted) {
      this.resend = false;
    }
  }

  /**
   * The voucher for `cumulative` was not confirmed (a 5xx, no confirming
   * receipt, a transport failure): when it is the last one, it is owed as
   * is and re-sent by the next request.
   */
  onUnconfirmed(cumulative: bigint): void {
    if (cumulative > this.accepted && this.lastCumulative() === cumulative) {
      this.resend = true;
    }
  }

  /** The server refused the last voucher without a usable hint. */
  onRejected(): void {
    this.resend = false;
  }

  /**
   * Follows a server's `lastAccepted`, only when the client could have
   * produced it: at least what it knows was accepted (and what settled on
   * chain), at most what it ever signed.
   */
  resync(hint: bigint): void {
    if (hint < this.accepted || hint < this.settled || hint > this.signed) {
      throw new UntrustedResyncError(
        `lastAccepted ${hint} of channel ${this.address} is outside [${this.accepted > this.settled ? this.accepted : this.settled}, ${this.signed}]`,
      );
    }
    this.accepted = hint;
    this.resend = false;
  }
}
