//! Aligned text tables for people (`list`, `build`, `deploy`): every column but the last
//! padded to its widest cell (counted in characters), two spaces apart, trailing blanks
//! trimmed.

/// The lines of `rows` (the header first, when there is one), aligned.
pub fn aligned_lines<const N: usize>(rows: &[[String; N]]) -> Vec<String> {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
                if i + 1 == N {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  "));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_but_the_last_are_padded_to_their_widest_cell() {
        let rows = [
            ["A".to_string(), "LONGER".to_string(), "x".to_string()],
            ["ééé".to_string(), "b".to_string(), String::new()],
        ];
        assert_eq!(aligned_lines(&rows), ["A    LONGER  x", "ééé  b"]);
    }
}
