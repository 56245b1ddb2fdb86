//! Class lists as a teacher types or pastes them: one name per line, or CSV (from a
//! spreadsheet or the school's system) with a name column and an optional email-or-id column.
//!
//! A paste whose lines hold a comma, semicolon or tab is read as CSV with that delimiter (the one
//! the first line uses most; spreadsheets in many countries write `;`), quotes as in RFC 4180. A
//! first row whose cells are all header words ("name", "email", "id", ...) is a header: it says
//! which column is the name and which the reference; otherwise the first column is the name and
//! the second, if any, the reference. Blank lines are skipped. Every name passes the same rules
//! as a name typed in `join` ([`crate::text::display_name`]), so a list never fixes a name the
//! class would refuse. Pure functions: no I/O, unit- and property-tested.

use crate::text::{display_name, NameError};

/// The most characters of a reference (an email or the school's own id for the student).
pub const MAX_REFERENCE_LEN: usize = 100;

/// One student as the teacher gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStudent {
    /// The display name the student's personal link fixes.
    pub name: String,
    /// An email or the school's own id, kept with the student for the teacher's records.
    pub reference: Option<String>,
}

/// Why a list was refused. Line numbers count from 1 in the pasted text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("the list is longer than {max_bytes} bytes")]
    TooLarge { max_bytes: usize },
    #[error("the list has more than {max} students")]
    TooMany { max: usize },
    #[error("line {line}: {error}")]
    BadName { line: usize, error: NameError },
    #[error("line {line}: the email or id is longer than {MAX_REFERENCE_LEN} characters or has control characters")]
    BadReference { line: usize },
    #[error("line {line}: {message}")]
    BadCsv { line: usize, message: String },
    #[error("the list has no names")]
    Empty,
}

/// How much one list may hold.
#[derive(Debug, Clone, Copy)]
pub struct ListLimits {
    /// Most bytes of pasted text.
    pub max_bytes: usize,
    /// Most students in the list.
    pub max_students: usize,
    /// Most characters of a name (the class's `[limits] max_name_len`).
    pub max_name_chars: usize,
}

/// Header words that name the name column (compared lower-case, trimmed).
const NAME_HEADERS: &[&str] = &["name", "names", "student", "student name", "full name"];
/// Header words that name the reference column.
const REFERENCE_HEADERS: &[&str] = &[
    "email",
    "e-mail",
    "mail",
    "id",
    "student id",
    "reference",
    "email or id",
];

/// Reads a pasted list (see the module docs for the formats).
pub fn parse_pasted(text: &str, limits: ListLimits) -> Result<Vec<NewStudent>, ListError> {
    if text.len() > limits.max_bytes {
        return Err(ListError::TooLarge {
            max_bytes: limits.max_bytes,
        });
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rows = match delimiter(text) {
        Some(d) => csv_rows(text, d)?,
        None => text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, vec![l.to_string()]))
            .collect(),
    };
    let mut rows = rows
        .into_iter()
        .filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()));
    let Some(first) = rows.next() else {
        return Err(ListError::Empty);
    };
    let (name_col, reference_col, first) = match header(&first.1) {
        Some((n, r)) => (n, r, None),
        None => (0, Some(1), Some(first)),
    };
    let mut out = Vec::new();
    for (line, cells) in first.into_iter().chain(rows) {
        if out.len() == limits.max_students {
            return Err(ListError::TooMany {
                max: limits.max_students,
            });
        }
        let cell = |i: usize| cells.get(i).map(|c| c.trim()).unwrap_or("");
        let name = display_name(cell(name_col), limits.max_name_chars)
            .map_err(|error| ListError::BadName { line, error })?;
        let reference = reference_col
            .map(cell)
            .filter(|r| !r.is_empty())
            .map(|r| valid_reference(r).ok_or(ListError::BadReference { line }))
            .transpose()?;
        out.push(NewStudent { name, reference });
    }
    Ok(out)
}

/// Checks names typed one by one (the same rules as a pasted list, without references).
pub fn parse_names(names: &[String], limits: ListLimits) -> Result<Vec<NewStudent>, ListError> {
    if names.len() > limits.max_students {
        return Err(ListError::TooMany {
            max: limits.max_students,
        });
    }
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let name = display_name(n, limits.max_name_chars)
                .map_err(|error| ListError::BadName { line: i + 1, error })?;
            Ok(NewStudent {
                name,
                reference: None,
            })
        })
        .collect()
}

