//! Folding for brand matching only: Traditional characters to their Simplified forms, and the
//! spaces and decoration people put inside a name (`度 小 满`, `度·小·满`, `virgin_america`)
//! dropped. The folded text is only searched; every match is mapped back to the normalized text
//! (which tokens, windows and what people read are built on), so a mention keeps the spelling
//! it was written in.
//!
//! Full-width ASCII and upper case are already folded by [`super::text::normalize`], which runs
//! first. Folding keeps every remaining character's UTF-8 length (all mapped pairs are BMP
//! ideographs, three bytes each), so a position in the folded text maps back through the
//! places where something was dropped.
//!
//! The analyzer does not fold in a pass of its own: [`normalize_for_matching`] plans the
//! folding while the post is normalized, and [`FoldPlan::apply`] makes it.

use std::borrow::Cow;
use std::sync::OnceLock;

#[cfg(doc)]
use super::text::normalize_marking_stops;
use super::text::{normalize_observed, Normalized, Observer};

/// Traditional → Simplified pairs (each entry: the Traditional character, then its Simplified
/// form) for the characters common in Chinese company, product and financial names. A brand
/// name needs only its own characters to fold; the list is deliberately small and one-way
/// (characters that are also ordinary Simplified characters with another meaning, such as 乾,
/// 著, 藉 and 鍾, are left out).
const TRADITIONAL_SIMPLIFIED: &str = "\
滿满 貸贷 銀银 財财 寶宝 錢钱 唄呗 東东 馬马 雲云 網网 華华 為为 廣广 發发 髮发 國国 險险 \
眾众 衆众 貝贝 殼壳 點点 達达 鴻鸿 蟻蚁 螞蚂 門门 開开 關关 間间 問问 聞闻 興兴 業业 電电 \
動动 車车 軍军 軟软 輕轻 運运 連连 進进 遠远 還还 選选 遊游 過过 這这 億亿 萬万 與与 專专 \
兩两 嚴严 個个 們们 來来 樂乐 時时 書书 會会 傳传 倫伦 偉伟 價价 優优 儲储 兒儿 內内 冊册 \
寫写 農农 劃划 劉刘 創创 勝胜 勞劳 區区 協协 單单 衛卫 廠厂 參参 雙双 變变 臺台 檯台 颱台 \
號号 吳吴 員员 啟启 團团 園园 圖图 圍围 場场 塊块 報报 壓压 夢梦 頭头 奪夺 奮奋 婦妇 媽妈 \
學学 孫孙 寧宁 實实 審审 對对 導导 將将 屆届 層层 屬属 島岛 嶺岭 幣币 帥帅 師师 帳帐 帶带 \
幫帮 庫库 應应 廢废 張张 強强 彈弹 歸归 當当 錄录 彙汇 匯汇 滙汇 徵征 後后 從从 復复 複复 \
戶户 愛爱 態态 憂忧 慶庆 憑凭 懷怀 戰战 戲戏 擁拥 擇择 據据 擔担 擴扩 擊击 數数 斷断 無无 \
舊旧 晉晋 暢畅 曉晓 條条 楊杨 極极 構构 標标 樣样 樓楼 橋桥 機机 權权 橫横 檢检 歐欧 歲岁 \
歷历 曆历 殘残 氣气 漢汉 測测 溝沟 滬沪 減减 湯汤 溫温 潔洁 濟济 淨净 灣湾 濱滨 瀏浏 災灾 \
烏乌 熱热 燈灯 營营 爭争 牆墙 狀状 獨独 獎奖 環环 現现 瑪玛 產产 畢毕 畫画 異异 療疗 盡尽 \
儘尽 監监 盤盘 碼码 礎础 確确 禮礼 種种 稅税 穩稳 積积 窮穷 競竞 筆笔 節节 範范 築筑 簡简 \
簽签 粵粤 糧粮 係系 紀纪 約约 紅红 級级 納纳 紙纸 純纯 細细 組组 終终 結结 絕绝 統统 絲丝 \
經经 綜综 綠绿 維维 緊紧 線线 編编 緣缘 練练 縣县 總总 績绩 織织 繼继 續续 罰罚 羅罗 聖圣 \
聯联 聰聪 聲声 職职 聽听 腦脑 脫脱 舉举 藝艺 蘇苏 蘋苹 葉叶 藍蓝 藥药 處处 虧亏 術术 衝冲 \
補补 裝装 製制 見见 規规 視视 親亲 覺觉 覽览 觀观 計计 訂订 訊讯 記记 設设 許许 評评 詞词 \
試试 話话 該该 誠诚 說说 課课 調调 談谈 請请 論论 諾诺 證证 識识 譜谱 護护 讀读 讓让 讚赞 \
贊赞 負负 貢贡 貨货 販贩 貫贯 責责 貴贵 買买 費费 貿贸 資资 賓宾 賞赏 賠赔 賣卖 質质 賬账 \
賴赖 購购 賽赛 贈赠 贏赢 趙赵 軌轨 軒轩 較较 載载 輔辅 輛辆 輸输 轉转 辦办 邊边 遞递 郵邮 \
鄉乡 鄭郑 醫医 釋释 針针 鈔钞 銅铜 銷销 鋼钢 錦锦 鍵键 鎮镇 鏈链 鐵铁 長长 閃闪 閣阁 闊阔 \
闆板 陣阵 陽阳 陰阴 陳陈 陸陆 隊队 際际 隨随 隱隐 雜杂 雞鸡 離离 難难 霧雾 靈灵 靜静 韓韩 \
頁页 項项 順顺 預预 領领 頻频 題题 額额 顏颜 願愿 類类 顧顾 顯显 風风 飛飞 飯饭 飲饮 養养 \
館馆 駐驻 驗验 騰腾 驅驱 體体 鬥斗 魚鱼 鮮鲜 鳥鸟 鳳凤 鵬鹏 麥麦 黃黄 齊齐 龍龙 龜龟 攜携 \
擬拟 掃扫 掛挂 採采 換换 撥拨 擺摆 敗败 於于 榮荣 歡欢 沒没 淺浅 漲涨 潛潜 澤泽 濃浓 灑洒 \
爐炉 獻献 疊叠 盜盗 碩硕 磚砖 禦御 穀谷 籃篮 籌筹 紡纺 絡络 給给 緩缓 縮缩 繪绘 臨临 鋪铺 \
舖铺 艱艰 莊庄 蓋盖 蕭萧 蘭兰 虛虚 蝦虾 襲袭 託托 訪访 詐诈 詢询 誇夸 誌志 語语 誰谁 謀谋 \
謝谢 謹谨 譯译 議议 貞贞 賀贺 賃赁 賦赋 賭赌 賺赚 趨趋 蹤踪 軸轴 輝辉 輪轮 輯辑 轄辖 辭辞 \
遲迟 適适 遷迁 遺遗 鄰邻 釀酿 鋒锋 錯错 鍋锅 鏡镜 鐘钟 鑒鉴 鑑鉴 閱阅 闖闯 陝陕 韋韦 韻韵 \
響响 頂顶 頓顿 顆颗 飄飘 餅饼 餘余 駕驾 駛驶 騎骑 騙骗 驚惊 鬆松 鬧闹 鯨鲸 鹽盐 麗丽 黨党 \
齡龄 僅仅 傷伤 儀仪 倉仓 偵侦 側侧 備备 傑杰 債债 傾倾 僑侨 償偿 兌兑 凍冻 凱凯 則则 剛刚 \
劇剧 劑剂 勁劲 務务 勢势 勵励 勸劝 卻却 厲厉 叢丛 嗎吗 麼么 嘆叹 嘗尝 噸吨 囑嘱 圓圆 執执 \
堅坚 壞坏 壯壮 壽寿 夠够 奧奥 妝妆 嬰婴 寬宽 尋寻 岡冈 峽峡 幹干 廬庐 徑径 悅悦 惡恶 惱恼 \
慣惯 憶忆 懸悬 懼惧 攝摄 敘叙 暈晕 棄弃 棧栈 棟栋 楓枫 樁桩 樸朴 檔档 櫃柜 欄栏 殺杀 毀毁 \
決决 沖冲 況况 涼凉 渾浑 湧涌 滄沧 滲渗 漁渔 潤润 濫滥 瀾澜 煉炼 煙烟 煩烦 燦灿 爺爷 牽牵 \
狹狭 獅狮 獲获 瘡疮 皺皱 稱称 窯窑 竄窜 筍笋 糾纠 紐纽 紋纹 紳绅 綁绑 綱纲 緻致 縱纵 纖纤 \
罵骂 義义 習习 聳耸 肅肃 腎肾 腫肿 膚肤 臥卧 艙舱 蒼苍 蓮莲 蕩荡 薑姜 薩萨 蘆芦 蝕蚀 螢萤 \
裡里 裏里 觸触 訴诉 詳详 誘诱 認认 諮咨 謊谎 講讲 譽誉 貧贫 貼贴 賊贼 賢贤 贖赎 躍跃 輩辈 \
辯辩 週周 違违 遙遥 鄧邓 釣钓 鈕钮 鉛铅 銘铭 銳锐 錶表 鍛锻 鎖锁 鑄铸 閒闲 閑闲 閘闸 鞏巩 \
頌颂 顛颠 飼饲 飽饱 饒饶 駁驳 騷骚 驕骄 髒脏 鬍胡 魯鲁 鴨鸭 鵝鹅 鶴鹤 鷹鹰 麵面 黴霉 齋斋 \
龐庞 嗶哔 騏骐 驛驿 蔣蒋 鑽钻 衛卫 設设 圳圳 順顺 攤摊 擋挡 擠挤 據据 滅灭 滯滞 繩绳 罷罢 \
臉脸 膽胆 蠶蚕 褲裤 謠谣 陽阳 頸颈 顧顾 鐮镰 闡阐 餵喂 鹹咸 齒齿 條条 鋁铝 鈺钰 鑫鑫 瑩莹 \
瓊琼 綺绮 緯纬 縉缙 繹绎 贛赣 閩闽 遼辽 蘊蕴 滙汇 碼码 捲卷 準准 幾几 隻只 彥彦 惠惠";

