//! A word-keyed table for the per-token lookups of the hot path.
//!
//! Every token of every post is looked up, often several times (its own entry, then pieces of
//! it when it is a compound). A `HashMap<String, _>` costs a pointer chase to each candidate
//! key on top of the hash; here words of up to 15 bytes (five Chinese characters: nearly all
//! words) are keyed by their bytes packed into a `u128`, so a lookup compares inside the table.

use rustc_hash::FxHashMap;

#[derive(Debug, Clone)]
pub struct WordTable<V> {
    short: FxHashMap<u128, V>,
    long: FxHashMap<Box<str>, V>,
}

impl<V> Default for WordTable<V> {
    fn default() -> Self {
        WordTable {
            short: FxHashMap::default(),
            long: FxHashMap::default(),
        }
    }
}

impl<V: Default> WordTable<V> {
    /// The value for `word`, inserted as the default if absent.
    pub fn entry(&mut self, word: &str) -> &mut V {
        match pack(word) {
            Some(key) => self.short.entry(key).or_default(),
            None => self.long.entry(word.into()).or_default(),
        }
    }
}

impl<V> WordTable<V> {
    /// Room for `n` more words (an upper bound is fine: they are mostly short).
    pub fn reserve(&mut self, n: usize) {
        self.short.reserve(n);
    }

    pub fn get(&self, word: &str) -> Option<&V> {
        match pack(word) {
            Some(key) => self.short.get(&key),
            None => self.long.get(word),
        }
    }

    /// [`WordTable::get`] of `text[start..end]`, which must be a char-aligned range.
    pub fn get_in(&self, text: &str, start: usize, end: usize) -> Option<&V> {
        match pack_in(text, start, end) {
            Some(key) => self.short.get(&key),
            None => self.long.get(&text[start..end]),
        }
    }

    pub fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `word` packed with its length, if it fits.
fn pack(word: &str) -> Option<u128> {
    let bytes = word.as_bytes();
    let len = bytes.len();
    if len > 15 {
        return None;
    }
    let mut buf = [0u8; 16];
    buf[..len].copy_from_slice(bytes);
    buf[15] = len as u8;
    Some(u128::from_le_bytes(buf))
}

/// [`pack`] of `text[start..end]`, reading 16 bytes at once where the text has them.
fn pack_in(text: &str, start: usize, end: usize) -> Option<u128> {
    let len = end - start;
    if len > 15 {
        return None;
    }
    match text.as_bytes().get(start..start + 16) {
        Some(window) => {
            let raw = u128::from_le_bytes(window.try_into().expect("16 bytes"));
            let mask = (1u128 << (8 * len)) - 1;
            Some((raw & mask) | ((len as u128) << 120))
        }
        None => pack(&text[start..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_keys_agree_whatever_follows_the_word() {
        let text = "好差劲abc度小满金融有限公司的客服真的太差了";
        for (start, _) in text.char_indices() {
            for (len, _) in text[start..].char_indices().skip(1) {
                let end = start + len;
                assert_eq!(pack_in(text, start, end), pack(&text[start..end]));
            }
        }
        assert_ne!(pack("ab"), pack("ab\0"), "the length is part of the key");
    }

    #[test]
    fn short_and_long_words() {
        let mut t: WordTable<u32> = WordTable::default();
        *t.entry("好") = 1;
        *t.entry("中华人民共和国万岁") = 2; // 27 bytes: the string-keyed side
        let text = "说好的中华人民共和国万岁";
        assert_eq!(t.get("好"), Some(&1));
        assert_eq!(t.get_in(text, 3, 6), Some(&1));
        assert_eq!(t.get_in(text, 9, text.len()), Some(&2));
        assert_eq!(t.get("好的"), None);
        assert_eq!(t.len(), 2);
    }
}
