//! The scale benchmark's markdown table: one row per figure, one column
//! per size, and the growth from the first size to the last.

/// How a row's figures are written.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Events per second, in thousands.
    KiloPerSec,
    Ms,
    Ratio,
    Bytes,
    Count,
}

impl Unit {
    fn show(self, v: f64) -> String {
        if !v.is_finite() {
            return "–".into();
        }
        match self {
            Unit::KiloPerSec if v < 1000.0 => format!("{v:.0}/s"),
            Unit::KiloPerSec => format!("{:.1} K/s", v / 1000.0),
            Unit::Ms if v < 10.0 => format!("{v:.2} ms"),
            Unit::Ms => format!("{v:.0} ms"),
            Unit::Ratio => format!("{v:.2}×"),
            Unit::Bytes => format!("{v:.0} B"),
            Unit::Count => format!("{v:.0}"),
        }
    }
}

/// Rows in the order they were first added; a figure a size did not get
/// (a failed command) stays empty.
pub struct Table {
    sizes: Vec<String>,
    rows: Vec<(String, Unit, Vec<Option<f64>>)>,
}

impl Table {
    pub fn new(sizes: &[String]) -> Table {
        Table {
            sizes: sizes.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Sets the figure of `label` for the size at `column`.
    pub fn set(&mut self, label: &str, unit: Unit, column: usize, value: Option<f64>) {
        let n = self.sizes.len();
        let row = match self.rows.iter().position(|(l, _, _)| l == label) {
            Some(i) => i,
            None => {
                self.rows.push((label.to_owned(), unit, vec![None; n]));
                self.rows.len() - 1
            }
        };
        self.rows[row].2[column] = value;
    }

    pub fn markdown(&self) -> String {
        let growth = match (self.sizes.first(), self.sizes.last()) {
            (Some(a), Some(b)) if self.sizes.len() > 1 => format!("growth {a}→{b}"),
            _ => "growth".to_owned(),
        };
        let mut out = format!("| figure | {} | {growth} |\n", self.sizes.join(" | "));
        out.push_str(&format!("|---|{}---|\n", "---|".repeat(self.sizes.len())));
        for (label, unit, values) in &self.rows {
            let cells: Vec<String> = values
                .iter()
                .map(|v| v.map_or_else(|| "–".to_owned(), |v| unit.show(v)))
                .collect();
            let growth = match (
                values.first().copied().flatten(),
                values.last().copied().flatten(),
            ) {
                (Some(a), Some(b)) if values.len() > 1 && a > 0.0 && b / a < 0.1 => {
                    format!("{:.3}×", b / a)
                }
                (Some(a), Some(b)) if values.len() > 1 && a > 0.0 => format!("{:.2}×", b / a),
                _ => "–".to_owned(),
            };
            out.push_str(&format!("| {label} | {} | {growth} |\n", cells.join(" | ")));
        }
        out
    }
}