/// The ideographs the table holds (CJK Unified Ideographs): all three bytes long in UTF-8.
#[cfg(test)]
const CJK_START: u32 = 0x4E00;
#[cfg(test)]
const CJK_LEN: usize = 0xA000 - 0x4E00;

struct Table {
    /// One bit per BMP code point, 64 to a word: set when it has a Simplified form here. Almost
    /// every character of a post is looked up, straight from its UTF-8 bytes: the word is
    /// indexed by the code point's top 10 bits, which a three-byte character's first two bytes
    /// hold, and the bit by its last byte. 8 KB, in cache.
    traditional: Box<[u64; 1024]>,
    /// (Traditional, Simplified), sorted by the Traditional character.
    pairs: Vec<(char, char)>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut pairs: Vec<(char, char)> = TRADITIONAL_SIMPLIFIED
            .split_whitespace()
            .filter_map(|pair| {
                let mut chars = pair.chars();
                let (t, s) = (chars.next()?, chars.next()?);
                (t != s).then_some((t, s))
            })
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut traditional = Box::new([0u64; 1024]);
        for &(t, _) in &pairs {
            let code = t as usize;
            traditional[code >> 6] |= 1 << (code & 63);
        }
        Table { traditional, pairs }
    })
}

impl Table {
    /// Whether code point `code` is a Traditional character of the table.
    fn is_traditional(&self, code: u32) -> bool {
        code < 0x10000 && self.traditional[(code >> 6) as usize & 1023] >> (code & 63) & 1 == 1
    }

