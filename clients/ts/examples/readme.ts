// The README's snippet, type-checked by `npm run build` (not run: it needs a
// funded payer on devnet).
import { readFileSync } from "node:fs";

import { createKeyPairSignerFromBytes } from "@solana/kit";
import { wrapFetchWithPayment, x402Client } from "@x402/fetch";

import { registerPaychanScheme } from "../src/index.js";

export async function example(): Promise<void> {
  const secretKey = Uint8Array.from(JSON.parse(readFileSync("payer.json", "utf8")) as number[]);
  // --- README snippet ---
  const payer = await createKeyPairSignerFromBytes(secretKey); // funds deposits, pays fees
  const client = new x402Client();
  const paychan = registerPaychanScheme(client, {
    rpcUrl: "https://api.devnet.solana.com", payer, network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
    mint: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", decimals: 6, // devnet USDC
    state: "./paychan-state.json", budget: 5_000_000n, maxPrice: 10_000n, // base units
  });
  const fetchWithPayment = wrapFetchWithPayment(paychan.fetch(fetch), client);
  const res = await fetchWithPayment("https://api.example.com/paid/report");
  console.log(res.status, await res.text());
  // --- end ---
}
