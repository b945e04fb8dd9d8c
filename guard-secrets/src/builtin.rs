//! The built-in detectors. `policies/packs/secrets.toml` states the same detectors in the
//! policy language; a test keeps the two identical.
//!
//! Token shapes (prefixes, alphabets, lengths) are public facts, read from vendor documentation
//! and from the MIT-licensed gitleaks rule set; the regexes are written here. Conventions:
//! - The capture group `secret` is what gets redacted: just the password of a URL, just the
//!   value of an assignment. Without it the whole match is the secret.
//! - A token whose alphabet ends in `-` cannot use `\b` as its right edge, so it ends with
//!   `(?:[^\w-]|\z)` outside the `secret` group instead; that way a longer run of token
//!   characters is never cut into a partial match.
//! - Contextual detectors (a vendor name near a UUID) and the generic assignment detector use
//!   an entropy floor; shaped tokens (`ghp_` + 36) do not need one.

use guard_proto::Decision;

use crate::SecretSpec;

struct B {
    id: &'static str,
    regex: &'static str,
    keywords: &'static [&'static str],
    entropy: Option<f64>,
}

const fn b(id: &'static str, regex: &'static str, keywords: &'static [&'static str]) -> B {
    B {
        id,
        regex,
        keywords,
        entropy: None,
    }
}

const fn be(
    id: &'static str,
    regex: &'static str,
    keywords: &'static [&'static str],
    entropy: f64,
) -> B {
    B {
        id,
        regex,
        keywords,
        entropy: Some(entropy),
    }
}