    /// Where the three-byte character starting with `b0 b1 b2` stands in a bitmap laid out
    /// as [`Table::traditional`]: its word, indexed by the code point's top 10 bits (which
    /// the first two bytes hold), and its bit, the last byte's 6.
    #[inline(always)]
    fn position_utf8(b0: u8, b1: u8, b2: u8) -> (usize, u8) {
        (
            (usize::from(b0 & 0x0F) << 6) | usize::from(b1 & 0x3F),
            b2 & 0x3F,
        )
    }

    fn simplified_of(&self, c: char) -> char {
        match self.pairs.binary_search_by_key(&c, |&(t, _)| t) {
            Ok(k) => self.pairs[k].1,
            Err(_) => c,
        }
    }
}

/// The Simplified form of `c`, or `c` itself.
pub fn simplified(c: char) -> char {
    let table = table();
    if table.is_traditional(c as u32) {
        table.simplified_of(c)
    } else {
        c
    }
}

/// Every character that folds to `c`'s Simplified form: the form itself and its Traditional
/// ones. For the raw-text pre-check, which must not miss a spelling.
pub fn spellings(c: char) -> Vec<char> {
    let s = simplified(c);
    let mut out = vec![s];
    out.extend(
        table()
            .pairs
            .iter()
            .filter(|&&(_, simple)| simple == s)
            .map(|&(t, _)| t),
    );
    out
}