fn valid_reference(r: &str) -> Option<String> {
    let ok =
        r.chars().count() <= MAX_REFERENCE_LEN && !r.chars().any(crate::text::is_hidden_or_control);
    ok.then(|| r.to_string())
}

/// The CSV delimiter of a paste: the one of `,` `;` tab its first non-blank line holds most.
/// None for a plain list of names.
fn delimiter(text: &str) -> Option<u8> {
    let first = text.lines().find(|l| !l.trim().is_empty())?;
    [b'\t', b';', b',']
        .into_iter()
        .map(|d| (first.bytes().filter(|b| *b == d).count(), d))
        .filter(|(n, _)| *n > 0)
        .max_by_key(|(n, _)| *n)
        .map(|(_, d)| d)
}

/// The rows of a CSV paste, each with its starting line number.
fn csv_rows(text: &str, delimiter: u8) -> Result<Vec<(usize, Vec<String>)>, ListError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ListError::BadCsv {
            line: e.position().map(|p| p.line() as usize).unwrap_or(0),
            message: "this line is not valid CSV".into(),
        })?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        rows.push((line, record.iter().map(str::to_string).collect()));
    }
    Ok(rows)
}

/// The name and reference columns, when the row is a header (every non-blank cell a header word
/// and one of them a name header).
fn header(cells: &[String]) -> Option<(usize, Option<usize>)> {
    let words: Vec<String> = cells.iter().map(|c| c.trim().to_lowercase()).collect();
    let known = |w: &String| {
        w.is_empty()
            || NAME_HEADERS.contains(&w.as_str())
            || REFERENCE_HEADERS.contains(&w.as_str())
    };
    if !words.iter().all(known) {
        return None;
    }
    let name = words
        .iter()
        .position(|w| NAME_HEADERS.contains(&w.as_str()))?;
    let reference = words
        .iter()
        .position(|w| REFERENCE_HEADERS.contains(&w.as_str()));
    Some((name, reference))
}

/// A class list as CSV (`name,student_id,reference,link`), quoted as spreadsheets expect. A
/// cell a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`) gets a leading
/// `'`, so opening the file never runs what someone typed as a name.
pub fn to_csv<'a>(
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<&'a str>>,
) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(row.into_iter().map(|c| defuse_formula(c).into_owned()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8(bytes).expect("CSV of strings is UTF-8"))
}

