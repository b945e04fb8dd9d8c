//! Found / not-found tests for every built-in detector. Secrets are generated at test time from
//! random characters of the right alphabet and length; prefixes are assembled from parts so
//! that no token-shaped literal exists in the source.

use crate::testgen::*;
use crate::{Detectors, builtin_specs, redact};

/// Concatenates parts (keeps token prefixes out of the source as whole literals).
fn cat(parts: &[&str]) -> String {
    parts.concat()
}

struct T {
    d: Detectors,
    rng: std::cell::RefCell<Rng>,
    seed: u64,
}

impl T {
    fn new() -> T {
        let rng = Rng::from_env();
        T {
            d: Detectors::builtin(),
            seed: rng.seed(),
            rng: std::cell::RefCell::new(rng),
        }
    }

    fn s(&self, alphabet: &[u8], len: usize) -> String {
        self.rng.borrow_mut().string(alphabet, len)
    }

    fn below(&self, n: usize) -> usize {
        self.rng.borrow_mut().below(n)
    }

    /// `text` has exactly one finding, by `id`, covering exactly `secret`.
    fn found(&self, id: &str, text: &str, secret: &str) {
        let seed = self.seed;
        let f = self.d.scan(text.as_bytes());
        assert_eq!(f.len(), 1, "seed {seed}: {id}: {text:?} -> {f:?}");
        assert_eq!(f[0].detector, id, "seed {seed}: {text:?}");
        assert_eq!(
            &text[f[0].start..f[0].end],
            secret,
            "seed {seed}: {id}: wrong span in {text:?}"
        );
        let red = String::from_utf8(redact(text.as_bytes(), &f)).expect("utf8");
        assert!(!red.contains(secret), "seed {seed}: {red}");
        assert!(red.contains("REDACTED_BY_POLICY"));
    }

