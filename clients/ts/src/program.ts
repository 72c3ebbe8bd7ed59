// The paychan program as the committed IDL (idl/paychan.json) describes it:
// the `open` and `top_up` instructions, the PDAs, the `Channel` account.
// test/idl.test.ts checks every constant here against the IDL.
import {
  AccountRole,
  address,
  getAddressDecoder,
  getAddressEncoder,
  getProgramDerivedAddress,
  type Address,
  type Instruction,
  type TransactionSigner,
} from "@solana/kit";
import type { AccountSignerMeta } from "@solana/kit";

import { bytesEqual, concatBytes, i64Le, u64Le } from "./codec.js";

/** The paychan program (`address` of the IDL). */
export const PAYCHAN_PROGRAM_ID = address("5AtZWbugM3nhSLAXqJtAX2aLMHb6LCNbCjdEHXzhRi5Y");
/** SPL Token. */
export const TOKEN_PROGRAM_ID = address("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
/** SPL Token-2022. */
export const TOKEN_2022_PROGRAM_ID = address("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");
/** The associated token account program. */
export const ASSOCIATED_TOKEN_PROGRAM_ID = address("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL");
/** The system program. */
export const SYSTEM_PROGRAM_ID = address("11111111111111111111111111111111");

/** Seed prefixes (IDL `constants`). */
export const SEED_CHANNEL = new TextEncoder().encode("channel");
export const SEED_VAULT = new TextEncoder().encode("vault");
export const SEED_VAULT_TOKENS = new TextEncoder().encode("vault_tokens");
/** `open_slot` must be at most this many slots old when the channel opens. */
export const OPEN_SLOT_WINDOW = 1_500n;
/** Shortest grace period the program accepts, seconds. */
export const MIN_GRACE_PERIOD_SECS = 600;
/** Longest grace period the program accepts, seconds. */
export const MAX_GRACE_PERIOD_SECS = 30 * 24 * 60 * 60;

/** Instruction and account discriminators (IDL). */
export const OPEN_DISCRIMINATOR = Uint8Array.of(228, 220, 155, 71, 199, 189, 60, 45);
export const TOP_UP_DISCRIMINATOR = Uint8Array.of(236, 225, 96, 9, 60, 106, 77, 208);
export const CHANNEL_DISCRIMINATOR = Uint8Array.of(49, 159, 99, 106, 220, 87, 219, 88);

/** Size of a `Channel` account: discriminator and 224 bytes (bytemuck, repr C). */
export const CHANNEL_ACCOUNT_LEN = 232;

/** `ChannelStatus` of the program. */
export const ChannelStatus = { Open: 1, Closing: 2, Closed: 3 } as const;

const addressEncoder = getAddressEncoder();
const addressDecoder = getAddressDecoder();

/** The 32 bytes of an address. */
export function addressBytes(a: Address): Uint8Array {
  return new Uint8Array(addressEncoder.encode(a));
}

/** What a channel PDA is derived from. */
export interface ChannelSeeds {
  programId: Address;
  payer: Address;
  payee: Address;
  mint: Address;
  authorizedSigner: Address;
  salt: bigint;
  openSlot: bigint;
}

/** `["channel", payer, payee, mint, authorized_signer, salt u64 LE, open_slot u64 LE]`. */
export async function findChannelAddress(s: ChannelSeeds): Promise<Address> {
  const [pda] = await getProgramDerivedAddress({
    programAddress: s.programId,
    seeds: [
      SEED_CHANNEL,
      addressBytes(s.payer),
      addressBytes(s.payee),
      addressBytes(s.mint),
      addressBytes(s.authorizedSigner),
      u64Le(s.salt),
      u64Le(s.openSlot),
    ],
  });
  return pda;
}

/** `["vault", payee, mint]`: the payee's pooled vault in `mint`. */
export async function findVaultAddress(programId: Address, payee: Address, mint: Address): Promise<Address> {
  const [pda] = await getProgramDerivedAddress({
    programAddress: programId,
    seeds: [SEED_VAULT, addressBytes(payee), addressBytes(mint)],
  });
  return pda;
}

/** `["vault_tokens", vault]`: the vault's token account. */
export async function findVaultTokensAddress(programId: Address, vault: Address): Promise<Address> {
  const [pda] = await getProgramDerivedAddress({
    programAddress: programId,
    seeds: [SEED_VAULT_TOKENS, addressBytes(vault)],
  });
  return pda;
}

/** The associated token account of `owner` in `mint` under `tokenProgram`. */
export async function findAssociatedTokenAddress(owner: Address, mint: Address, tokenProgram: Address): Promise<Address> {
  const [pda] = await getProgramDerivedAddress({
    programAddress: ASSOCIATED_TOKEN_PROGRAM_ID,
    seeds: [addressBytes(owner), addressBytes(tokenProgram), addressBytes(mint)],
  });
  return pda;
}

/** `OpenArgs` of the IDL. */
export interface OpenArgs {
  salt: bigint;
  openSlot: bigint;
  deposit: bigint;
  gracePeriod: bigint;
  authorizedSigner: Address;
}

/** Accounts of `open` that are not derived. */
export interface OpenAccounts {
  programId: Address;
  /** Funds the deposit (signs). */
  payer: TransactionSigner;
  /** Pays the new accounts' rent (signs). */
  rentPayer: TransactionSigner;
  payee: Address;
  mint: Address;
  payerTokens: Address;
  tokenProgram: Address;
}

function signerMeta(signer: TransactionSigner, role: AccountRole.READONLY_SIGNER | AccountRole.WRITABLE_SIGNER): AccountSignerMeta {
  return { address: signer.address, role, signer };
}

/** The borsh bytes of `open`'s data: discriminator and `OpenArgs`. */
export function encodeOpenData(args: OpenArgs): Uint8Array {
  return concatBytes(
    OPEN_DISCRIMINATOR,
    u64Le(args.salt),
    u64Le(args.openSlot),
    u64Le(args.deposit),
    i64Le(args.gracePeriod),
    addressBytes(args.authorizedSigner),
  );
}

/** `open`: creates the channel and escrows `args.deposit`. Returns the instruction and the channel's address. */
export async function openInstruction(a: OpenAccounts, args: OpenArgs): Promise<{ instruction: Instruction; channel: Address }> {
  const channel = await findChannelAddress({
    programId: a.programId,
    payer: a.payer.address,
    payee: a.payee,
    mint: a.mint,
    authorizedSigner: args.authorizedSigner,
    salt: args.salt,
    openSlot: args.openSlot,
  });
  const vault = await findVaultAddress(a.programId, a.payee, a.mint);
  const vaultTokens = await findVaultTokensAddress(a.programId, vault);
  const instruction: Instruction = {
    programAddress: a.programId,
    accounts: [
      signerMeta(a.payer, AccountRole.READONLY_SIGNER),
      signerMeta(a.rentPayer, AccountRole.WRITABLE_SIGNER),
      { address: a.payee, role: AccountRole.READONLY },
      { address: a.mint, role: AccountRole.READONLY },
      { address: a.payerTokens, role: AccountRole.WRITABLE },
      { address: channel, role: AccountRole.WRITABLE },
      { address: vault, role: AccountRole.WRITABLE },
      { address: vaultTokens, role: AccountRole.WRITABLE },
      { address: a.tokenProgram, role: AccountRole.READONLY },
      { address: SYSTEM_PROGRAM_ID, role: AccountRole.READONLY },
    ],
    data: encodeOpenData(args),
  };
  return { instruction, channel };
}

/** Accounts of `top_up`. */
export interface TopUpAccounts {
  programId: Address;
  payer: TransactionSigner;
  channel: Address;
  payee: Address;
  mint: Address;
  payerTokens: Address;
  tokenProgram: Address;
}

/** `top_up`: adds `amount` to an open channel's deposit. */
export async function topUpInstruction(a: TopUpAccounts, amount: bigint): Promise<Instruction> {
  const vault = await findVaultAddress(a.programId, a.payee, a.mint);
  const vaultTokens = await findVaultTokensAddress(a.programId, vault);
  return {
    programAddress: a.programId,
    accounts: [
      signerMeta(a.payer, AccountRole.READONLY_SIGNER),
      { address: a.channel, role: AccountRole.WRITABLE },
      { address: vault, role: AccountRole.WRITABLE },
      { address: vaultTokens, role: AccountRole.WRITABLE },
      { address: a.payerTokens, role: AccountRole.WRITABLE },
      { address: a.mint, role: AccountRole.READONLY },
      { address: a.tokenProgram, role: AccountRole.READONLY },
    ],
    data: concatBytes(TOP_UP_DISCRIMINATOR, u64Le(amount)),
  };
}

/** The `Channel` account. */
export interface ChannelAccount {
  payer: Address;
  payee: Address;
  mint: Address;
  authorizedSigner: Address;
  rentPayer: Address;
  deposit: bigint;
  settled: bigint;
  refunded: bigint;
  salt: bigint;
  openSlot: bigint;
  closureStartedAt: bigint;
  gracePeriod: bigint;
  version: number;
  bump: number;
  status: number;
}

/** Decodes a `Channel` account's data; `undefined` when it is not one. */
export function decodeChannelAccount(data: Uint8Array): ChannelAccount | undefined {
  if (data.length !== CHANNEL_ACCOUNT_LEN || !bytesEqual(data.subarray(0, 8), CHANNEL_DISCRIMINATOR)) {
    return undefined;
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const key = (at: number): Address => addressDecoder.decode(data.subarray(at, at + 32));
  const u64 = (at: number): bigint => view.getBigUint64(at, true);
  const i64 = (at: number): bigint => view.getBigInt64(at, true);
  return {
    payer: key(8),
    payee: key(40),
    mint: key(72),
    authorizedSigner: key(104),
    rentPayer: key(136),
    deposit: u64(168),
    settled: u64(176),
    refunded: u64(184),
    salt: u64(192),
    openSlot: u64(200),
    closureStartedAt: i64(208),
    gracePeriod: i64(216),
    version: view.getUint8(224),
    bump: view.getUint8(225),
    status: view.getUint8(226),
  };
}
