//! Look-alike addresses (UTS #39): which sign-ups are refused for mixing
//! scripts, and the key that addresses reading alike share.
//!
//! Both rules take an address already trimmed and lower-cased (what
//! `routes::users` stores), and leave a plain ASCII address exactly as it is:
//! it never mixes scripts and is its own key.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::canonical_combining_class;
use unicode_security::{MixedScript, skeleton};

/// U+0307 COMBINING DOT ABOVE: what `İ` leaves after `i` when lower-cased.
const COMBINING_DOT_ABOVE: char = '\u{307}';
/// The canonical combining class of the marks drawn above their base.
const ABOVE: u8 = 230;

/// Whether the local part, or any dot-separated label of the domain, mixes
/// scripts (UTS #39 single-script: digits, punctuation and combining marks
/// go with any script, and Han with kana or Hangul is one writing system).
/// `pаypal` with a Cyrillic `а` mixes scripts; an all-Cyrillic `почта`
/// does not, and neither does `mail@пример.рф`: each part is judged alone.
pub fn mixes_scripts(email: &str) -> bool {
    if email.is_ascii() {
        return false;
    }
    let folded = fold(email);
    let Some((local, domain)) = folded.rsplit_once('@') else {
        return false;
    };
    !local.is_single_script() || domain.split('.').any(|label| !label.is_single_script())
}

/// The look-alike key. `users.email_key` holds it where it is not the
/// address itself, and `users_email_key_idx` is unique on
/// `COALESCE(email_key, email)`: two accounts never read alike, and a racing
/// pair is settled by the index.
///
/// The address is folded to NFKC and lower-cased again, decomposed (NFD),
/// and then **only its non-ASCII characters** are replaced by their
/// confusable prototypes from Unicode's confusables table (the mapping of
/// UTS #39's skeleton); then U+0307 is dropped where it sits on an `i` or
/// `j` (see below).
///
/// - Why not the whole skeleton: it maps ASCII to ASCII too (`m` to `rn`,
///   `1` and `I` to `l`, `0` to `O`), so `modem@` and `modern@`, or
///   `alice1@` and `alicel@`, would collide, and addresses that have always
///   been distinct would start to refuse each other. Leaving ASCII alone
///   keeps every ASCII address its own key (nothing stored, as before), and
///   a non-ASCII look-alike of it maps onto exactly it: `аӏісе` (all
///   Cyrillic), `alıce` (dotless i) and `ali\u{307}ce` (from `alİce`) all key
///   to `alice`.
/// - Why NFKC and not NFC: compatibility characters are the same letter in
///   another presentation (fullwidth `ａ`, mathematical `𝐦`, the ligature
///   `ﬁ`). The confusables table maps most of them to the prototype of their
///   ASCII class (`𝐦` to `rn`, `𝟏` to `l`), which under the ASCII-exact rule
///   would miss the address they imitate (`𝐦odem` would key to `rnodem`,
///   not `modem`); NFKC turns them into that very ASCII letter first. It is
///   also the folding IDNA applies to domains. Lower-casing follows because
///   NFKC can yield capitals (`ℌ` is `H`), and the addresses compared are
///   lower-cased.
/// - Why drop U+0307 on `i` and `j`: lower-casing `İ` gives `i` + U+0307,
///   and `i`, `j` (and the Cyrillic `і`, `ј`, whose prototypes they are) are
///   soft-dotted: a dot above replaces their own, so `i̇` reads as `i`. The
///   plain skeleton keeps the mark, which would let `alİce@` sit beside
///   `alice@`. Only the first dot above, directly on the letter or after
///   marks below it, is dropped; any other mark stays, as it shows.
/// - Default-ignorable characters (zero-width space, soft hyphen) vanish, as
///   in the skeleton.
///
/// What it does not catch: a non-ASCII character keys to its prototype, and
/// where that prototype stands for several ASCII characters (`l` for `1`,
/// `I` and `|`; `rn` for `m`; `O` for `0`) it collides only with the address
/// spelled with the prototype: `aӏice` with `alice`, not with `a1ice`.
/// Inside a word of another script such a character is refused anyway as
/// mixing scripts ([`mixes_scripts`]).
pub fn lookalike_key(email: &str) -> String {
    if email.is_ascii() {
        return email.to_owned();
    }
    let mut mapped = String::with_capacity(email.len());
    for c in fold(email).nfd() {
        if c.is_ascii() {
            mapped.push(c);
        } else {
            mapped.extend(skeleton(c.encode_utf8(&mut [0; 4])));
        }
    }
    // Prototypes are decomposed one by one: put their marks back in
    // canonical order across the joins, as the skeleton's last step does.
    drop_dots_on_soft_dotted(mapped.nfd())
}