    fn none(&self, text: &str) {
        let f = self.d.scan(text.as_bytes());
        assert!(
            f.is_empty(),
            "seed {}: expected nothing in {text:?}, got {:?}",
            self.seed,
            f.iter()
                .map(|x| (x.detector, &text[x.start..x.end]))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn every_builtin_compiles_and_has_a_test_below() {
    let d = Detectors::builtin();
    assert_eq!(d.len(), builtin_specs().len());
    // Built-ins compile lazily: the eager path proves each one compiles.
    assert!(Detectors::from_specs(&builtin_specs()).is_ok());
    let src = include_str!("detector_tests.rs");
    for spec in builtin_specs() {
        assert!(!spec.keywords.is_empty(), "{} has no keywords", spec.id);
        let needle = format!("\"{}\"", spec.id);
        assert!(src.contains(&needle), "no test for {}", spec.id);
    }
}

#[test]
fn aws() {
    let t = T::new();
    let id = cat(&["AK", "IA", &t.s(UPPER_B32, 16)]);
    t.found(
        "aws-access-key-id",
        &format!("aws_access_key_id = {id}\n"),
        &id,
    );
    let sts = cat(&["AS", "IA", &t.s(UPPER_B32, 16)]);
    t.found(
        "aws-access-key-id",
        &format!("\"AccessKeyId\": \"{sts}\""),
        &sts,
    );
    t.none(&format!("AK{}{}", "IA", t.s(UPPER_B32, 15)));
    t.none(&format!("XAK{}{}", "IA", t.s(UPPER_B32, 16)));
    t.none(&format!("AK{}{}9", "IA", t.s(UPPER_B32, 16)));
    t.none("AKIAIOSFODNN7EXAMPLE");

    let key = t.s(B64, 40);
    let text = format!("[default]\naws_secret_access_key = {key}\n");
    t.found("aws-secret-access-key", &text, &key);
    let text = format!("{{\"SecretAccessKey\": \"{key}\"}}");
    t.found("aws-secret-access-key", &text, &key);
    // 40 base64 characters with no AWS context are not flagged.
    t.none(&format!("checksum: {}\n", t.s(B64, 40)));
    // Too short to be a secret key, and too low in entropy for the generic detector.
    t.none("aws_secret_access_key = abc\n");
    t.none("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n");
}

#[test]
fn gcp() {
    let t = T::new();
    let k = cat(&["AI", "za", &t.s(URLSAFE, 35)]);
    t.found("gcp-api-key", &format!("const key = '{k}';"), &k);
    t.none(&format!("AI{}{}", "za", t.s(URLSAFE, 30)));
    t.none(&format!("AI{}{}", "za", t.s(URLSAFE, 36)));

    let body: Vec<String> = (0..4).map(|_| t.s(B64, 64)).collect();
    let pem = format!(
        "-----BEGIN {}-----\\n{}\\n-----END {}-----",
        "PRIVATE KEY",
        body.join("\\n"),
        "PRIVATE KEY"
    );
    let json = format!(
        "{{\n  \"type\": \"service_account\",\n  \"private_key\": \"{pem}\\n\",\n  \"client_email\": \"a@b.iam.gserviceaccount.com\"\n}}"
    );
    t.found("gcp-service-account-key", &json, &pem);
    // The same JSON shape with a non-key value, or a key too short to be one.
    t.none("{\"private_key\": \"see the vault\"}");
    t.none("{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\nabc\\n-----END PRIVATE KEY-----\"}");
}

#[test]
fn azure() {
    let t = T::new();
    let key = format!("{}==", t.s(B64, 86));
    let cs = format!(
        "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={key};EndpointSuffix=core.windows.net"
    );
    t.found("azure-storage-account-key", &cs, &key);
    t.none("AccountKey=short==;");

    let sak = format!("{}=", t.s(B64, 43));
    let sb = format!(
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={sak}"
    );
    t.found("azure-shared-access-key", &sb, &sak);
    t.none("SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=");

    let sig = format!("{}%3D", t.s(ALNUM, 43));
    let url = format!("https://a.blob.core.windows.net/c/b?sv=2022-11-02&se=2030-01-01&sig={sig}");
    t.found("azure-sas-signature", &url, &sig);
    t.none("https://example.org/?sig=abc");

    let cs2 = format!("{}{}Q~{}", t.s(ALNUM, 3), t.below(10), t.s(ALNUM, 32));
    t.found(
        "azure-ad-client-secret",
        &format!("client_secret_az = \"{cs2}\""),
        &cs2,
    );
    t.none("a path like foo~bar and 7Q~x");
}

#[test]
fn github() {
    let t = T::new();
    for (id, pre) in [
        ("github-pat", "p"),
        ("github-oauth", "o"),
        ("github-app-token", "u"),
        ("github-app-token", "s"),
        ("github-refresh-token", "r"),
    ] {
        let tok = cat(&["gh", pre, "_", &t.s(ALNUM, 36)]);
        t.found(id, &format!("GH_CRED: {tok}\n"), &tok);
        t.none(&cat(&["gh", pre, "_", &t.s(ALNUM, 30)]));
        t.none(&cat(&["gh", pre, "_", &t.s(ALNUM, 37), "_x"]));
    }
    let fg = cat(&["github", "_pat_", &t.s(ALNUM, 22), "_", &t.s(ALNUM, 59)]);
    t.found("github-fine-grained-pat", &format!("\"{fg}\""), &fg);
    t.none(&cat(&["github", "_pat_", &t.s(ALNUM, 40)]));
    t.none("ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

#[test]
fn gitlab() {
    let t = T::new();
    let tok = cat(&["gl", "pat-", &t.s(URLSAFE, 20)]);
    t.found("gitlab-pat", &format!("CI_TOKEN_X: {tok}\n"), &tok);
    let routable = cat(&["gl", "pat-", &t.s(ALNUM, 27), ".01.", &t.s(LOWER_HEX, 9)]);
    t.found("gitlab-pat", &format!("x {routable} y"), &routable);
    t.none(&cat(&["gl", "pat-", &t.s(ALNUM, 12)]));
    let dt = cat(&["gl", "dt-", &t.s(ALNUM, 20)]);
    t.found("gitlab-token", &format!("deploy: {dt}"), &dt);
    let rr = cat(&["GR", "1348941", &t.s(ALNUM, 20)]);
    t.found("gitlab-token", &format!("reg {rr}\n"), &rr);
    t.none(&cat(&["gl", "dt-", &t.s(ALNUM, 10)]));
    t.none("the gldt- prefix marks deploy tokens");
}

#[test]
fn slack() {
    let t = T::new();
    let bot = cat(&[
        "xo",
        "xb-",
        &t.s(DIGITS, 12),
        "-",
        &t.s(DIGITS, 13),
        "-",
        &t.s(ALNUM, 24),
    ]);
    t.found("slack-bot-token", &format!("SLACK_BOT={bot}\n"), &bot);
    let user = cat(&[
        "xo",
        "xp-",
        &t.s(DIGITS, 11),
        "-",
        &t.s(DIGITS, 11),
        "-",
        &t.s(DIGITS, 12),
        "-",
        &t.s(LOWER_HEX, 32),
    ]);
    t.found("slack-user-token", &format!("'{user}'"), &user);
    let legacy = cat(&["xo", "xa-", &t.s(DIGITS, 1), "-", &t.s(ALNUM, 30)]);
    t.found("slack-token", &format!("{legacy} "), &legacy);
    let app = cat(&[
        "xa",
        "pp-1-A",
        &t.s(UPPER_NUM, 10),
        "-",
        &t.s(DIGITS, 13),
        "-",
        &t.s(LOWER_HEX, 64),
    ]);
    t.found("slack-app-token", &format!("app={app}"), &app);
    let cfg = cat(&["xo", "xe.xo", "xp-1-", &t.s(UPPER_NUM, 160)]);
    t.found("slack-config-token", &format!("{cfg}\n"), &cfg);
    let path = format!(
        "T{}/B{}/{}",
        t.s(UPPER_NUM, 8),
        t.s(UPPER_NUM, 10),
        t.s(ALNUM, 24)
    );
    let hook = format!("https://hooks.{}.com/services/{path}", "slack");
    t.found("slack-webhook-url", &format!("url: {hook}\n"), &path);
    t.none("xoxb-1234");
    t.none("xoxp-12345678-short");
    t.none("xoxa-abc");
    t.none("xapp-token");
    t.none(&cat(&["xo", "xe.xo", "xp-1-", &t.s(UPPER_NUM, 40)]));
    t.none("see https://hooks.slack.com/services/ for docs");
}

#[test]
fn stripe() {
    let t = T::new();
    for pre in ["sk_live_", "rk_live_", "sk_test_"] {
        let k = cat(&[&pre[..1], &pre[1..], &t.s(ALNUM, 24)]);
        t.found("stripe-secret-key", &format!("STRIPE_KEY_X: {k}"), &k);
    }
    let wh = cat(&["wh", "sec_", &t.s(ALNUM, 32)]);
    t.found("stripe-webhook-secret", &format!("signing {wh}."), &wh);
    t.none("pk_live_abcdefghijklmnop1234");
    t.none("sk_live_short");
    t.none(&cat(&["wh", "sec_", &t.s(ALNUM, 10)]));
}

#[test]
fn ai_vendors() {
    let t = T::new();
    let legacy = cat(&["sk-", &t.s(ALNUM, 20), "T3Blbk", "FJ", &t.s(ALNUM, 20)]);
    t.found(
        "openai-api-key",
        &format!("openai.api_key_x = '{legacy}'"),
        &legacy,
    );
    let proj = cat(&[
        "sk-",
        "proj-",
        &t.s(URLSAFE, 74),
        "T3Blbk",
        "FJ",
        &t.s(URLSAFE, 74),
    ]);
    t.found("openai-api-key", &format!("{proj}\n"), &proj);
    let proj2 = cat(&["sk-", "proj-", &t.s(URLSAFE, 100)]);
    t.found("openai-project-key", &format!("KEY_X: \"{proj2}\""), &proj2);
    t.none("sk-proj-abc");
    t.none("task-runner disk-usage sk-learn");

    let ant = cat(&["sk-", "ant-", "api03-", &t.s(URLSAFE, 93), "AA"]);
    t.found(
        "anthropic-api-key",
        &format!("ANTHROPIC_KEY_X: {ant}\n"),
        &ant,
    );
    let oat = cat(&["sk-", "ant-", "oat01-", &t.s(URLSAFE, 80)]);
    t.found("anthropic-api-key", &format!("'{oat}'"), &oat);
    t.none("sk-ant-api03-short");

    let hf = cat(&["h", "f_", &t.s(LETTERS, 34)]);
    t.found("huggingface-token", &format!("HF_HUB_X={hf}\n"), &hf);
    t.none(&cat(&["h", "f_", &t.s(LETTERS, 20)]));
    t.none("self.hf_model_loader_for_pretrained_x = 1");
}

#[test]
fn hosting_and_registries() {
    let t = T::new();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        t.s(LOWER_HEX, 8),
        t.s(LOWER_HEX, 4),
        t.s(LOWER_HEX, 4),
        t.s(LOWER_HEX, 4),
        t.s(LOWER_HEX, 12)
    );
    t.found("railway-token", &format!("RAILWAY_TOKEN={uuid}\n"), &uuid);
    t.found(
        "heroku-api-key-legacy",
        &format!("HEROKU_API_KEY: {uuid}\n"),
        &uuid,
    );
    // A UUID alone is a request id, not a secret.
    t.none(&format!("request_id={uuid}\n"));

    let v = t.s(ALNUM, 24);
    t.found("vercel-token", &format!("VERCEL_TOKEN=\"{v}\""), &v);
    t.none(&format!("vercel_project_id = \"{}\"", t.s(ALNUM, 24)));
    let n = t.s(URLSAFE, 43);
    t.found("netlify-token", &format!("NETLIFY_AUTH_TOKEN={n}\n"), &n);
    t.none(&format!("NETLIFY_SITE_ID={}\n", t.s(URLSAFE, 43)));

    let fo = cat(&["fo", "1_", &t.s(URLSAFE, 43)]);
    t.found("flyio-token", &format!("{fo}\n"), &fo);
    let fm = cat(&["fm", "2_", &t.s(B64, 120)]);
    t.found("flyio-token", &format!("FlyV1 {fm}"), &fm);
    t.none(&cat(&["fo", "1_", &t.s(URLSAFE, 20)]));
    t.none(&cat(&["fm", "2_", &t.s(B64, 50)]));

    let hk = cat(&["HR", "KU-AA", &t.s(URLSAFE, 58)]);
    t.found("heroku-api-key", &format!("'{hk}'"), &hk);
    t.none(&cat(&["HR", "KU-AA", &t.s(URLSAFE, 20)]));

    let sb = cat(&["sb", "p_", &t.s(LOWER_HEX, 40)]);
    t.found("supabase-token", &format!("SUPA={sb}\n"), &sb);
    let sbs = cat(&["sb_", "secret_", &t.s(URLSAFE, 32)]);
    t.found("supabase-token", &format!("x {sbs} y"), &sbs);
    t.none(&cat(&["sb", "p_", &t.s(ALNUM, 40)]));
    t.none("sb_publishable_abcdefghijklmnopqrstuvwx");

    let dop = cat(&["do", "p_v1_", &t.s(LOWER_HEX, 64)]);
    t.found("digitalocean-token", &format!("DO={dop}"), &dop);
    t.none(&cat(&["do", "p_v1_", &t.s(LOWER_HEX, 63)]));

    let npm = cat(&["np", "m_", &t.s(ALNUM, 36)]);
    t.found(
        "npm-access-token",
        &format!("//registry.npmjs.org/:_authToken_x {npm}\n"),
        &npm,
    );
    t.none("npm_config_cache=/tmp");

    let pypi = cat(&["py", "pi-AgE", "IcHlwaS5vcmc", &t.s(URLSAFE, 150)]);
    t.found("pypi-upload-token", &format!("password_x {pypi}\n"), &pypi);
    t.none("pypi-AgEshort");
}

#[test]
fn jwt() {
    let t = T::new();
    let jwt = cat(&[
        "ey",
        "J",
        &t.s(URLSAFE, 30),
        ".",
        "ey",
        "J",
        &t.s(URLSAFE, 80),
        ".",
        &t.s(URLSAFE, 43),
    ]);
    t.found("jwt", &format!("Cookie: session={jwt}; Path=/"), &jwt);
    // Two segments only, or a segment too short: not a signed JWT.
    t.none(&cat(&[
        "ey",
        "J",
        &t.s(URLSAFE, 30),
        ".",
        "ey",
        "J",
        &t.s(URLSAFE, 30),
    ]));
    t.none("eyJhbGciOi.eyJ.sig");
}

#[test]
fn pem_private_key_blocks() {
    let t = T::new();
    let body: Vec<String> = (0..6).map(|_| t.s(B64, 64)).collect();
    for kind in ["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "] {
        let block = format!(
            "-----BEGIN {kind}{pk}-----\n{}\n{}==\n-----END {kind}{pk}-----",
            body.join("\n"),
            t.s(B64, 20),
            pk = "PRIVATE KEY"
        );
        let text = format!("before\n{block}\nafter\n");
        t.found("private-key", &text, &block);
        let red =
            String::from_utf8(redact(text.as_bytes(), &t.d.scan(text.as_bytes()))).expect("utf8");
        assert_eq!(red, "before\nREDACTED_BY_POLICY\nafter\n");
    }
    // CRLF line endings and encrypted-PEM headers are part of the block.
    let block = format!(
        "-----BEGIN RSA {pk}-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-128-CBC,{}\r\n\r\n{}\r\n-----END RSA {pk}-----",
        t.s(LOWER_HEX, 32).to_uppercase(),
        t.s(B64, 64),
        pk = "PRIVATE KEY"
    );
    t.found("private-key", &format!("{block}\r\n"), &block);
    // A truncated block (no END) is redacted to the end of the buffer.
    let trunc = format!(
        "-----BEGIN {}-----\n{}\n{}",
        "PRIVATE KEY",
        t.s(B64, 64),
        t.s(B64, 30)
    );
    t.found("private-key", &format!("x\n{trunc}"), &trunc);
    // Code that only mentions the markers is not a key.
    t.none("if line == \"-----BEGIN RSA PRIVATE KEY-----\" { parse(); }\n");
    t.none("-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n");
    t.none("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n");
}

#[test]
fn url_passwords_only_the_password_is_redacted() {
    let t = T::new();
    let pw = format!("{}!{}", t.s(ALNUM, 10), t.s(ALNUM, 5));
    let text = format!("DATABASE_URL=postgres://app_user:{pw}@db.internal:5432/app\n");
    t.found("url-password", &text, &pw);
    let red = String::from_utf8(redact(text.as_bytes(), &t.d.scan(text.as_bytes()))).expect("utf8");
    assert_eq!(
        red,
        "DATABASE_URL=postgres://app_user:REDACTED_BY_POLICY@db.internal:5432/app\n"
    );
    let pw2 = t.s(ALNUM, 12);
    t.found(
        "url-password",
        &format!("amqp://guest1:{pw2}@[::1]:5672/"),
        &pw2,
    );
    // Weak but real passwords are still passwords: no entropy floor here.
    t.found(
        "url-password",
        "redis://default:hunter22@cache:6379",
        "hunter22",
    );
    t.none("https://github.com/org/repo");
    t.none("ssh://git@github.com/org/repo.git");
    t.none("postgres://user:password@localhost/db");
    t.none("postgres://user:${DB_PASSWORD}@localhost/db");
    t.none("https://user:<password>@host/");
    t.none("format!(\"postgres://{user}:{pw}@{host}/db\")");
    t.none("mailto:someone@example.org");
}

#[test]
fn auth_headers() {
    let t = T::new();
    let tok = t.s(URLSAFE, 40);
    t.found(
        "bearer-token",
        &format!("curl -H 'Authorization: Bearer {tok}' https://api.x"),
        &tok,
    );
    t.none("Authorization: Bearer <token>");
    t.none("Authorization: Bearer $TOKEN");
    t.none("the bearer of this message");
    let basic = t.s(B64, 24);
    t.found(
        "http-basic-auth",
        &format!("Authorization: Basic {basic}\r\n"),
        &basic,
    );
    t.none("Authorization: Basic");
    t.none("Authorization: Basic aaaaaaaaaaaa");
}

#[test]
fn generic_assignments() {
    let t = T::new();
    let v = format!("{}{}{}", t.s(ALNUM, 10), t.below(10), t.s(ALNUM, 10));
    for text in [
        format!("DB_PASSWORD={v}\n"),
        format!("password: {v}\n"),
        format!("  client_secret: \"{v}\"\n"),
        format!("token = '{v}'\n"),
        format!("{{\"api_key\": \"{v}\", \"x\": 1}}"),
        format!("[db]\npasswd = {v}\n"),
        format!("const apiKey = \"{v}\";"),
        format!("accessToken := \"{v}\""),
        format!("export SERVICE_TOKEN={v}"),
        format!("settings[\"secret\"] = \"{v}\""),
    ] {
        t.found("generic-secret-assignment", &text, &v);
    }
    for text in [
        "password = os.getenv(\"DB_PASSWORD\")",
        "token = tokenizer.next()",
        "api_key: process.env.API_KEY",
        "max_tokens = 4096",
        "token_count: 1234567890",
        "password_hash = bcrypt(pw)",
        "secret_name: my-secret",
        "token: ${{ secrets.GITHUB_TOKEN }}",
        "API_KEY=$API_KEY",
        "password: \"changeme\"",
        "password = \"your-password-here\"",
        "if password == \"letmein123\" {",
        "def login(password: str, token: Optional[str]) -> None:",
        "secret: Secret = Secret::new(value)",
        "TOKENIZERS_PARALLELISM=false",
        "auth_token_url: https://oauth2.example.org/token",
        "password:\n  from_env: DB_PW",
        "token = \"abcdefg\"",
        "        colon2_token: node.colon2_token,",
    ] {
        t.none(text);
    }
}

#[test]
fn many_secrets_in_one_file_are_all_redacted() {
    let t = T::new();
    let gh = cat(&["gh", "p_", &t.s(ALNUM, 36)]);
    let npm = cat(&["np", "m_", &t.s(ALNUM, 36)]);
    let pw = format!("{}3{}", t.s(ALNUM, 10), t.s(ALNUM, 10));
    let text = format!("A={gh}\nB={npm}\nDB_PASSWORD={pw}\n");
    let f = t.d.scan(text.as_bytes());
    let red = String::from_utf8(redact(text.as_bytes(), &f)).expect("utf8");
    for s in [&gh, &npm, &pw] {
        assert!(!red.contains(s.as_str()), "seed {}: {red}", t.seed);
    }
    assert_eq!(red.matches("REDACTED_BY_POLICY").count(), 3, "{red}");
    for w in f.windows(2) {
        assert!(w[0].end <= w[1].start, "sorted, non-overlapping");
    }
}

#[test]
fn redaction_is_idempotent() {
    let t = T::new();
    let gh = cat(&["gh", "p_", &t.s(ALNUM, 36)]);
    let text = format!(
        "token: {gh}\npassword = {}9{}\n",
        t.s(ALNUM, 10),
        t.s(ALNUM, 10)
    );
    let first = t.d.scan(text.as_bytes());
    assert_eq!(first.len(), 2, "seed {}", t.seed);
    let once = redact(text.as_bytes(), &first);
    assert!(
        t.d.scan(&once).is_empty(),
        "{}",
        String::from_utf8_lossy(&once)
    );
}
