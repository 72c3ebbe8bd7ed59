// Test doubles: a JSON-RPC cluster that holds channel accounts and accepts
// every transaction, and a state store that records each save.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { encodeBase58 } from "../src/codec.js";
import { CHANNEL_ACCOUNT_LEN, CHANNEL_DISCRIMINATOR, PAYCHAN_PROGRAM_ID } from "../src/program.js";
import type { ChannelRecord, StateDocument, StateStore } from "../src/state.js";

/** Serves `handler` on 127.0.0.1; resolves to its base URL and the server. */
export async function listen(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => handler(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server };
}

/** A persisted open channel with made-up addresses; `over` replaces fields. */
export function channelRecord(over: Partial<ChannelRecord> = {}): ChannelRecord {
  return {
    address: "4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi",
    payee: "8qbHbw2BbbTHBW1sbeqakYXVKRQM8Ne7pLK7m6CVfeR",
    mint: "CktRuQ2mttgRGkXJtyksdKHjUdc2C4TgDzyB98oEzy8",
    programId: PAYCHAN_PROGRAM_ID,
    tokenProgram: "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
    network: "solana:test",
    signer: "LbUiWL3xVV8hTFYBVdbTNrpDo41NKS6o3LHHuDzjfcY",
    sessionKey: "11111111111111111111111111111111",
    salt: "1",
    openSlot: "2",
    gracePeriod: 900,
    deposit: "10000",
    settled: "0",
    accepted: "0",
    signed: "0",
    resend: false,
    phase: "open",
    ...over,
  };
}

/** A channel account's fields the fake cluster serves. */
export interface FakeChannel {
  deposit: bigint;
  settled: bigint;
  status: number;
}

/** Bytes of a `Channel` account. */
export function channelAccountData(c: FakeChannel): Uint8Array {
  const data = new Uint8Array(CHANNEL_ACCOUNT_LEN);
  data.set(CHANNEL_DISCRIMINATOR, 0);
  const view = new DataView(data.buffer);
  view.setBigUint64(168, c.deposit, true);
  view.setBigUint64(176, c.settled, true);
  data[226] = c.status;
  return data;
}

/** A cluster answering the JSON-RPC calls the client makes. */
export class FakeCluster {
  readonly accounts = new Map<string, FakeChannel>();
  readonly sent: string[] = [];
  readonly calls: string[] = [];
  /** Called with each sent transaction's signature before it is accepted. */
  onSend: (signature: string) => void = () => undefined;
  url = "";
  private server: Server | undefined;

  async start(): Promise<this> {
    const { url, server } = await listen((_req, res, body) => {
      const call = JSON.parse(body) as { id: number; method: string; params: unknown[] };
      this.calls.push(call.method);
      const reply = (result: unknown): void => {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ jsonrpc: "2.0", id: call.id, result }));
      };
      const context = { slot: 100 };
      switch (call.method) {
        case "getSlot":
        case "getBlockHeight":
          return reply(100);
        case "getLatestBlockhash":
          return reply({ context, value: { blockhash: encodeBase58(new Uint8Array(32).fill(3)), lastValidBlockHeight: 250 } });
        case "getAccountInfo": {
          const c = this.accounts.get(call.params[0] as string);
          if (c === undefined) {
            return reply({ context, value: null });
          }
          const data = Buffer.from(channelAccountData(c)).toString("base64");
          return reply({ context, value: { data: [data, "base64"], executable: false, lamports: 1, owner: PAYCHAN_PROGRAM_ID, rentEpoch: 0, space: CHANNEL_ACCOUNT_LEN } });
        }
        case "sendTransaction": {
          const wire = Buffer.from(call.params[0] as string, "base64");
          const signature = encodeBase58(new Uint8Array(wire.subarray(1, 65)));
          this.onSend(signature);
          this.sent.push(signature);
          return reply(signature);
        }
        case "getSignatureStatuses":
          return reply({ context, value: (call.params[0] as string[]).map(() => ({ slot: 100, confirmations: null, err: null, status: { Ok: null }, confirmationStatus: "confirmed" })) });
        default:
          res.statusCode = 500;
          res.end(`unexpected ${call.method}`);
      }
    });
    this.url = url;
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

/** A store that keeps the document in memory and a copy of every save, in order. */
export class RecordingStore implements StateStore {
  saves: StateDocument[] = [];
  /** Delay of each save, ms. */
  delay = 0;
  events: string[] = [];

  constructor(private doc?: StateDocument) {}

  async load(): Promise<StateDocument | undefined> {
    return this.doc === undefined ? undefined : (JSON.parse(JSON.stringify(this.doc)) as StateDocument);
  }

  async save(state: StateDocument): Promise<void> {
    const copy = JSON.parse(JSON.stringify(state)) as StateDocument;
    if (this.delay > 0) {
      await new Promise((r) => setTimeout(r, this.delay));
    }
    this.doc = copy;
    this.saves.push(copy);
    this.events.push("saved");
  }

  last(): StateDocument {
    const d = this.saves.at(-1);
    if (d === undefined) {
      throw new Error("nothing saved");
    }
    return d;
  }
}