/// NFKC, then lower-cased again (NFKC can yield capitals).
fn fold(email: &str) -> String {
    email.nfkc().collect::<String>().to_lowercase()
}

/// Drops U+0307 where it sits on `i` or `j`, directly or after marks below
/// the letter: the soft dot it replaces looks the same.
fn drop_dots_on_soft_dotted(decomposed: impl Iterator<Item = char>) -> String {
    let mut kept = String::new();
    let mut on_soft_dot = false;
    for c in decomposed {
        match canonical_combining_class(c) {
            0 => on_soft_dot = matches!(c, 'i' | 'j'),
            ABOVE if c == COMBINING_DOT_ABOVE && on_soft_dot => {
                on_soft_dot = false;
                continue;
            }
            ABOVE => on_soft_dot = false,
            _ => {}
        }
        kept.push(c);
    }
    kept
}

#[cfg(test)]
mod tests {
    use unicode_normalization::UnicodeNormalization;
    use unicode_security::skeleton;

    use super::{lookalike_key, mixes_scripts};

    #[track_caller]
    fn assert_same_key(first: &str, second: &str) {
        assert_eq!(
            lookalike_key(first),
            lookalike_key(second),
            "{first:?} and {second:?} read alike"
        );
    }

    #[track_caller]
    fn assert_other_keys(first: &str, second: &str) {
        assert_ne!(
            lookalike_key(first),
            lookalike_key(second),
            "{first:?} and {second:?} read differently"
        );
    }

    #[test]
    fn an_ascii_address_is_its_own_key_and_never_mixes_scripts() {
        for email in [
            "alice@example.com",
            "modem@x.com",
            "modern@x.com",
            "alice1@example.com",
            "alicel@example.com",
            "o0@example.com",
            "a|b@example.com",
            "\"quoted\"@example.com",
            "alice@[127.0.0.1]",
            "alice@xn--80ak6aa92e.com",
        ] {
            assert_eq!(lookalike_key(email), email);
            assert!(!mixes_scripts(email), "{email}");
        }
    }

    #[test]
    fn the_whole_skeleton_would_join_ascii_addresses_that_differ() {
        // Why only non-ASCII characters are mapped.
        let whole = |email: &str| skeleton(email).collect::<String>();
        assert_eq!(whole("modem@x.com"), whole("modern@x.com"));
        assert_eq!(whole("alice1@x.com"), whole("alicel@x.com"));
        assert_other_keys("modem@x.com", "modern@x.com");
        assert_other_keys("alice1@x.com", "alicel@x.com");
    }

    #[test]
    fn a_cyrillic_a_keys_as_a_latin_a_and_mixes_scripts_in_a_latin_word() {
        assert_same_key("\u{430}lice@example.com", "alice@example.com");
        assert_same_key("alice@ex\u{430}mple.com", "alice@example.com");
        assert!(mixes_scripts("\u{430}lice@example.com"));
        assert!(mixes_scripts("alice@ex\u{430}mple.com"));
    }

    #[test]
    fn a_whole_cyrillic_look_alike_keys_as_the_latin_and_is_single_script() {
        let local = "\u{430}\u{4cf}\u{456}\u{441}\u{435}@example.com"; // аӏісе
        let domain = "alice@\u{430}\u{440}\u{440}\u{4cf}\u{435}.com"; // аррӏе
        assert_same_key(local, "alice@example.com");
        assert_same_key(domain, "alice@apple.com");
        assert!(!mixes_scripts(local));
        assert!(!mixes_scripts(domain));
    }

