//! The five decisions and their strictness order.

/// What happens to an action. The discriminant is the strictness: when several rules match, the
/// highest value wins (deny > ask > redact > audit > allow).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    Allow = 0,
    Audit = 1,
    Redact = 2,
    Ask = 3,
    Deny = 4,
}

impl Decision {
    pub const ALL: [Decision; 5] = [
        Decision::Allow,
        Decision::Audit,
        Decision::Redact,
        Decision::Ask,
        Decision::Deny,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Audit => "audit",
            Decision::Redact => "redact",
            Decision::Ask => "ask",
            Decision::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        Decision::ALL.into_iter().find(|d| d.as_str() == s)
    }

    pub const fn from_u8(v: u8) -> Option<Decision> {
        match v {
            0 => Some(Decision::Allow),
            1 => Some(Decision::Audit),
            2 => Some(Decision::Redact),
            3 => Some(Decision::Ask),
            4 => Some(Decision::Deny),
            _ => None,
        }
    }

    /// The stricter of two decisions.
    pub fn max_strict(self, other: Decision) -> Decision {
        if other > self { other } else { self }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictness_order_is_the_documented_one() {
        assert!(Decision::Deny > Decision::Ask);
        assert!(Decision::Ask > Decision::Redact);
        assert!(Decision::Redact > Decision::Audit);
        assert!(Decision::Audit > Decision::Allow);
        assert_eq!(Decision::Audit.max_strict(Decision::Ask), Decision::Ask);
        for d in Decision::ALL {
            assert_eq!(Decision::parse(d.as_str()), Some(d));
            assert_eq!(Decision::from_u8(d as u8), Some(d));
        }
        assert_eq!(Decision::parse("block"), None);
    }
}