/// Characters dropped from the folded text: spaces and the decoration that people (and
/// handles, hashtags, filter dodgers) put between the parts of a name. Line breaks and clause
/// punctuation are not among them: a name is not written across them.
pub fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t'
            | '-'
            | '_'
            | '.'
            | '·'
            | '•'
            | '・'
            | '‧'
            | '･'
            | '∙'
            | '*'
            | '/'
            | '|'
            | '~'
            | '‐'
    )
}

/// A normalized text folded for matching, and the way back.
#[derive(Debug)]
pub struct Folded<'a> {
    pub text: Cow<'a, str>,
    /// (folded byte, normalized byte) where each run of kept text starts after something was
    /// dropped, in order. Between two of them, positions move together: a replaced character
    /// keeps its length.
    shifts: Vec<(usize, usize)>,
    source_len: usize,
}

impl Folded<'_> {
    /// The normalized byte that folded byte `at` came from.
    pub fn source(&self, at: usize) -> usize {
        let i = self.shifts.partition_point(|&(f, _)| f <= at);
        match i.checked_sub(1).map(|i| self.shifts[i]) {
            Some((f, s)) => s + (at - f),
            None => at,
        }
    }

    /// The normalized span of folded `start..end`: from its first character to the end of
    /// its last.
    pub fn source_span(&self, start: usize, end: usize) -> (usize, usize) {
        if end <= start {
            let at = self.source(start);
            return (at, at);
        }
        (self.source(start), self.source(end - 1) + 1)
    }

    /// The normalized bytes dropped just before folded byte `at` (an empty range when none).
    pub fn dropped_before(&self, at: usize) -> (usize, usize) {
        let here = self.source(at);
        if at == 0 || self.shifts.is_empty() {
            return (here, here);
        }
        (self.source(at - 1) + 1, here)
    }

    /// Length of the normalized text.
    pub fn source_len(&self) -> usize {
        self.source_len
    }
}

/// ASCII separators, by byte.
static ASCII_SEPARATOR: [bool; 128] = {
    let mut table = [false; 128];
    let seps = b" \t-_.*/|~";
    let mut i = 0;
    while i < seps.len() {
        table[seps[i] as usize] = true;
        i += 1;
    }
    table
};

/// Pairs of ideographs a fold pass watches for: the first two characters of words that a later
/// stage wants found anywhere in a text without segmenting it (`sentiment::TextNegatives`).
/// Folding tests every ideograph of a text that may name a brand against the Traditional bitmap
/// already; a bitmap of first characters, indexed the same way, costs a load and a test there,
/// where a pass of its own cost the analysis about 6% of its throughput (BENCHMARKS.md). Only
/// on a first character (one in twelve of a finance text's) is the next one decoded and tested
/// against a bitmap of second characters.
#[derive(Debug, Clone)]
pub struct WatchedPairs {
    /// One bit per BMP code point, laid out as [`Table::traditional`].
    /// Per word of 64 code points: which begin a watched pair, which end one. Side by side,
    /// so one cache line answers both (16 KB).
    bits: Box<[(u64, u64); 1024]>,
}

