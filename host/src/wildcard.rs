//! `*`-only wildcard matching, shared by target patterns and log-file patterns.
//!
//! Hand-written rather than a glob crate on purpose: the grammar is deliberately
//! smaller than any glob dialect (no classes, no alternation, no `**`), so a
//! pattern means the same thing to a reviewer as to the host.

/// Whether `text` matches `pattern`, where `*` matches any run of characters (including none).
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it currently absorbs up to: linear-time
    // backtracking that retries only the most recent star.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star_pi, star_ti)) = star {
            pi = star_pi + 1;
            ti = star_ti + 1;
            star = Some((star_pi, star_ti + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn star_matches_any_run() {
        assert!(matches("*.log", "app.log"));
        assert!(matches("*.log", ".log"));
        assert!(!matches("*.log", "app.log.1.gz"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("*", ""));
        assert!(!matches("", "x"));
        assert!(matches("**a", "aaa"));
    }
}