fn defuse_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: ListLimits = ListLimits {
        max_bytes: 64 * 1024,
        max_students: 5,
        max_name_chars: 20,
    };

    fn names(list: &[NewStudent]) -> Vec<(&str, Option<&str>)> {
        list.iter()
            .map(|s| (s.name.as_str(), s.reference.as_deref()))
            .collect()
    }

    #[test]
    fn one_name_per_line() {
        let list = parse_pasted("Ana García\n\n  Ben  Okafor \r\nChloé\n", LIMITS).unwrap();
        assert_eq!(
            names(&list),
            [("Ana García", None), ("Ben Okafor", None), ("Chloé", None)]
        );
    }

    #[test]
    fn csv_with_a_header_in_any_column_order() {
        let text =
            "Email,Name\nana@school.example,Ana García\n\"ben@school.example\",\"Okafor, Ben\"\n";
        let list = parse_pasted(text, LIMITS).unwrap();
        assert_eq!(
            names(&list),
            [
                ("Ana García", Some("ana@school.example")),
                ("Okafor, Ben", Some("ben@school.example"))
            ]
        );
    }

    #[test]
    fn csv_without_a_header_semicolons_tabs_and_a_bom() {
        let list = parse_pasted("\u{feff}Ana;1001\nBen;\n", LIMITS).unwrap();
        assert_eq!(names(&list), [("Ana", Some("1001")), ("Ben", None)]);
        let list = parse_pasted("Ana\tS-1\nBen\tS-2\n", LIMITS).unwrap();
        assert_eq!(names(&list), [("Ana", Some("S-1")), ("Ben", Some("S-2"))]);
        // A name column only, with a header.
        let list = parse_pasted("name,\nAna,\n", LIMITS).unwrap();
        assert_eq!(names(&list), [("Ana", None)]);
    }

    #[test]
    fn refusals_name_the_line() {
        assert_eq!(
            parse_pasted("Ana\nB\u{202E}en\n", LIMITS),
            Err(ListError::BadName {
                line: 2,
                error: NameError::HiddenCharacter(0x202E)
            })
        );
        assert_eq!(
            parse_pasted("Ana\n\nThis name is much longer than twenty\n", LIMITS),
            Err(ListError::BadName {
                line: 3,
                error: NameError::TooLong(20)
            })
        );
        assert!(matches!(
            parse_pasted("name,email\nAna,a@b\n,c@d\n", LIMITS),
            Err(ListError::BadName {
                line: 3,
                error: NameError::Empty
            })
        ));
        let long = format!("Ana,{}\n", "x".repeat(MAX_REFERENCE_LEN + 1));
        assert_eq!(
            parse_pasted(&long, LIMITS),
            Err(ListError::BadReference { line: 1 })
        );
        assert_eq!(parse_pasted("\n \n", LIMITS), Err(ListError::Empty));
    }

    #[test]
    fn limits() {
        assert_eq!(
            parse_pasted("A\nB\nC\nD\nE\nF\n", LIMITS),
            Err(ListError::TooMany { max: 5 })
        );
        assert_eq!(parse_pasted("A\nB\nC\nD\nE\n", LIMITS).unwrap().len(), 5);
        let big = "A\n".repeat(LIMITS.max_bytes / 2 + 1);
        assert_eq!(
            parse_pasted(&big, LIMITS),
            Err(ListError::TooLarge {
                max_bytes: LIMITS.max_bytes
            })
        );
        let six: Vec<String> = (0..6).map(|i| format!("S{i}")).collect();
        assert_eq!(
            parse_names(&six, LIMITS),
            Err(ListError::TooMany { max: 5 })
        );
        assert_eq!(parse_names(&six[..2], LIMITS).unwrap().len(), 2);
    }

    #[test]
    fn csv_out_quotes_and_defuses_formulas() {
        let csv = to_csv(
            &["name", "link"],
            [vec!["Okafor, Ben", "x"], vec!["=HYPERLINK(\"e\")", "-1"]],
        )
        .unwrap();
        assert_eq!(
            csv,
            "name,link\n\"Okafor, Ben\",x\n\"'=HYPERLINK(\"\"e\"\")\",'-1\n"
        );
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        "[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ' .-]{0,14}[A-Za-zÀ-ÿ]".prop_map(|s| {
            // Names as display_name keeps them: single spaces.
            s.split_whitespace().collect::<Vec<_>>().join(" ")
        })
    }

    proptest! {
        /// Any names and references written out as CSV (with a header, in either delimiter)
        /// read back as the same students.
        #[test]
        fn csv_round_trips(
            rows in proptest::collection::vec(
                (name_strategy(), proptest::option::of("[a-z0-9@._,;-]{1,20}")), 1..5),
            semicolon in any::<bool>(),
        ) {
            let d = if semicolon { b';' } else { b',' };
            let mut w = csv::WriterBuilder::new().delimiter(d).from_writer(Vec::new());
            w.write_record(["Name", "Email"]).unwrap();
            for (n, r) in &rows {
                w.write_record([n.as_str(), r.as_deref().unwrap_or("")]).unwrap();
            }
            let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
            let list = parse_pasted(&text, ListLimits { max_name_chars: 64, ..LIMITS }).unwrap();
            let got: Vec<(String, Option<String>)> =
                list.into_iter().map(|s| (s.name, s.reference)).collect();
            prop_assert_eq!(got, rows);
        }

        /// Whatever is pasted, parsing ends with students or an error, never a panic, and
        /// never more students than the limit or a name the join would refuse.
        #[test]
        fn arbitrary_pastes_are_bounded(text in "(?s).{0,400}") {
            if let Ok(list) = parse_pasted(&text, LIMITS) {
                prop_assert!(!list.is_empty() && list.len() <= LIMITS.max_students);
                for s in list {
                    prop_assert_eq!(display_name(&s.name, 20), Ok(s.name.clone()));
                }
            }
        }
    }
}