impl WatchedPairs {
    /// Watches `pairs`, whose characters must be ideographs of U+4000–U+9FFF (three bytes,
    /// lead byte E4–E9: the ones the fold pass decodes).
    pub fn new(pairs: impl IntoIterator<Item = (char, char)>) -> Result<WatchedPairs, String> {
        let mut bits = Box::new([(0u64, 0u64); 1024]);
        for (a, b) in pairs {
            for c in [a, b] {
                if !('\u{4000}'..'\u{A000}').contains(&c) {
                    return Err(format!("{c:?} is not an ideograph of U+4000-U+9FFF"));
                }
            }
            bits[a as usize >> 6].0 |= 1 << (a as usize & 63);
            bits[b as usize >> 6].1 |= 1 << (b as usize & 63);
        }
        Ok(WatchedPairs { bits })
    }

    /// Watches nothing.
    pub fn none() -> &'static WatchedPairs {
        static NONE: OnceLock<WatchedPairs> = OnceLock::new();
        NONE.get_or_init(|| WatchedPairs {
            bits: Box::new([(0, 0); 1024]),
        })
    }
}

/// What a fold pass tells of the ideographs it steps over.
trait Watch {
    /// The ideograph at byte `at` of `bytes`, by its bitmap word and bit (see
    /// [`Table::traditional`]).
    fn ideograph(&mut self, bytes: &[u8], at: usize, word: usize, bit: u8);
}

/// Plain folding.
struct Unwatched;

impl Watch for Unwatched {
    #[inline(always)]
    fn ideograph(&mut self, _: &[u8], _: usize, _: usize, _: u8) {}
}

/// Notes where each watched pair may begin.
struct Watching<'w> {
    watched: &'w WatchedPairs,
    found: &'w mut Vec<usize>,
}

impl Watch for Watching<'_> {
    #[inline(always)]
    fn ideograph(&mut self, bytes: &[u8], at: usize, word: usize, bit: u8) {
        if self.watched.bits[word].0 >> bit & 1 == 0 {
            return;
        }
        if let Some(&[b0, b1, b2]) = bytes.get(at + 3..at + 6) {
            if (0xE4..=0xE9).contains(&b0) {
                let (word, bit) = Table::position_utf8(b0, b1, b2);
                if self.watched.bits[word].1 >> bit & 1 == 1 {
                    self.found.push(at);
                }
            }
        }
    }
}

/// Folds a normalized text. It runs over every text that may name a brand, so it works on
/// bytes: ASCII is looked up in a table, a three-byte ideograph is decoded by hand and tested
/// against the Traditional bitmap, other characters are decoded only when their lead byte can
/// start a separator. The changes found are then made as a planned fold makes them.
pub fn fold(text: &str) -> Folded<'_> {
    fold_with(text, &mut Unwatched)
}

/// [`fold`], also noting in `found`, in order, the byte (in `text`) where each pair of
/// neighbouring ideographs that `watched` may hold begins (every watched pair's first character
/// with any watched pair's second), as written before folding.
pub fn fold_watching<'a>(
    text: &'a str,
    watched: &WatchedPairs,
    found: &mut Vec<usize>,
) -> Folded<'a> {
    fold_with(text, &mut Watching { watched, found })
}

