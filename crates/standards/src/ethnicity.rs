//! The 56 ethnic groups (民族) and their GB 3304 codes.
//!
//! The list is in GB 3304 order (the shared reference file has the same 56 names but puts 高山族
//! last), so a group's two-digit code is its position plus one (01 汉族, 02 蒙古族 …). Departments
//! write the name with or without 族 and sometimes the code; `code_of` accepts all three.
//!
//! This module deliberately does not judge whether a person's recorded group is plausible, does
//! not fold full-width or traditional text (callers clean the value with [`crate::text`] first),
//! and knows only the 56 groups: GB 3304's catch-all codes (97 其他, 98 外国血统中国籍人士)
//! are not groups and are not mapped.

const GROUPS: [&str; 56] = [
    "汉族",
    "蒙古族",
    "回族",
    "藏族",
    "维吾尔族",
    "苗族",
    "彝族",
    "壮族",
    "布依族",
    "朝鲜族",
    "满族",
    "侗族",
    "瑶族",
    "白族",
    "土家族",
    "哈尼族",
    "哈萨克族",
    "傣族",
    "黎族",
    "傈僳族",
    "佤族",
    "畲族",
    "高山族",
    "拉祜族",
    "水族",
    "东乡族",
    "纳西族",
    "景颇族",
    "柯尔克孜族",
    "土族",
    "达斡尔族",
    "仫佬族",
    "羌族",
    "布朗族",
    "撒拉族",
    "毛南族",
    "仡佬族",
    "锡伯族",
    "阿昌族",
    "普米族",
    "塔吉克族",
    "怒族",
    "乌孜别克族",
    "俄罗斯族",
    "鄂温克族",
    "德昂族",
    "保安族",
    "裕固族",
    "京族",
    "塔塔尔族",
    "独龙族",
    "鄂伦春族",
    "赫哲族",
    "门巴族",
    "珞巴族",
    "基诺族",
];

/// All groups in GB 3304 order.
pub fn all() -> &'static [&'static str] {
    &GROUPS
}

/// The GB 3304 code ("01".."56") of a group written as 汉族, 汉, or 01.
pub fn code_of(s: &str) -> Option<String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<usize>() {
        return (1..=GROUPS.len()).contains(&n).then(|| format!("{n:02}"));
    }
    GROUPS
        .iter()
        .position(|g| *g == s || g.strip_suffix('族') == Some(s))
        .map(|i| format!("{:02}", i + 1))
}

/// The group's name for a GB 3304 code.
pub fn name_of(code: &str) -> Option<&'static str> {
    let n: usize = code.trim().parse().ok()?;
    GROUPS.get(n.checked_sub(1)?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_gb3304_order() {
        assert_eq!(all().len(), 56);
        assert_eq!(code_of("汉族").as_deref(), Some("01"));
        assert_eq!(code_of("汉").as_deref(), Some("01"));
        assert_eq!(code_of("回族").as_deref(), Some("03"));
        assert_eq!(code_of("5").as_deref(), Some("05"));
        assert_eq!(name_of("02"), Some("蒙古族"));
        assert_eq!(code_of("高山族").as_deref(), Some("23"));
        assert_eq!(code_of("基诺族").as_deref(), Some("56"));
        assert_eq!(code_of("火星族"), None);
        assert_eq!(code_of("57"), None);
        assert_eq!(name_of("0"), None);
    }
}
