//! The console's two languages: which one a request gets, and every label in both.
//!
//! Labels are one table ([`Label`]), so a label cannot exist in one language only: the macro
//! that builds the enum takes a Chinese and an English text for each entry, and
//! [`Label::ALL`] lists every variant for the tests.

/// A language the console is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Simplified Chinese.
    Zh,
    En,
}

/// How many entries of an `Accept-Language` header are looked at. Browsers send a handful;
/// a header of thousands is not worth the work.
const MAX_LANGUAGE_RANGES: usize = 32;

impl Lang {
    /// The language a browser prefers, from its `Accept-Language` header: the known language
    /// with the highest q-value, the earlier one on a tie. `q=0` means "not this one". A header
    /// that is missing, malformed or names neither language gives `default`.
    ///
    /// `zh-CN,zh;q=0.9,en;q=0.8` → [`Lang::Zh`]; `en-US,en;q=0.9` → [`Lang::En`].
    pub fn from_accept_language(header: Option<&str>, default: Lang) -> Lang {
        let Some(header) = header else {
            return default;
        };
        let mut best: Option<(Lang, f32)> = None;
        for range in header.split(',').take(MAX_LANGUAGE_RANGES) {
            let mut parts = range.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let mut q = Some(1.0_f32);
            for param in parts {
                if let Some((key, value)) = param.split_once('=') {
                    if key.trim().eq_ignore_ascii_case("q") {
                        q = value
                            .trim()
                            .parse::<f32>()
                            .ok()
                            .filter(|q| (0.0..=1.0).contains(q));
                    }
                }
            }
            let Some(q) = q.filter(|&q| q > 0.0) else {
                continue;
            };
            if best.is_none_or(|(_, best_q)| q > best_q) {
                best = Some((lang, q));
            }
        }
        best.map_or(default, |(lang, _)| lang)
    }

