//! The console's words in Chinese (the default) and English. Templates name a label by key
//! (`{{ t.search }}`); a key missing from a language falls back to its Chinese.

use std::collections::BTreeMap;

/// (key, 中文, English).
const LABELS: &[(&str, &str, &str)] = &[
    ("app", "通办 · 数据共享平台", "Tongban · data-sharing hub"),
    ("dashboard", "总览", "Dashboard"),
    ("search", "查询", "Search"),
    ("grants", "共享申请与授权", "Requests and grants"),
    ("audit", "审计日志", "Audit log"),
    ("me", "我的数据", "My data"),
    ("login", "登录", "Sign in"),
    ("logout", "退出", "Sign out"),
    ("user", "用户名", "User"),
    ("password", "密码", "Password"),
    (
        "login_failed",
        "用户名或密码不正确。",
        "The user or password is not right.",
    ),
    ("population", "实有人口", "Population"),
    ("community", "社区", "Community"),
    ("registered", "户籍人口", "Registered residents"),
    ("floating", "流动人口", "Floating population"),
    ("total", "合计", "Total"),
    ("heat", "社区人口热力", "Communities by people"),
    ("pyramid", "人口年龄结构", "Age pyramid"),
    ("male", "男", "Male"),
    ("female", "女", "Female"),
    ("industries", "法人按行业", "Legal entities by industry"),
    ("calls", "每日共享调用", "Sharing calls per day"),
    ("day", "日期", "Day"),
    ("department", "部门", "Department"),
    ("reads", "调用次数", "Reads"),
    (
        "computing",
        "统计正在计算，请稍后刷新。",
        "The figures are being computed; reload in a moment.",
    ),
    ("person", "人员", "Person"),
    ("entity", "法人", "Legal entity"),
    ("room", "房间", "Room"),
    ("building", "楼栋", "Building"),
    ("name", "姓名/名称", "Name"),
    ("birth_date", "出生日期", "Birth date"),
    ("phone", "电话", "Phone"),
    ("citizen_id", "身份证号", "Citizen id"),
    ("address", "地址", "Address"),
    ("credit_code", "统一社会信用代码", "Credit code"),
    ("sex", "性别", "Sex"),
    ("ethnicity", "民族", "Ethnicity"),
    ("residence", "居住地址", "Residence"),
    ("registered_address", "户籍地址", "Registered address"),
    ("household_no", "户号", "Household number"),
    ("household_status", "户籍状态", "Household status"),
    ("deceased_on", "死亡日期", "Died on"),
    ("entity_type", "类型", "Type"),
    ("industry", "行业", "Industry"),
    ("founded", "成立日期", "Founded"),
    ("legal_rep", "法定代表人", "Legal representative"),
    ("address_key", "地址键", "Address key"),
    ("results", "结果", "Results"),
    (
        "no_results",
        "没有您可见的结果。",
        "No results you may see.",
    ),
    (
        "truncated",
        "结果较多，仅显示前 20 条。",
        "More results than shown; only the first 20.",
    ),
    ("field", "字段", "Field"),
    ("value", "值", "Value"),
    ("source", "来源", "Source"),
    ("date", "日期", "Date"),
    ("class", "共享类别", "Sharing class"),
    ("masked", "已脱敏", "masked"),
    ("withheld", "不予显示", "withheld"),
    ("served_under", "本次查看依据的授权", "Served under"),
    (
        "no_grant",
        "无授权：有条件共享字段已脱敏。",
        "No grant: conditional fields are masked.",
    ),
    ("links", "关联记录", "Linked records"),
    ("relation", "关系", "Relation"),
    ("accesses", "谁查看了我的数据", "Who read my data"),
    ("when", "时间", "When"),
    ("role", "角色", "Role"),
    ("purpose", "用途", "Purpose"),
    ("fields", "字段", "Fields"),
    (
        "no_accesses",
        "尚无他人查看。",
        "Nobody else has read it yet.",
    ),
    ("resource", "资源", "Resource"),
    ("legal_basis", "法律依据", "Legal basis"),
    ("scope", "范围", "Scope"),
    ("until", "有效期至", "Valid until"),
    ("quota", "每日限额", "Daily quota"),
    ("status", "状态", "Status"),
    ("request", "提交申请", "Request"),
    ("days", "天数", "Days"),
    ("approve", "批准", "Approve"),
    ("reject", "驳回", "Reject"),
    ("reason", "理由", "Reason"),
    (
        "chain_ok",
        "哈希链与签名检查点完整。",
        "Hash chain and signed checkpoints intact.",
    ),
    (
        "chain_bad",
        "审计日志被改动：",
        "The audit log has been tampered with:",
    ),
    ("entries", "条记录", "entries"),
    (
        "unsealed",
        "条在最近检查点之后",
        "after the last checkpoint",
    ),
    ("recent", "最近记录", "Recent entries"),
    ("actor", "操作者", "Actor"),
    ("action", "操作", "Action"),
    ("subject", "对象", "Subject"),
    ("jurisdiction", "辖区", "Jurisdiction"),
    ("entities", "法人", "entities"),
    ("persons", "在世人员", "living persons"),
    ("unplaced", "未能定位", "not placed"),
    ("deceased", "已故", "deceased"),
    ("computed_in", "统计耗时", "computed in"),
    ("quality", "数据质量", "Data quality"),
    ("alerts", "异常告警", "Alerts"),
    ("catalogue", "资源目录", "Catalogue"),
    ("delivered", "交付", "Delivered"),
    ("current", "现行", "Current"),
    ("quarantined", "隔离", "Quarantined"),
    ("uniqueness", "主键唯一", "Key uniqueness"),
    ("completeness", "完整性", "Completeness"),
    ("validity", "有效性", "Validity"),
    ("fresh", "及时", "Fresh"),
    ("stale", "过期", "Stale"),
    ("top_issues", "主要问题", "Top issues"),
    ("examples", "示例", "Examples"),
    (
        "held_records",
        "隔离记录及原因",
        "Quarantined records and their reasons",
    ),
    ("location", "位置", "Location"),
    ("raw", "原始值", "Raw value"),
    (
        "no_alerts",
        "近七天无告警。",
        "No alerts in the last seven days.",
    ),
    ("kind", "类型", "Kind"),
    ("provider", "提供方", "Provider"),
    ("frequency", "更新频率", "Update frequency"),
    ("last_update", "最近更新", "Last update"),
    ("shared_share", "可共享字段占比", "Fields shared"),
    ("sensitivity", "敏感级别", "Sensitivity"),
    ("column", "列", "Column"),
    ("count", "数量", "Count"),
    ("severity", "级别", "Severity"),
    // Messages and notices of the console's own pages. An error from the policy or the API
    // beneath keeps its own (English) detail after one of these leads.
    (
        "console_off",
        "本服务器未开启控制台。",
        "The console is off on this server.",
    ),
    (
        "not_in_jurisdiction",
        "您的管辖范围内没有这条记录：",
        "No such record within your jurisdiction:",
    ),
    (
        "citizens_only_page",
        "此页面向公民本人展示其数据，请以该公民身份登录。",
        "This page shows a citizen their own record; sign in as the citizen.",
    ),
    (
        "grants_for_departments",
        "共享申请与授权面向部门用户。",
        "Requests and grants are for departments.",
    ),
    (
        "admins_only",
        "此页面仅限数据局管理员。",
        "This page is for the data bureau's admins.",
    ),
    ("page_not_found", "没有这个页面：", "No such page:"),
    ("request_failed", "未能完成：", "This could not be done:"),
    (
        "request_incomplete",
        "申请表不完整：每一项都需要填写。",
        "The request form is incomplete: every field is needed.",
    ),
    (
        "request_filed",
        "申请已提交，等待提供方审核：",
        "Request filed; it waits for the provider's decision:",
    ),
    (
        "say_approve",
        "请选择批准或驳回。",
        "Say approve or reject.",
    ),
    ("approved", "已批准：", "Approved:"),
    ("rejected", "已驳回：", "Rejected:"),
    (
        "search_unseen",
        "查询只返回您有权查看其查询字段的人员和地点。以下字段没有覆盖它的有效授权，按它查询查不到任何人：",
        "A search returns only people and places whose searched fields you may see. No active grant covers these fields, so a search by them finds no one:",
    ),
];

/// One label in `lang`, for messages made in code; a key that is not in the table is given back
/// as it is (a programming slip shows as the key, not as an empty page).
pub fn label(lang: &str, key: &'static str) -> &'static str {
    LABELS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or(key, |(_, zh, en)| if lang == "en" { *en } else { *zh })
}

/// The labels of `lang` ("zh" or "en").
pub fn labels(lang: &str) -> BTreeMap<&'static str, &'static str> {
    LABELS
        .iter()
        .map(|(k, zh, en)| (*k, if lang == "en" { *en } else { *zh }))
        .collect()
}
