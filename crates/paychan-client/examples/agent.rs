//! A paying agent in a few lines: every 402 with a `paychan` offer is paid
//! from a channel the agent opens itself, within a budget it never exceeds.
//!
//! `cargo run -p paychan-client --example agent -- <rpc-url> <caip2-network> <mint> <url>`
//! (the payer key is generated here; fund it and its token account first in
//! real use, or load it from a file).
use paychan_client::{ClientConfig, PaychanClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, rpc, network, mint, url] = args.as_slice() else {
        return Err("usage: agent <rpc-url> <caip2-network> <mint> <url>".into());
    };
    let payer = solana_keypair::Keypair::new();
    let mut config = ClientConfig::new(rpc, payer, network, mint.parse()?, "./agent-state");
    config.budget = 2_000_000; // at most 2 USDC, ever
    let agent = PaychanClient::new(config).await?;
    // reqwest under the paying middleware, refusing redirects to another
    // origin (a voucher is a bearer payment: it must not follow a redirect
    // to another host).
    let http = agent.http_client()?;
    println!("{}", http.get(url).send().await?.text().await?);
    Ok(())
}
