//! `paychan config`: the resolved settings and their sources.
use super::Context;
use crate::{
    config::Setting,
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
        .row(row("rpc_url", &s.rpc_url, String::clone))
        .row(row("keypair", &s.keypair, |p| p.display().to_string()))
        .row(row("program_id", &s.program_id, ToString::to_string))
        .row(row("commitment", &s.commitment, ToString::to_string));
    let json = serde_json::to_value(s).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(Report::table(&table, json))
}

/// The table row of a setting: `name`, its value as `value` prints it, its source.
fn row<T>(name: &str, setting: &Setting<T>, value: impl Fn(&T) -> String) -> [String; 3] {
    [
        name.to_string(),
        value(&setting.value),
        setting.source.to_string(),
    ]
}