fn fold_with<'a, W: Watch>(text: &'a str, watch: &mut W) -> Folded<'a> {
    let bytes = text.as_bytes();
    let table = table();
    let mut changes = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        // Step over what never changes (almost all of a post) before anything else.
        while let Some(&b) = bytes.get(i) {
            if b < 0x80 {
                if ASCII_SEPARATOR[usize::from(b)] {
                    break;
                }
                i += 1;
                continue;
            }
            if !(0xE4..=0xE9).contains(&b) || i + 2 >= bytes.len() {
                break;
            }
            let (word, bit) = Table::position_utf8(b, bytes[i + 1], bytes[i + 2]);
            if table.traditional[word] >> bit & 1 == 1 {
                break;
            }
            watch.ideograph(bytes, i, word, bit);
            i += 3;
        }
        let Some(&b) = bytes.get(i) else {
            break;
        };
        let (width, change) = if b < 0x80 {
            let drop = ASCII_SEPARATOR[usize::from(b)];
            (1, drop.then_some(None))
        } else if (0xE4..=0xE9).contains(&b) && i + 2 < bytes.len() {
            let code = decode3(bytes, i);
            let (word, bit) = Table::position_utf8(b, bytes[i + 1], bytes[i + 2]);
            watch.ideograph(bytes, i, word, bit);
            // Decoding is checked only for the rare Traditional character.
            let change = table
                .is_traditional(code)
                .then(|| char::from_u32(code).map(|c| table.simplified_of(c)))
                .flatten()
                .map(Some);
            (3, change)
        } else {
            let width = match b {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let change = if matches!(b, 0xC2 | 0xE2 | 0xE3 | 0xEF) {
                let c = text[i..].chars().next().expect("i is a character boundary");
                is_separator(c).then_some(None)
            } else {
                None
            };
            (width, change)
        };
        if let Some(change) = change {
            changes.push((i, width, change));
        }
        i += width;
    }
    apply_changes(text, &changes)
}

/// `text` with `changes` made ((byte, length, the Simplified form or `None` for a dropped
/// separator), in order): nothing is copied when there are none, and the runs between them
/// are copied whole.
fn apply_changes<'a>(text: &'a str, changes: &[(usize, usize, Option<char>)]) -> Folded<'a> {
    let mut shifts: Vec<(usize, usize)> = Vec::new();
    if changes.is_empty() {
        return Folded {
            text: Cow::Borrowed(text),
            shifts,
            source_len: text.len(),
        };
    }
    let mut folded = String::with_capacity(text.len());
    let mut copied = 0;
    for &(at, width, change) in changes {
        folded.push_str(&text[copied..at]);
        copied = at + width;
        match change {
            Some(simplified) => folded.push(simplified),
            None => match shifts.last_mut() {
                // A run of separators: one shift, to after the last of them.
                Some(last) if last.0 == folded.len() => last.1 = copied,
                _ => shifts.push((folded.len(), copied)),
            },
        }
    }
    folded.push_str(&text[copied..]);
    Folded {
        text: Cow::Owned(folded),
        shifts,
        source_len: text.len(),
    }
}

/// What folding will change in a normalized text, found while it was normalized
/// ([`normalize_for_matching`]): (byte, length, the Simplified form or `None` for a dropped
/// separator), in order.
#[derive(Debug, Default)]
pub struct FoldPlan {
    changes: Vec<(usize, usize, Option<char>)>,
    /// Where each watched pair may begin ([`fold_watching`]), when pairs were watched.
    watched_at: Vec<usize>,
    /// Normalization rewrote the text after the changes were noted: fold it afresh.
    stale: bool,
}

impl FoldPlan {
    /// The text folded: [`fold`]`(text)`, where `text` is the normalized text the plan was
    /// made with.
    pub fn apply<'a>(&self, text: &'a str) -> Folded<'a> {
        if self.stale {
            return fold(text);
        }
        apply_changes(text, &self.changes)
    }

    /// Where each pair of `watched` may begin in `text` (the normalized text the plan was
    /// made with, watching `watched`), as [`fold_watching`] notes them.
    pub fn watched_at(&self, text: &str, watched: &WatchedPairs) -> Cow<'_, [usize]> {
        if self.stale {
            let mut found = Vec::new();
            fold_watching(text, watched, &mut found);
            return Cow::Owned(found);
        }
        Cow::Borrowed(&self.watched_at)
    }
}

