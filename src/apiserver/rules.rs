//! Which Kubernetes version's rules an apiserver follows, and the LIST delegation decision
//! (`cacher.go shouldDelegateList`, k8s-cacher-protocol.md §2.7; unit-test case 9).

use super::api::{ContinueToken, Rv, RvMatch};
pub use crate::scenario::Rules;

/// True when a LIST must be served by etcd rather than the watch cache.
pub fn should_delegate_list(
    rules: Rules,
    consistent_list_from_cache: bool,
    rv: Rv,
    rv_match: Option<RvMatch>,
    limit: u64,
    continue_token: Option<&ContinueToken>,
) -> bool {
    if continue_token.is_some() {
        return true;
    }
    match rules {
        Rules::V1_27 => {
            rv == Rv::Unset
                || (limit > 0 && rv != Rv::Zero)
                || rv_match.is_some_and(|m| m != RvMatch::NotOlderThan)
        }
        Rules::V1_31 | Rules::V1_34 | Rules::V1_37 => {
            (rv == Rv::Unset && !consistent_list_from_cache)
                || (limit > 0 && rv_match.is_none() && matches!(rv, Rv::At(_)))
                || rv_match.is_some_and(|m| m != RvMatch::NotOlderThan)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::etcd::Key;

    /// k8s-unit-test-expectations.md case 9 (`TestGetListCacheBypass`), 1.31+ rows, gate on and off.
    #[test]
    fn delegation_matrix_1_31() {
        let tok = ContinueToken {
            rv: 1,
            start_after: Key::new("/a"),
            base: Key::new("/"),
        };
        let d = |rv, m, limit, c: Option<&ContinueToken>, gate| {
            should_delegate_list(Rules::V1_31, gate, rv, m, limit, c)
        };
        for gate in [false, true] {
            assert!(!d(Rv::Zero, None, 0, None, gate));
            assert!(!d(Rv::At(1), None, 0, None, gate));
            for rv in [Rv::Unset, Rv::Zero, Rv::At(1)] {
                assert!(d(rv, None, 0, Some(&tok), gate), "continue goes to etcd");
                assert!(
                    d(rv, Some(RvMatch::Exact), 0, None, gate),
                    "Exact goes to etcd"
                );
            }
            assert!(!d(Rv::Zero, None, 500, None, gate));
            assert!(d(Rv::At(1), None, 500, None, gate), "legacy exact");
        }
        assert!(d(Rv::Unset, None, 0, None, false));
        assert!(!d(Rv::Unset, None, 0, None, true));
        assert!(d(Rv::Unset, None, 500, None, false));
        assert!(!d(Rv::Unset, None, 500, None, true));
    }

    #[test]
    fn delegation_1_27() {
        let d = |rv, limit| should_delegate_list(Rules::V1_27, false, rv, None, limit, None);
        assert!(d(Rv::Unset, 0));
        assert!(!d(Rv::Zero, 0));
        assert!(!d(Rv::Zero, 500));
        assert!(!d(Rv::At(5), 0));
        assert!(d(Rv::At(5), 500));
    }
}
