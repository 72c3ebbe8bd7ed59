//! `paychan config`: the resolved settings and their sources.
use super::Context;
use crate::{
    error::CliError,
    output::{Report, Table},
};

/// Reports every setting with its value and source.
pub fn run(ctx: &Context) -> Result<Report, CliError> {
    let s = &ctx.settings;
    let mut table = Table::with_header(["setting", "value", "source"]);
    let file = s
        .config_file
        .as_ref()
        .map_or_else(|| "(none)".to_string(), |p| p.display().to_string());
    table
        .row(["config_file".to_string(), file, String::new()])
        .row([
            "rpc_url".to_string(),
            s.rpc_url.value.clone(),
            s.rpc_url.source.to_string(),
        ])
        .row([
            "keypair".to_string(),
            s.keypair.value.display().to_string(),
            s.keypair.source.to_string(),
        ])
        .row([
            "program_id".to_string(),
            s.program_id.value.to_string(),
            s.program_id.source.to_string(),
        ])
        .row([
            "commitment".to_string(),
            s.commitment.value.to_string(),
            s.commitment.source.to_string(),
        ]);
    let json = serde_json::to_value(s).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(Report::table(&table, json))
}
