//! Command results: aligned tables for people, one JSON object for machines.
use std::fmt;

/// A plain-text table with columns padded to their widest cell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    header: Option<Vec<String>>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with a header row.
    pub fn with_header<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            header: Some(header.into_iter().map(Into::into).collect()),
            rows: Vec::new(),
        }
    }

    /// A two-column key/value table without a header.
    pub fn key_value() -> Self {
        Self::default()
    }

    /// Appends a row.
    pub fn row<I, S>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// Appends a `key  value` row.
    pub fn kv(&mut self, key: impl Into<String>, value: impl fmt::Display) -> &mut Self {
        self.row([key.into(), value.to_string()])
    }

    /// The rows (without the header).
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = Vec::new();
        for row in self.header.iter().chain(self.rows.iter()) {
            for (i, cell) in row.iter().enumerate() {
                let w = cell.chars().count();
                match widths.get_mut(i) {
                    Some(max) => *max = (*max).max(w),
                    None => widths.push(w),
                }
            }
        }
        widths
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths = self.widths();
        let line = |f: &mut fmt::Formatter<'_>, row: &[String]| -> fmt::Result {
            let mut text = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths
                        .get(i)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(cell.chars().count());
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(f, "{}", text.trim_end())
        };
        if let Some(header) = &self.header {
            line(f, header)?;
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            line(f, &rule)?;
        }
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}

/// What a command prints: a table (or free text) for people and one JSON
/// object for `--json`.
#[derive(Clone, Debug)]
pub struct Report {
    /// Printed without `--json`.
    pub human: String,
    /// Printed (compact, one line) with `--json`.
    pub json: serde_json::Value,
}

impl Report {
    /// A report whose human form is `table`.
    pub fn table(table: &Table, json: serde_json::Value) -> Self {
        Self {
            human: table.to_string(),
            json,
        }
    }

    /// A report that prints nothing (its output was already shown).
    pub fn none() -> Self {
        Self {
            human: String::new(),
            json: serde_json::Value::Null,
        }
    }

    /// Prints the report on stdout in the requested form.
    pub fn print(&self, json: bool) {
        if self.human.is_empty() && self.json.is_null() {
            return;
        }
        if json {
            println!("{}", self.json);
        } else {
            print!("{}", self.human);
            if !self.human.ends_with('\n') {
                println!();
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned() {
        let mut t = Table::with_header(["name", "amount"]);
        t.row(["a", "1"]).row(["longer", "1000"]);
        assert_eq!(
            t.to_string(),
            "name    amount\n------  ------\na       1\nlonger  1000\n"
        );
        let mut kv = Table::key_value();
        kv.kv("status", "open").kv("deposit", 10);
        assert_eq!(kv.to_string(), "status   open\ndeposit  10\n");
        assert_eq!(kv.rows().len(), 2);
    }
}
