//! Rules for the text people type that others see: display names, and chat lines
//! ([`refused_in_chat`]).
//!
//! A name is drawn in every roster and beside every chat line, so it must not be able to
//! disguise itself: control characters, format characters (bidi overrides such as U+202E,
//! zero-width spaces and joiners, the BOM), line and paragraph separators, private-use and
//! unassigned code points are refused — except the zero-width non-joiner and joiner (U+200C,
//! U+200D) between two letters of a script that needs them (Persian, Arabic, the Indic scripts:
//! anything from U+0590 on), where they change how the word is written; between Latin letters they
//! would only hide a character, so they stay refused there. Runs of spaces (any Unicode space) become one ASCII space,
//! so "Ana" and "Ana\u{3000}" cannot pass for different names. Roles are not part of the name:
//! clients draw them from the server's `role`.

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

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
    let chars: Vec<char> = raw.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !is_hidden_or_control(c) {
            continue;
        }
        let joins_its_script = is_joiner(c)
            && i > 0
            && needs_joiners(chars[i - 1])
            && chars.get(i + 1).is_some_and(|&next| needs_joiners(next));
        if !joins_its_script {
            return Err(NameError::HiddenCharacter(c as u32));
        }
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

/// The zero-width non-joiner and joiner.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// A letter or combining mark of a script whose spelling uses joiners: from Hebrew (U+0590) on,
/// which leaves out Latin, Greek, Cyrillic and Armenian.
fn needs_joiners(c: char) -> bool {
    c >= '\u{0590}'
        && (c.is_alphabetic() || c.general_category_group() == GeneralCategoryGroup::Mark)
}

/// The key two names are compared by when telling duplicates apart: case-folded and without
/// joiners, so "ana", "Ana" and a name that differs only by an invisible joiner count as the same.
pub fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| !is_joiner(*c))
        .collect::<String>()
        .to_lowercase()
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
    fn joiners_pass_only_inside_words_of_scripts_that_need_them() {
        // Persian "Mehrnaz" style with a non-joiner, Devanagari with a joiner (half form).
        for good in [
            "\u{645}\u{6CC}\u{200C}\u{634}\u{648}\u{62F}",
            "\u{915}\u{94D}\u{200D}\u{937}",
        ] {
            assert_eq!(display_name(good, 64).as_deref(), Ok(good), "{good:?}");
        }
        for bad in [
            "A\u{200C}na",                    // between Latin letters it only hides
            "\u{200C}\u{645}\u{6CC}",         // at the start
            "\u{645}\u{6CC}\u{200C}",         // at the end
            "\u{645}\u{200C}\u{200C}\u{6CC}", // doubled
            "\u{645}\u{200C} \u{6CC}",        // before a space
        ] {
            assert!(
                matches!(display_name(bad, 64), Err(NameError::HiddenCharacter(_))),
                "{bad:?} was accepted"
            );
        }
        assert_eq!(
            name_key("\u{645}\u{6CC}\u{200C}\u{634}"),
            name_key("\u{645}\u{6CC}\u{634}")
        );
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
