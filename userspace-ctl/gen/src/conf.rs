//! iscsi-rs.conf(5) from its text source (`iscsi-rs.conf.5.txt`), a deliberately
//! small markup so the page stays easy to maintain beside the parser:
//!
//! - `== TITLE` starts a section;
//! - `-- TERM` starts a tagged paragraph (the lines up to the next blank line are
//!   its body); in `KEY = VALUE` terms the key is bold and the value italic;
//! - a fenced block of three backquotes is shown verbatim (examples);
//! - other lines form paragraphs; `` `text` `` is bold, `*text*` italic.
//!
//! The tests hold the page against `iscsictl::config`: every key the parser knows
//! is documented, nothing else is, and every example parses.

use roff::{bold, italic, roman, Inline, Roff};

/// Renders the page. Errors name the source line that the markup cannot take.
pub fn render(source: &str, page_source: &str) -> Result<String, String> {
    let mut r = Roff::new();
    r.control(
        "TH",
        [
            "iscsi-rs.conf",
            "5",
            crate::NO_DATE,
            page_source,
            "File Formats",
        ],
    );
    let mut para: Vec<&str> = Vec::new();
    let mut lines = source.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line.trim() == "```" {
            flush(&mut r, &mut para);
            r.control("PP", []).control("RS", ["4"]).control("nf", []);
            loop {
                match lines.next() {
                    Some((_, l)) if l.trim() == "```" => break,
                    Some((_, l)) => {
                        r.text([roman(l)]);
                    }
                    None => return Err(format!("line {}: unterminated ``` block", n + 1)),
                }
            }
            r.control("fi", []).control("RE", []);
        } else if let Some(title) = line.strip_prefix("== ") {
            flush(&mut r, &mut para);
            r.control("SH", [title.trim()]);
        } else if let Some(term) = line.strip_prefix("-- ") {
            flush(&mut r, &mut para);
            r.control("TP", []);
            r.text(term_inlines(term.trim()));
        } else if line.trim().is_empty() {
            flush(&mut r, &mut para);
            // A blank line ends a tagged paragraph too; the next text is a new one.
            para.push("");
        } else {
            para.push(line);
        }
    }
    flush(&mut r, &mut para);
    Ok(r.render())
}

/// Emits the paragraph collected so far. A leading "" marks a paragraph that
/// follows a blank line (gets `.PP`); otherwise it is the body of a `.TP` or the
/// first paragraph of a section.
fn flush(r: &mut Roff, para: &mut Vec<&str>) {
    let fresh = para.first() == Some(&"");
    let text: Vec<&str> = para.iter().copied().filter(|l| !l.is_empty()).collect();
    para.clear();
    if text.is_empty() {
        return;
    }
    if fresh {
        r.control("PP", []);
    }
    r.text(inlines(&text.join(" ")));
}

/// `KEY = VALUE`: key bold, `=` roman, value italic; any other term bold.
fn term_inlines(term: &str) -> Vec<Inline> {
    match term.split_once(" = ") {
        Some((key, value)) => vec![bold(key), roman(" = "), italic(value)],
        None => vec![bold(term)],
    }
}

/// `` `x` `` bold, `*x*` italic, the rest roman. Unpaired markers stay as text.
fn inlines(text: &str) -> Vec<Inline> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let next = rest
            .char_indices()
            .find(|&(_, c)| c == '`' || c == '*')
            .and_then(|(i, c)| rest[i + 1..].find(c).map(|j| (i, c, i + 1 + j)));
        match next {
            Some((start, marker, end)) => {
                if start > 0 {
                    out.push(roman(&rest[..start]));
                }
                let inner = &rest[start + 1..end];
                out.push(if marker == '`' {
                    bold(inner)
                } else {
                    italic(inner)
                });
                rest = &rest[end + 1..];
            }
            None => {
                if !rest.is_empty() {
                    out.push(roman(rest));
                }
                return out;
            }
        }
    }
}

/// The keys documented under `== KEYS`, as written.
pub fn documented_keys(source: &str) -> Vec<String> {
    let mut in_keys = false;
    let mut keys = Vec::new();
    for line in source.lines() {
        if let Some(title) = line.strip_prefix("== ") {
            in_keys = title.trim() == "KEYS";
        } else if let (true, Some(term)) = (in_keys, line.strip_prefix("-- ")) {
            keys.push(term.split(" = ").next().unwrap_or(term).trim().to_owned());
        }
    }
    keys
}

/// The verbatim blocks (examples), in order.
pub fn examples(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in source.lines() {
        if line.trim() == "```" {
            match current.take() {
                Some(block) => out.push(block),
                None => current = Some(String::new()),
            }
        } else if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CONF_SOURCE;
    use iscsictl::config::{Config, ConfigErrorKind};
    use std::path::Path;

    /// The parser's own list of keys: it names them all when it meets an unknown
    /// one ("unknown key … (known keys: A, B, …)").
    fn parser_keys() -> Vec<String> {
        let err = Config::parse("NoSuchKeyForTheManPage = 1\n", Path::new("t.conf"))
            .expect_err("an unknown key must be refused");
        let ConfigErrorKind::UnknownKey(_) = err.kind else {
            panic!("unexpected error: {err}");
        };
        let msg = err.to_string();
        let list = msg
            .split_once("known keys: ")
            .and_then(|(_, l)| l.strip_suffix(')'))
            .unwrap_or_else(|| panic!("no key list in {msg:?}"));
        list.split(", ").map(str::to_owned).collect()
    }

    #[test]
    fn every_parser_key_is_documented_and_nothing_else() {
        let mut documented = documented_keys(CONF_SOURCE);
        let mut known = parser_keys();
        assert!(known.len() >= 10, "{known:?}");
        documented.sort_by_key(|k| k.to_lowercase());
        known.sort_by_key(|k| k.to_lowercase());
        assert_eq!(
            documented, known,
            "iscsi-rs.conf.5.txt KEYS section and the config parser disagree"
        );
    }

    #[test]
    fn examples_parse() {
        let blocks = examples(CONF_SOURCE);
        assert!(blocks.len() >= 2, "{blocks:?}");
        for block in blocks {
            let c = Config::parse(&block, Path::new("example.conf"))
                .unwrap_or_else(|e| panic!("example does not parse: {e}\n{block}"));
            assert!(!c.targets().is_empty(), "{block}");
        }
    }

    #[test]
    fn renders_sections_terms_and_literals() {
        let page = render(CONF_SOURCE, "iscsi-rs 0").unwrap();
        assert!(page.contains(".TH iscsi\\-rs.conf 5") || page.contains(".TH iscsi-rs.conf 5"));
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "KEYS",
            "FILES",
            "EXAMPLES",
        ] {
            assert!(page.contains(&format!(".SH {section}")), "{section}");
        }
        assert!(page.contains("\\fBTargetName\\fR = \\fIIQN\\fR"), "{page}");
        assert!(page.contains(".nf\n"), "{page}");
        // A literal line starting with '.' or a backslash must not become roff.
        let tricky = render("== X\n```\n.fake request\nback\\slash\n```\n", "s").unwrap();
        assert!(tricky.contains("\\&.fake request"), "{tricky}");
        assert!(tricky.contains("back\\\\slash"), "{tricky}");
        assert!(render("```\nopen", "s").is_err());
    }

    #[test]
    fn inline_markup() {
        let got = inlines("a `b` *c* d*");
        assert_eq!(
            got,
            vec![
                roman("a "),
                bold("b"),
                roman(" "),
                italic("c"),
                roman(" d*")
            ]
        );
    }
}
