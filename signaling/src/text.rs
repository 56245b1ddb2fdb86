//! Rules for the text people type that others see: display names, and chat lines
//! ([`refused_in_chat`]).
//!
//! A name is drawn in every roster and beside every chat line, so it must not be able to
//! disguise itself: control characters, format characters (bidi overrides such as U+202E,
//! zero-width spaces and joiners, the BOM), line and paragraph separators, private-use and
//! unassigned code points are refused. Runs of spaces (any Unicode space) become one ASCII space,
//! so "Ana" and "Ana\u{3000}" cannot pass for different names. Roles are not part of the name:
//! clients draw them from the server's `role`.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// True for characters that are invisible, reorder or break the text around them, or have no
/// agreed glyph: the categories Cc, Cf, Zl, Zp, Co, Cs and Cn.
pub fn is_hidden_or_control(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
    )
}

/// Why a display name was refused; the `Display` text is shown to the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a display name is required")]
    Empty,
    #[error("the display name is longer than {0} characters")]
    TooLong(usize),
    #[error("the display name has a control or invisible formatting character (U+{0:04X})")]
    HiddenCharacter(u32),
}

/// Checks and tidies a display name: trimmed, inner spaces collapsed to one ASCII space, at most
/// `max_chars` characters, no character [`is_hidden_or_control`].
pub fn display_name(raw: &str, max_chars: usize) -> Result<String, NameError> {
    if let Some(c) = raw.chars().find(|c| is_hidden_or_control(*c)) {
        return Err(NameError::HiddenCharacter(c as u32));
    }
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > max_chars {
        return Err(NameError::TooLong(max_chars));
    }
    Ok(name)
}

/// The key two names are compared by when telling duplicates apart: case-folded, so "ana" and
/// "Ana" count as the same name.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// Characters a chat line may not contain: control characters other than newline, and the bidi
/// embeddings, overrides and isolates that reorder the text around them. Zero-width joiners stay
/// allowed: emoji sequences and several scripts need them.
pub fn refused_in_chat(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_control_characters_are_refused() {
        for bad in [
            "Ana\u{202E}gnp.exe",
            "Ms\u{200B}Rivera",
            "A\u{200D}B",
            "\u{FEFF}Ana",
            "Ana\u{2066}",
            "tab\there",
            "line\u{2028}break",
            "bell\u{7}",
            "priv\u{E000}",
            "tag\u{E0041}",
            "soft\u{AD}hyphen",
        ] {
            assert!(
                matches!(display_name(bad, 64), Err(NameError::HiddenCharacter(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn ordinary_names_in_many_scripts_pass_and_spaces_collapse() {
        for good in [
            "Ana",
            "José María",
            "Zoë",
            "王小明",
            "Ngũgĩ",
            "محمد",
            "Ольга",
        ] {
            assert_eq!(display_name(good, 64).as_deref(), Ok(good));
        }
        assert_eq!(
            display_name("  Ana \u{3000}\u{A0} B  ", 64).unwrap(),
            "Ana B"
        );
        assert_eq!(display_name(" \u{3000} ", 64), Err(NameError::Empty));
        assert_eq!(
            display_name(&"é".repeat(65), 64),
            Err(NameError::TooLong(64))
        );
        assert!(display_name(&"é".repeat(64), 64).is_ok());
    }
}
