// What the client asks of the cluster, over JSON-RPC with @solana/kit:
// slots, channel accounts, and transactions sent then confirmed by polling
// (no websocket needed).
import {
  appendTransactionMessageInstructions,
  createSolanaRpc,
  createTransactionMessage,
  getBase64EncodedWireTransaction,
  getSignatureFromTransaction,
  isSolanaError,
  pipe,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signTransactionMessageWithSigners,
  SOLANA_ERROR__JSON_RPC__SERVER_ERROR_SEND_TRANSACTION_PREFLIGHT_FAILURE,
  type Address,
  type Commitment,
  type Instruction,
  type Rpc,
  type SolanaRpcApi,
  type TransactionSigner,
} from "@solana/kit";

import { decodeChannelAccount, type ChannelAccount } from "./program.js";

/** A transaction signed and ready to send, with what decides whether it can still land. */
export interface PreparedTransaction {
  /** Its signature, base58. */
  signature: string;
  /** The wire bytes, base64. */
  wire: string;
  /** After this block height it can never land. */
  lastValidBlockHeight: bigint;
}

/** The transaction certainly did not land (refused by preflight, or failed on chain). */
export class TransactionFailedError extends Error {
  override readonly name = "TransactionFailedError";
}

/** Whether the transaction landed is unknown (timeout, transport): it may still land. */
export class TransactionUnknownError extends Error {
  override readonly name = "TransactionUnknownError";
}

/** What the client reads and sends. */
export class Chain {
  private readonly rpc: Rpc<SolanaRpcApi>;

  constructor(
    rpcUrl: string,
    readonly payer: TransactionSigner,
    private readonly commitment: Commitment,
    private readonly confirmTimeoutMs: number,
  ) {
    this.rpc = createSolanaRpc(rpcUrl);
  }

  /** The current slot. */
  async slot(): Promise<bigint> {
    return this.rpc.getSlot({ commitment: this.commitment }).send();
  }

  /** The current block height. */
  async blockHeight(): Promise<bigint> {
    return this.rpc.getBlockHeight({ commitment: this.commitment }).send();
  }

  /**
   * A channel account of `programId`: `null` when there is no account,
   * an error when the account is not a channel of that program.
   */
  async channel(addr: Address, programId: Address): Promise<ChannelAccount | null> {
    const { value } = await this.rpc.getAccountInfo(addr, { commitment: this.commitment, encoding: "base64" }).send();
    if (value === null) {
      return null;
    }
    if (value.owner !== programId) {
      throw new Error(`account ${addr} is owned by ${value.owner}, not the paychan program`);
    }
    const data = new Uint8Array(Buffer.from(value.data[0], "base64"));
    const channel = decodeChannelAccount(data);
    if (channel === undefined) {
      throw new Error(`account ${addr} is not a paychan channel`);
    }
    return channel;
  }

  /** Signs a transaction of `instructions` paid by the payer. */
  async prepare(instructions: readonly Instruction[]): Promise<PreparedTransaction> {
    const { value: latest } = await this.rpc.getLatestBlockhash({ commitment: this.commitment }).send();
    const message = pipe(
      createTransactionMessage({ version: 0 }),
      (m) => setTransactionMessageFeePayerSigner(this.payer, m),
      (m) => setTransactionMessageLifetimeUsingBlockhash(latest, m),
      (m) => appendTransactionMessageInstructions(instructions, m),
    );
    const signed = await signTransactionMessageWithSigners(message);
    return {
      signature: getSignatureFromTransaction(signed),
      wire: getBase64EncodedWireTransaction(signed),
      lastValidBlockHeight: latest.lastValidBlockHeight,
    };
  }

  /**
   * Sends a prepared transaction and waits until it is confirmed at the
   * configured commitment. Throws [`TransactionFailedError`] when it
   * certainly did not land, [`TransactionUnknownError`] when it may still.
   */
  async submit(tx: PreparedTransaction): Promise<void> {
    try {
      await this.rpc
        .sendTransaction(tx.wire as Parameters<Rpc<SolanaRpcApi>["sendTransaction"]>[0], {
          encoding: "base64",
          preflightCommitment: this.commitment,
        })
        .send();
    } catch (e) {
      if (isSolanaError(e, SOLANA_ERROR__JSON_RPC__SERVER_ERROR_SEND_TRANSACTION_PREFLIGHT_FAILURE)) {
        throw new TransactionFailedError(`transaction ${tx.signature} refused by preflight: ${describe(e)}`, { cause: e });
      }
      throw new TransactionUnknownError(`sending ${tx.signature} failed: ${describe(e)}`, { cause: e });
    }
    const deadline = Date.now() + this.confirmTimeoutMs;
    let delay = 5;
    for (;;) {
      const status = await this.status(tx.signature);
      if (status === "failed") {
        throw new TransactionFailedError(`transaction ${tx.signature} failed on chain`);
      }
      if (status === "confirmed") {
        return;
      }
      if (Date.now() > deadline) {
        const height = await this.blockHeight().catch(() => undefined);
        if (height !== undefined && height > tx.lastValidBlockHeight && (await this.status(tx.signature)) === "unknown") {
          throw new TransactionFailedError(`transaction ${tx.signature} expired without landing`);
        }
        throw new TransactionUnknownError(`transaction ${tx.signature} not confirmed within ${this.confirmTimeoutMs} ms`);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 250);
    }
  }

  /** What the cluster says of a signature. */
  async status(signature: string): Promise<"confirmed" | "failed" | "unknown"> {
    const { value } = await this.rpc
      .getSignatureStatuses([signature as Parameters<Rpc<SolanaRpcApi>["getSignatureStatuses"]>[0][number]], {
        searchTransactionHistory: true,
      })
      .send();
    const s = value[0];
    if (s === null || s === undefined) {
      return "unknown";
    }
    if (s.err !== null) {
      return "failed";
    }
    const reached =
      s.confirmationStatus === "finalized" ||
      (s.confirmationStatus === "confirmed" && this.commitment !== "finalized") ||
      (s.confirmationStatus === "processed" && this.commitment === "processed");
    return reached ? "confirmed" : "unknown";
  }

  /** Whether a prepared transaction can no longer land (its blockhash expired and it is unknown). */
  async expired(signature: string, lastValidBlockHeight: bigint): Promise<boolean> {
    const height = await this.blockHeight();
    return height > lastValidBlockHeight && (await this.status(signature)) === "unknown";
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
