//! jieba's dictionary, embedded compressed and read as a stream.
//!
//! jieba-rs's own embedded dictionary (`Jieba::new`) is decompressed into a 5 MB string that
//! it keeps for the life of the process, although segmentation never reads it again once the
//! trie is built. The same file (`assets/jieba/dict.txt`, from jieba-rs 0.11, MIT) is
//! embedded here zstd-compressed and decompressed line by line while it loads, so nothing but
//! the trie stays: 5 MB less resident in every process (BENCHMARKS.md, "Memory").

use std::io::BufReader;

use jieba_rs::Jieba;

include_flate::flate!(static DICTIONARY: IFlate from "assets/jieba/dict.txt" with zstd);

/// A jieba with its standard dictionary, as `Jieba::new()` builds it.
pub fn standard_jieba() -> Jieba {
    let compressed = DICTIONARY.compressed();
    // Both failures would mean a corrupt binary: the file is compressed and checked (UTF-8,
    // `word freq tag` lines) when yuqing is compiled, and the tests load it.
    let decoder = zstd::stream::read::Decoder::with_buffer(compressed)
        .expect("the embedded jieba dictionary is zstd-compressed");
    Jieba::with_dict(&mut BufReader::new(decoder))
        .expect("the embedded jieba dictionary has one `word freq tag` entry per line")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_dictionary_segments_as_jiebas_own() {
        let ours = standard_jieba();
        let theirs = Jieba::new();
        for text in [
            "度小满金融回应暴力催收投诉：已成立专项小组核查",
            "南京市长江大桥欢迎您，我们中出了一个叛徒",
            "借呗额度突然被降，客服说是系统综合评估的结果",
            "Apple 发布了新的 iPhone，价格 5999 元起",
        ] {
            assert_eq!(ours.cut(text, true), theirs.cut(text, true), "{text}");
            assert_eq!(ours.cut(text, false), theirs.cut(text, false), "{text}");
        }
        assert!(ours.has_word("暴力催收") == theirs.has_word("暴力催收"));
        assert!(ours.has_word("我们"));
    }
}
