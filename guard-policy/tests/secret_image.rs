//! The compiled ruleset carries the secret detector set precompiled (guard-secrets'
//! detector image), equal to what libguard would otherwise build from the ruleset.

use guard_policy::{CompileContext, Policy};
use guard_proto::Ruleset;
use guard_secrets::Detectors;

fn default_ruleset() -> &'static [u8] {
    let policy = Policy::default_policy().expect("default policy loads");
    policy
        .compile(&CompileContext::canonical())
        .expect("default policy compiles")
        .leak()
}

#[test]
fn default_ruleset_has_the_runtime_detector_set_as_image() {
    let bytes = default_ruleset();
    let rs = Ruleset::load(bytes).expect("loads");
    let runtime = Detectors::from_ruleset(&rs);
    assert!(!rs.secret_image().is_empty(), "image stored");
    assert_eq!(rs.secret_image(), runtime.to_image().as_slice());
    let mapped = Detectors::for_ruleset(&rs);
    assert_eq!(
        mapped.ids().collect::<Vec<_>>(),
        runtime.ids().collect::<Vec<_>>()
    );
    let text = [
        "let x = 1; // no keyword\n",
        "GITHUB=gh",
        "p_",
        "q7Zp2LmX9vRt4KwB8nYcq7Zp2LmX9vRt4KwB\n",
        "password = \"Q8z3m1x7k2Wq\"\n",
    ]
    .concat();
    let found = mapped.scan(text.as_bytes());
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found, runtime.scan(text.as_bytes()));
}

#[test]
fn a_ruleset_with_a_damaged_image_falls_back_to_building_the_set() {
    use guard_proto::ruleset::format::SEC_SECRET_IMAGE;
    use guard_proto::ruleset::writer::with_section;
    let bytes = default_ruleset();
    let rs = Ruleset::load(bytes).expect("loads");
    let mut image = rs.secret_image().to_vec();
    image[0] ^= 0x20; // the magic
    let damaged: &'static [u8] = with_section(bytes, SEC_SECRET_IMAGE, &image)
        .expect("resealed")
        .leak();
    let rs2 = Ruleset::load(damaged).expect("the ruleset itself is fine");
    assert!(Detectors::from_image(rs2.secret_image()).is_none());
    let d = Detectors::for_ruleset(&rs2);
    assert_eq!(d.len(), Detectors::from_ruleset(&rs).len());
    let token = ["np", "m_", "q7Zp2LmX9vRt4KwB8nYcq7Zp2LmX9vRt4KwB"].concat();
    assert_eq!(d.scan(token.as_bytes()).len(), 1);
}