/// Order matters only for naming: when two detectors find the same span, the earlier id is
/// reported (specific before generic).
const BUILTIN: &[B] = &[
    // --- AWS
    b(
        "aws-access-key-id",
        r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}\b",
        &["AKIA", "ASIA", "ABIA", "ACCA", "A3T"],
    ),
    be(
        "aws-secret-access-key",
        r#"(?i)(?:secret[_.-]?access[_.-]?key|aws[_.-]?secret(?:[_.-]?key)?)["']?[ \t]*(?::=|=>|=|:)[ \t]*["'`]?(?P<secret>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|\z)"#,
        &[
            "secretaccesskey",
            "secret_access_key",
            "secret-access-key",
            "secret.access.key",
            "aws_secret",
            "aws-secret",
            "aws.secret",
            "awssecret",
        ],
        3.5,
    ),
    // --- Google Cloud
    b(
        "gcp-api-key",
        r"\b(?P<secret>AIza[\w-]{35})(?:[^\w-]|\z)",
        &["AIza"],
    ),
    b(
        "gcp-service-account-key",
        r#""private_key"[ \t]*:[ \t]*"(?P<secret>-----BEGIN[ A-Z]{0,20}PRIVATE KEY-----[^"]{32,}?-----END[ A-Z]{0,20}PRIVATE KEY-----)"#,
        &["\"private_key\""],
    ),
    // --- Azure
    b(
        "azure-storage-account-key",
        r#"(?i)(?:AccountKey|azure[_.-]?storage[_.-]?(?:account[_.-]?)?(?:access[_.-]?)?key)["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?(?P<secret>[A-Za-z0-9+/]{86}==)"#,
        &[
            "AccountKey",
            "azure_storage",
            "azure-storage",
            "azure.storage",
            "azurestorage",
        ],
    ),
    b(
        "azure-shared-access-key",
        r"(?i)SharedAccessKey[ \t]*=[ \t]*(?P<secret>[A-Za-z0-9+/]{43}=)",
        &["SharedAccessKey"],
    ),
    be(
        "azure-sas-signature",
        r"[?&;]sig=(?P<secret>[A-Za-z0-9%+/]{40,120})",
        &["sig="],
        3.5,
    ),
    be(
        "azure-ad-client-secret",
        r#"(?:\A|[\\'"`\s>=:(,)])(?P<secret>[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})(?:\z|[\\'"`\s<),])"#,
        &["Q~"],
        3.0,
    ),
    // --- GitHub
    b("github-pat", r"\bghp_[A-Za-z0-9]{36}\b", &["ghp_"]),
    b("github-oauth", r"\bgho_[A-Za-z0-9]{36}\b", &["gho_"]),
    b(
        "github-app-token",
        r"\b(?:ghu|ghs)_[A-Za-z0-9]{36}\b",
        &["ghu_", "ghs_"],
    ),
    b(
        "github-refresh-token",
        r"\bghr_[A-Za-z0-9]{36,76}\b",
        &["ghr_"],
    ),
    b(
        "github-fine-grained-pat",
        r"\bgithub_pat_\w{82}\b",
        &["github_pat_"],
    ),
    // --- GitLab
    b(
        "gitlab-pat",
        r"\b(?P<secret>glpat-[\w-]{20,300}(?:\.[0-9a-z]{2}[0-9a-z.]{7,12})?)(?:[^\w-]|\z)",
        &["glpat-"],
    ),
    b(
        "gitlab-token",
        r"\b(?P<secret>(?:gldt|glrt|glptt|glft|glsoat|glcbt|gloas|glimt|glagent|glwt)-[\w-]{20,300}|GR1348941[\w-]{20,300})(?:[^\w-]|\z)",
        &[
            "gldt-",
            "glrt-",
            "glptt-",
            "glft-",
            "glsoat-",
            "glcbt-",
            "gloas-",
            "glimt-",
            "glagent-",
            "glwt-",
            "GR1348941",
        ],
    ),
    // --- Slack
    b(
        "slack-bot-token",
        r"\b(?P<secret>xoxb-[0-9]{8,14}-[A-Za-z0-9-]{8,250})(?:[^A-Za-z0-9-]|\z)",
        &["xoxb-"],
    ),
    b(
        "slack-user-token",
        r"\b(?P<secret>xox[pe]-[0-9]{8,14}-[A-Za-z0-9-]{8,250})(?:[^A-Za-z0-9-]|\z)",
        &["xoxp-", "xoxe-"],
    ),
    b(
        "slack-token",
        r"\b(?P<secret>xox[aors]-[A-Za-z0-9-]{8,250})(?:[^A-Za-z0-9-]|\z)",
        &["xoxa-", "xoxo-", "xoxr-", "xoxs-"],
    ),
    b(
        "slack-app-token",
        r"(?i)\bxapp-[0-9]-[A-Z0-9]+-[0-9]+-[A-Z0-9]+\b",
        &["xapp-"],
    ),
    b(
        "slack-config-token",
        r"(?i)\bxoxe(?:\.xox[bp])?-[0-9]-[A-Z0-9]{100,200}\b",
        &["xoxe"],
    ),
    b(
        "slack-webhook-url",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9+/_-]{20,120})",
        &["hooks.slack.com"],
    ),
    // --- Stripe
    b(
        "stripe-secret-key",
        r"\b(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{10,247}\b",
        &[
            "sk_live_", "rk_live_", "sk_test_", "rk_test_", "sk_prod_", "rk_prod_",
        ],
    ),
    b(
        "stripe-webhook-secret",
        r"\bwhsec_[A-Za-z0-9]{24,64}\b",
        &["whsec_"],
    ),
    // --- AI vendors
    b(
        "openai-api-key",
        r"\b(?P<secret>sk-(?:(?:proj|svcacct|admin|None)-)?[\w-]{16,250}T3BlbkFJ[\w-]{16,250})(?:[^\w-]|\z)",
        &["T3BlbkFJ"],
    ),
    b(
        "openai-project-key",
        r"\b(?P<secret>sk-(?:proj|svcacct|admin)-[\w-]{40,250})(?:[^\w-]|\z)",
        &["sk-proj-", "sk-svcacct-", "sk-admin-"],
    ),
    b(
        "anthropic-api-key",
        r"\b(?P<secret>sk-ant-(?:api|admin|oat|ort|sid)[0-9]{2}-[\w-]{32,250})(?:[^\w-]|\z)",
        &["sk-ant-"],
    ),
    be(
        "huggingface-token",
        r"\b(?:hf_|api_org_)[A-Za-z]{34}\b",
        &["hf_", "api_org_"],
        3.0,
    ),
    // --- Hosting and package registries
    be(
        "railway-token",
        r#"(?i)railway[\w.-]{0,20}?(?:token|key)["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?(?P<secret>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"#,
        &["railway"],
        3.0,
    ),
    be(
        "vercel-token",
        r#"(?i)vercel[\w.-]{0,20}?(?:token|key)["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?(?P<secret>[A-Za-z0-9]{24})\b"#,
        &["vercel"],
        3.0,
    ),
    be(
        "netlify-token",
        r#"(?i)netlify[\w.-]{0,20}?(?:token|key)["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?(?P<secret>[\w-]{40,64})(?:[^\w-]|\z)"#,
        &["netlify"],
        3.0,
    ),
    b(
        "flyio-token",
        r"\b(?P<secret>fo1_[\w-]{43}|(?:fm1[ar]|fm2)_[A-Za-z0-9+/]{100,}={0,3})(?:[^\w+/=-]|\z)",
        &["fo1_", "fm1a_", "fm1r_", "fm2_"],
    ),
    b(
        "heroku-api-key",
        r"\b(?P<secret>HRKU-AA[\w-]{58})(?:[^\w-]|\z)",
        &["HRKU-AA"],
    ),
    be(
        "heroku-api-key-legacy",
        r#"(?i)heroku[\w.-]{0,20}?(?:token|key)["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?(?P<secret>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"#,
        &["heroku"],
        3.0,
    ),
    b(
        "supabase-token",
        r"\b(?P<secret>sbp_[a-f0-9]{40}|sb_secret_[\w-]{20,250})(?:[^\w-]|\z)",
        &["sbp_", "sb_secret_"],
    ),
    b(
        "digitalocean-token",
        r"\bdo[opr]_v1_[a-f0-9]{64}\b",
        &["dop_v1_", "doo_v1_", "dor_v1_"],
    ),
    b("npm-access-token", r"\bnpm_[A-Za-z0-9]{36}\b", &["npm_"]),
    b(
        "pypi-upload-token",
        r"\b(?P<secret>pypi-AgE[\w-]{50,1000})(?:[^\w-]|\z)",
        &["pypi-AgE"],
    ),
    // --- Generic shapes
    b(
        "jwt",
        r"\b(?P<secret>eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{10,})(?:[^\w-]|\z)",
        &["eyJ"],
    ),
    b(
        "private-key",
        r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s:,.-]|\\[rn]){32,}?(?:-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|\z)",
        &["PRIVATE KEY"],
    ),
    b(
        "url-password",
        r#"(?i)\b[a-z][a-z0-9+.-]{0,30}://[^\s:/@?#"'<>`]{1,128}:(?P<secret>[^\s/@?#"'<>`]{1,256})@[a-z0-9\[_-]"#,
        &["://"],
    ),
    be(
        "http-basic-auth",
        r"(?i)\bauthorization[ \t]*:[ \t]*basic[ \t]+(?P<secret>[A-Za-z0-9+/]{8,}={0,2})",
        &["authorization"],
        3.0,
    ),
    be(
        "bearer-token",
        r"(?i)\bbearer[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{20,}=*)",
        &["bearer"],
        3.5,
    ),
    // An assignment to a secret-named key (`password=`, `secret:`, `token =`,
    // `"api_key": "..."`): the key must END with the word (so `max_tokens`, `password_hash`,
    // `secret_name` are not flagged), the value must be one run of token characters that is
    // not followed by code (`(`, `[`, `.method`) and that mixes a letter with a digit or a
    // symbol (so identifiers and `${VAR}` references are not flagged), with enough entropy.
    be(
        "generic-secret-assignment",
        r#"(?i)(?:password|passwd|[_.-]pass|secret|token|api[_.-]?key|access[_.-]?key|private[_.-]?key|auth[_.-]?key)["']?\]?[ \t]*(?::=|=>|=|:)[ \t]*["'`]?(?P<secret>[a-z0-9!#$%&*+./=?@^_~-]*(?:[a-z][a-z0-9!#$%&*+./=?@^_~-]*[0-9!#$%&*+/?@^~]|[0-9!#$%&*+/?@^~][a-z0-9!#$%&*+./=?@^_~-]*[a-z])[a-z0-9!#$%&*+./=?@^_~-]*)(?:[\s"'`,;)\]}]|\z)"#,
        &[
            "password",
            "passwd",
            "_pass",
            "-pass",
            ".pass",
            "secret",
            "token",
            "api_key",
            "api-key",
            "api.key",
            "apikey",
            "access_key",
            "access-key",
            "access.key",
            "accesskey",
            "private_key",
            "private-key",
            "private.key",
            "privatekey",
            "auth_key",
            "auth-key",
            "auth.key",
            "authkey",
        ],
        3.0,
    ),
];

/// The built-in detectors as specs (decision `redact`), in the order `Detectors::builtin`
/// uses. `policies/packs/secrets.toml` restates exactly these.
pub fn builtin_specs() -> Vec<SecretSpec> {
    BUILTIN
        .iter()
        .map(|d| SecretSpec {
            id: d.id.to_string(),
            regex: d.regex.to_string(),
            keywords: d.keywords.iter().map(|k| k.to_string()).collect(),
            decision: Decision::Redact,
            min_entropy: d.entropy,
        })
        .collect()
}