/// Notes what folding changes as normalization writes the text, and where watched pairs
/// may begin.
struct Planner<'w> {
    table: &'static Table,
    watched: &'w WatchedPairs,
    /// Where an ideograph would end a watched pair begun by the last one seen (none can:
    /// `usize::MAX`).
    pair_ends_at: usize,
    plan: FoldPlan,
}

impl Observer for Planner<'_> {
    #[inline(always)]
    fn ideograph(&mut self, at: usize, [b0, b1, b2]: [u8; 3]) {
        let (word, bit) = Table::position_utf8(b0, b1, b2);
        // Every ideograph is tested, with no branch but the rare one where a pair is found.
        let (first, second) = self.watched.bits[word];
        if (self.pair_ends_at == at) & (second >> bit & 1 == 1) {
            self.plan.watched_at.push(at - 3);
        }
        self.pair_ends_at = if first >> bit & 1 == 1 {
            at + 3
        } else {
            usize::MAX
        };
        if self.table.traditional[word] >> bit & 1 == 0 {
            return;
        }
        let code =
            (u32::from(b0 & 0x0F) << 12) | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F);
        if let Some(c) = char::from_u32(code) {
            self.plan
                .changes
                .push((at, 3, Some(self.table.simplified_of(c))));
        }
    }

    #[inline(always)]
    fn character(&mut self, at: usize, c: char) {
        if is_separator(c) {
            self.plan.changes.push((at, c.len_utf8(), None));
        }
    }

    fn rewritten(&mut self) {
        self.plan.stale = true;
    }
}

/// Normalizes `raw` ([`normalize_marking_stops`]) and plans its folding in the same pass over
/// its bytes: for the analyzer, which does both to every post that may name a brand. Folding
/// with a pass of its own cost about 4% of the analysis (BENCHMARKS.md). The plan also notes
/// where each pair of `watched` may begin ([`FoldPlan::watched_at`]; [`WatchedPairs::none`]
/// watches nothing).
pub fn normalize_for_matching(raw: &str, watched: &WatchedPairs) -> (Normalized, FoldPlan) {
    let mut planner = Planner {
        table: table(),
        watched,
        pair_ends_at: usize::MAX,
        plan: FoldPlan::default(),
    };
    let normalized = normalize_observed(raw, &mut planner);
    (normalized, planner.plan)
}

/// The code point of the three-byte character at `i`.
fn decode3(bytes: &[u8], i: usize) -> u32 {
    (u32::from(bytes[i] & 0x0F) << 12)
        | (u32::from(bytes[i + 1] & 0x3F) << 6)
        | u32::from(bytes[i + 2] & 0x3F)
}