    #[test]
    fn a_turkish_dotted_or_dotless_i_keys_as_a_plain_i() {
        let dotted = "al\u{130}ce@example.com".to_lowercase();
        assert_eq!(dotted, "ali\u{307}ce@example.com");
        // The plain skeleton keeps the dot above: why it is dropped.
        assert_eq!(skeleton("i\u{307}").collect::<String>(), "i\u{307}");
        assert_eq!(skeleton("\u{131}").collect::<String>(), "i");

        assert_same_key(&dotted, "alice@example.com");
        assert_same_key("al\u{131}ce@example.com", "alice@example.com");
        assert_same_key("al\u{131}\u{307}ce@example.com", "alice@example.com");
        assert_same_key("\u{458}\u{307}ane@example.com", "jane@example.com");
        assert!(!mixes_scripts(&dotted));
        assert!(!mixes_scripts("al\u{131}ce@example.com"));
    }

    #[test]
    fn only_a_dot_that_hides_on_its_letter_is_dropped() {
        // i with a diaeresis, an o with a dot, two dots on an i: all show.
        assert_other_keys("\u{ef}@example.com", "i@example.com");
        assert_other_keys("o\u{307}@example.com", "o@example.com");
        assert_other_keys("i\u{307}\u{307}@example.com", "i@example.com");
        // A mark below does not stop the dot replacing the soft one.
        assert_same_key("i\u{323}\u{307}@example.com", "i\u{323}@example.com");
    }

    #[test]
    fn compatibility_forms_key_as_the_letters_they_present() {
        assert_same_key("\u{ff41}lice@example.com", "alice@example.com"); // ａ
        assert_same_key("\u{1d426}odem@x.com", "modem@x.com"); // 𝐦
        assert_same_key("\u{fb01}sh@example.com", "fish@example.com"); // ﬁ
        assert_same_key("\u{210c}ello@example.com", "hello@example.com"); // ℌ
    }

    #[test]
    fn invisible_characters_vanish_from_the_key() {
        assert_same_key("ali\u{200b}ce@example.com", "alice@example.com");
        assert_same_key("ali\u{ad}ce@example.com", "alice@example.com");
    }

    #[test]
    fn legitimate_non_ascii_addresses_keep_their_letters() {
        let composed = "m\u{fc}ller@example.de";
        let decomposed: String = composed.nfd().collect();
        assert_same_key(composed, &decomposed);
        assert_other_keys(composed, "muller@example.de");
        assert_other_keys("stra\u{df}e@example.de", "strasse@example.de");
        for email in [
            composed,
            "\u{43f}\u{43e}\u{447}\u{442}\u{430}@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}", // почта@пример.рф
            "\u{7528}\u{6237}@\u{4f8b}\u{5b50}.\u{4e2d}\u{56fd}", // 用户@例子.中国
            "\u{3084}\u{307e}\u{3060}\u{592a}\u{90ce}@example.jp", // やまだ太郎: kana and Han
            "mail@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}", // mail@пример.рф
        ] {
            assert!(!mixes_scripts(email), "{email}");
        }
    }

    #[test]
    fn an_all_cyrillic_word_keys_as_the_latin_word_it_reads_as() {
        // сосоа and рара: Cyrillic letters only.
        assert_same_key(
            "\u{441}\u{43e}\u{441}\u{43e}\u{430}@example.com",
            "cocoa@example.com",
        );
        assert_same_key(
            "\u{440}\u{430}\u{440}\u{430}@example.com",
            "papa@example.com",
        );
    }

    #[test]
    fn a_latin_letter_in_a_cyrillic_label_mixes_scripts() {
        // пoчта with a Latin o; рф with a Latin p.
        assert!(mixes_scripts("\u{43f}o\u{447}\u{442}\u{430}@example.com"));
        assert!(mixes_scripts("mail@example.p\u{444}"));
    }
}