    /// A language named in configuration: `zh` or `en`, any case, with or without a region
    /// (`zh-CN`, `en_US`), so [`Lang::code`] parses back.
    pub fn parse(s: &str) -> Option<Lang> {
        let primary = s.trim().split(['-', '_']).next()?;
        if primary.eq_ignore_ascii_case("zh") {
            Some(Lang::Zh)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The BCP 47 tag for `<html lang=…>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

macro_rules! labels {
    ($($(#[$doc:meta])* $name:ident => $zh:literal, $en:literal;)*) => {
        /// A piece of console text. [`Label::t`] gives it in a language.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Label {
            $($(#[$doc])* $name,)*
        }

        impl Label {
            /// Every label, in declaration order.
            pub const ALL: &'static [Label] = &[$(Label::$name,)*];

            /// (Chinese, English).
            fn texts(self) -> (&'static str, &'static str) {
                match self {
                    $(Label::$name => ($zh, $en),)*
                }
            }
        }
    };
}

labels! {
    // Navigation and session.
    Overview => "舆情概览", "Overview";
    Hits => "命中", "Hits";
    Sources => "来源", "Sources";
    LogIn => "登录", "Log in";
    LogOut => "退出登录", "Log out";
    SignedInAs => "当前用户", "Signed in as";
    TimeZone => "时区", "Time zone";

    // Overview figures and charts.
    Today => "今日", "Today";
    MentionsToday => "今日提及", "Mentions today";
    NegativeHits => "负面", "Negative hits";
    ComplaintRate => "客诉率", "Complaint rate";
    HarmIndex => "用户伤害程度", "Harm index";
    ComplaintRateTrend => "近 7 天客诉率", "Complaint rate, last 7 days";
    HarmTrend => "近 7 天用户伤害程度", "Harm index, last 7 days";
    Volume24h => "近 24 小时声量", "Volume, last 24 hours";
    /// Chart legend: all mentions.
    Mentions => "提及", "Mentions";
    OpenIncidents => "未解决事件", "Open incidents";
    FailingSources => "异常来源", "Failing sources";
    NoBrands => "暂无品牌数据。配置品牌并完成抓取后会显示在这里。",
        "No brand figures yet. They appear here once brands are configured and polled.";
    NoOpenIncidents => "没有未解决的事件。", "No open incidents.";
    AllSourcesHealthy => "所有来源运行正常。", "All sources are healthy.";

    // Incidents.
    Incidents => "事件", "Incidents";
    Incident => "事件", "Incident";
    Brand => "品牌", "Brand";
    State => "状态", "State";
    Triggered => "待认领", "Triggered";
    Acknowledged => "已认领", "Acknowledged";
    Resolved => "已解决", "Resolved";
    Owner => "负责人", "Owner";
    Nobody => "无人认领", "Nobody";
    ResolvedBy => "解决人", "Resolved by";
    OpenedAt => "开始时间", "Opened at";
    HitCount => "命中数", "Hit count";
    Window => "检测窗口", "Detection window";
    WindowCount => "窗口内负面数", "Negative in window";
    Baseline => "基线", "Baseline";
    TopPosts => "主要帖子", "Top posts";
    Topic => "话题词", "Topic";
    Categories => "危机类别", "Crisis categories";
    WhyOpened => "触发原因", "Why it opened";
    NoTopPosts => "没有记录帖子。", "No posts recorded.";
    Timeline => "时间线", "Timeline";
    NoHistory => "暂无记录。", "No entries yet.";
    Time => "时间", "Time";
    Who => "操作人", "By";
    Change => "变更", "Change";
    Note => "备注", "Note";
    /// The daemon itself, in the timeline.
    System => "系统", "System";
    Actions => "操作", "Actions";
    Acknowledge => "认领", "Acknowledge";
    Resolve => "解决", "Resolve";
    Reopen => "重新打开", "Reopen";
    /// Marks every hit of the incident as a false positive (staff feedback for retraining).
    FalsePositive => "误报", "False positive";
    ResolveNote => "处理说明", "Resolution note";
    LogInToAct => "登录后即可操作", "Log in to act";
    Report => "问题诊断报告", "Incident report";
    ReportMarkdown => "Markdown 原文", "Markdown source";
    BackToIncident => "返回事件", "Back to the incident";

    // Hits.
    Title => "标题", "Title";
    Score => "得分", "Score";
    Negative => "是否负面", "Negative?";
    Terms => "触发词", "Terms";
    Any => "全部", "Any";
    Yes => "是", "Yes";
    No => "否", "No";
    Since => "时间范围", "Since";
    SinceHint => "如 24h、7d", "e.g. 24h, 7d";
    Filter => "筛选", "Filter";
    NextPage => "下一页", "Next page";
    NoHits => "没有符合条件的命中。", "No hits match these filters.";
    Untitled => "（无标题）", "(untitled)";

    // Sources.
    Source => "来源名称", "Source";
    LastPoll => "最近抓取", "Last poll";
    LastSuccess => "最近成功", "Last success";
    LastError => "最近错误", "Last error";
    ConsecutiveFailures => "连续失败", "Consecutive failures";
    NewItems => "新条目", "New items";
    ItemsSeen => "累计条目", "Items seen";
    LastNewItem => "最近新条目", "Last new item";
    ErrorClass => "错误类别", "Error class";
    Unhealthy => "已告警", "Alerted";
    Never => "从未", "never";
    NoSources => "尚未配置来源。", "No sources configured.";

    // Log in.
    Name => "姓名", "Your name";
    NameHint => "记录在事件的操作历史中。", "Recorded in the incidents' audit trail.";
    Token => "访问令牌", "Access token";

    // Errors.
    NotFound => "未找到", "Not found";
    BackToOverview => "返回舆情概览", "Back to the overview";
}

impl Label {
    /// The label in `lang`.
    pub fn t(self, lang: Lang) -> &'static str {
        let (zh, en) = self.texts();
        match lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_known_language() {
        let zh = Lang::Zh;
        let en = Lang::En;
        assert_eq!(
            Lang::from_accept_language(Some("zh-CN,zh;q=0.9,en;q=0.8"), en),
            zh
        );
        assert_eq!(Lang::from_accept_language(Some("en-US,en;q=0.9"), zh), en);
        assert_eq!(
            Lang::from_accept_language(Some("en;q=0.5, zh;q=0.8"), en),
            zh
        );
        assert_eq!(
            Lang::from_accept_language(Some("fr-FR,fr;q=0.9,en;q=0.3"), zh),
            en
        );
        // Ties go to the earlier entry.
        assert_eq!(Lang::from_accept_language(Some("en, zh"), zh), en);
        // q=0 refuses a language.
        assert_eq!(Lang::from_accept_language(Some("zh;q=0, en;q=0.1"), zh), en);
        assert_eq!(Lang::from_accept_language(Some("ZH-tw"), en), zh);
    }

    #[test]
    fn accept_language_falls_back_to_the_default() {
        for default in [Lang::Zh, Lang::En] {
            for header in [
                None,
                Some(""),
                Some("fr-FR,fr;q=0.9"),
                Some("*"),
                Some("zh;q=abc"),
                Some("en;q=7"),
                Some("zh;q=0"),
                Some(",,;;=,q=1"),
            ] {
                assert_eq!(
                    Lang::from_accept_language(header, default),
                    default,
                    "{header:?}"
                );
            }
        }
    }

    #[test]
    fn config_values_parse_and_codes_parse_back() {
        assert_eq!(Lang::parse("zh"), Some(Lang::Zh));
        assert_eq!(Lang::parse(" EN "), Some(Lang::En));
        assert_eq!(Lang::parse("zh_CN"), Some(Lang::Zh));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::parse(""), None);
        assert_eq!(Lang::parse("zhx"), None);
        for lang in [Lang::Zh, Lang::En] {
            assert_eq!(Lang::parse(lang.code()), Some(lang));
        }
        assert_eq!(Lang::Zh.code(), "zh-CN");
        assert_eq!(Lang::En.code(), "en");
    }

    #[test]
    fn every_label_has_both_texts() {
        assert!(Label::ALL.len() > 50);
        for &label in Label::ALL {
            let zh = label.t(Lang::Zh);
            let en = label.t(Lang::En);
            assert!(!zh.trim().is_empty(), "{label:?} has no Chinese text");
            assert!(!en.trim().is_empty(), "{label:?} has no English text");
            assert_ne!(zh, en, "{label:?} is not translated");
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{label:?}: Chinese text {zh:?} has no Chinese in it"
            );
            assert!(
                en.is_ascii(),
                "{label:?}: English text {en:?} has non-ASCII characters"
            );
        }
    }

    #[test]
    fn the_glossary_is_kept() {
        for (label, zh) in [
            (Label::Overview, "舆情概览"),
            (Label::MentionsToday, "今日提及"),
            (Label::NegativeHits, "负面"),
            (Label::ComplaintRate, "客诉率"),
            (Label::HarmIndex, "用户伤害程度"),
            (Label::Incidents, "事件"),
            (Label::Triggered, "待认领"),
            (Label::Acknowledged, "已认领"),
            (Label::Resolved, "已解决"),
            (Label::Acknowledge, "认领"),
            (Label::Resolve, "解决"),
            (Label::Reopen, "重新打开"),
            (Label::Owner, "负责人"),
            (Label::Timeline, "时间线"),
            (Label::Hits, "命中"),
            (Label::Sources, "来源"),
            (Label::LogIn, "登录"),
        ] {
            assert_eq!(label.t(Lang::Zh), zh);
        }
    }
}