/// A name (alias or exclusion) folded as texts are: what the search looks for.
pub fn fold_name(name: &str) -> String {
    fold(name).text.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_keeps_its_length_and_is_an_ideograph() {
        for &(t, s) in &table().pairs {
            assert_eq!(t.len_utf8(), s.len_utf8(), "{t}{s}");
            assert!((CJK_START..CJK_START + CJK_LEN as u32).contains(&(t as u32)));
            assert_eq!(simplified(s), s, "{s} is itself Traditional somewhere");
        }
        assert!(table().pairs.len() > 500, "{}", table().pairs.len());
    }

    #[test]
    fn traditional_folds_to_simplified() {
        assert_eq!(fold("度小滿金融").text, "度小满金融");
        assert_eq!(fold("螞蟻借唄").text, "蚂蚁借呗");
        assert_eq!(fold("度小满").text, "度小满");
        assert!(matches!(fold("度小满").text, Cow::Borrowed(_)));
        assert_eq!(simplified('a'), 'a');
        assert_eq!(spellings('满'), vec!['满', '滿']);
        assert_eq!(spellings('滿'), vec!['满', '滿']);
    }

    /// Planned while normalizing, folding gives what normalizing and then folding give, on
    /// texts of every kind of character either pass touches.
    #[test]
    fn folding_planned_while_normalizing_is_folding_afterwards() {
        use crate::analyze::text::{normalize_marking_stops, OBSERVED_ASCII};
        let pieces = [
            "度", "小", "满", "滿", "貸", "銀", "行", " ", "\t", "-", "_", ".", "*", "/", "|", "~",
            "·", "•", "・", "‧", "･", "∙", "‐", "　", "\u{a0}", "－", "．", "Ａ", "ｂ", "X", "y",
            "7", "，", "。", "！", "?", "\n", "\u{fe0f}", "\u{200b}", "’", "n't", "can't", "é",
            "😀", "ア", "한", "𠀀", "跑", "路",
        ];
        let watched = WatchedPairs::new([('跑', '路'), ('度', '小'), ('小', '满')]).unwrap();
        let mut watched_seen = 0;
        let mut seed = 11u64;
        for n in 0..3000 {
            let mut raw = String::new();
            for _ in 0..(n % 17) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                raw.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            let (normalized, plan) = normalize_for_matching(&raw, &watched);
            assert_eq!(normalized, normalize_marking_stops(&raw), "{raw:?}");
            let mut pairs = Vec::new();
            fold_watching(&normalized.text, &watched, &mut pairs);
            assert_eq!(
                *plan.watched_at(&normalized.text, &watched),
                pairs,
                "{raw:?}"
            );
            watched_seen += pairs.len();
            let planned = plan.apply(&normalized.text);
            let afterwards = fold(&normalized.text);
            assert_eq!(planned.text, afterwards.text, "{raw:?}");
            assert_eq!(planned.shifts, afterwards.shifts, "{raw:?}");
            assert_eq!(planned.source_len, afterwards.source_len, "{raw:?}");
        }
        assert!(watched_seen > 50, "{watched_seen}");
        // The characters shown to the plan are the ASCII separators folding drops.
        for b in 0..128u8 {
            assert_eq!(
                OBSERVED_ASCII.contains(&b),
                ASCII_SEPARATOR[usize::from(b)],
                "{b}"
            );
        }
    }

    #[test]
    fn watching_notes_where_each_pair_may_begin_and_folds_the_same() {
        let watched = WatchedPairs::new([('跑', '路'), ('失', '联')]).unwrap();
        let text = "老板跑路了 跑 路，失联失联;跑路滿跑 a跑路跑";
        let mut found = Vec::new();
        let folded = fold_watching(text, &watched, &mut found);
        let plain = fold(text);
        assert_eq!((&folded.text, &folded.shifts), (&plain.text, &plain.shifts));
        let mut every: Vec<usize> = ["跑路", "失联"]
            .iter()
            .flat_map(|w| text.match_indices(w).map(|(at, _)| at))
            .collect();
        every.sort_unstable();
        // 跑 then 联 would also be noted (first and second characters of some pair), but this
        // text has none: exactly the pairs, in order; a separator parts a pair, and a first
        // character at the end has no second.
        assert_eq!(found, every);
        assert!(WatchedPairs::new([('a', '路')]).is_err());
        assert!(WatchedPairs::new([('跑', '。')]).is_err());
    }

    #[test]
    fn separators_are_dropped_and_positions_map_back() {
        let text = "曝 度·小 滿 催收";
        let f = fold(text);
        assert_eq!(f.text, "曝度小满催收");
        let at = f.text.find("度小满").unwrap();
        let (s, e) = f.source_span(at, at + "度小满".len());
        assert_eq!(&text[s..e], "度·小 滿");
        let xiao = at + "度".len();
        let (ds, de) = f.dropped_before(xiao);
        assert_eq!(&text[ds..de], "·");
        assert_eq!(
            f.dropped_before(at),
            (text.find('度').unwrap() - 1, text.find('度').unwrap())
        );
        assert_eq!(f.source_len(), text.len());
        // Every kept byte maps back to the same character.
        for (at, c) in f.text.char_indices() {
            let back = text[f.source(at)..].chars().next().unwrap();
            assert_eq!(simplified(back), c);
        }
        let f = fold("a - b ·c");
        assert_eq!(f.text, "abc");
        assert_eq!(f.dropped_before(1), (1, 4));
        assert_eq!(f.dropped_before(2), (5, 8));
    }
}
