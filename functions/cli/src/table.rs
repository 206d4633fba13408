//! Aligned text tables for the commands' output: each column as wide as its
//! widest cell (counted in characters), columns two spaces apart.

/// The width of each column over the header and the rows.
pub fn widths<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> [usize; N] {
    std::array::from_fn(|i| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    })
}

/// One row: each cell padded to its column's width, right-aligned where `right`
/// says so; the last cell is padded only when right-aligned, and trailing spaces
/// are dropped.
pub fn line<S: AsRef<str>>(cells: &[S], widths: &[usize], right: &[bool]) -> String {
    let last = cells.len().saturating_sub(1);
    let mut out = String::new();
    for (i, cell) in cells.iter().enumerate() {
        let (cell, width) = (cell.as_ref(), widths.get(i).copied().unwrap_or(0));
        let right = right.get(i).copied().unwrap_or(false);
        if i > 0 {
            out.push_str("  ");
        }
        match (right, i == last) {
            (true, _) => out.push_str(&format!("{cell:>width$}")),
            (false, false) => out.push_str(&format!("{cell:width$}")),
            (false, true) => out.push_str(cell),
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_by_characters_and_right_aligned_ones_end_together() {
        let header = ["NAME", "N", "WHY"];
        let rows = [
            ["prod/é".to_string(), "12".into(), "a reason".into()],
            ["x".to_string(), "3".into(), String::new()],
        ];
        let w = widths(&header, &rows);
        assert_eq!(w, [6, 2, 8]);
        let right = [false, true, false];
        assert_eq!(line(&header, &w, &right), "NAME     N  WHY");
        assert_eq!(line(&rows[0], &w, &right), "prod/é  12  a reason");
        assert_eq!(line(&rows[1], &w, &right), "x        3");
    }
}
