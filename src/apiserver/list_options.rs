//! The handler's ListOptions rules, applied to every LIST and WATCH before storage sees them
//! (`endpoints/handlers/get.go ListResource`): the WatchList defaulting
//! (`apimachinery internalversion/defaults.go SetListOptionsDefaults`) and the validation that
//! answers 422 Invalid (`internalversion/validation/validation.go ValidateListOptions`).

use super::api::{Rv, RvMatch};
use super::status::Status;

/// One `field.Forbidden` error of the validation, as `path: Forbidden: detail`.
fn forbidden(detail: &str) -> String {
    format!("resourceVersionMatch: Forbidden: {detail}")
}

/// The 422 of a failed validation: `ListOptions.meta.k8s.io "" is invalid: E` for one error,
/// `[E1, E2]` for several (`errors.NewInvalid` over an `ErrorList`); every error here is a
/// `field.Forbidden`, so the first cause is `FieldValueForbidden`.
fn invalid(errors: &[String]) -> Status {
    let body = if errors.len() == 1 {
        errors[0].clone()
    } else {
        format!("[{}]", errors.join(", "))
    };
    Status::invalid_list_options(format!("ListOptions.meta.k8s.io \"\" is invalid: {body}"))
}

/// `ValidateListOptions` for a LIST (watch = false). `continued`: the request carries a
/// continue token.
pub fn validate_list(rv: Rv, rv_match: Option<RvMatch>, continued: bool) -> Result<(), Status> {
    let Some(m) = rv_match else {
        return Ok(());
    };
    let mut errors = Vec::new();
    if rv == Rv::Unset {
        errors.push(forbidden(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    if continued {
        errors.push(forbidden(
            "resourceVersionMatch is forbidden when continue is provided",
        ));
    }
    if m == RvMatch::Exact && rv == Rv::Zero {
        errors.push(forbidden(
            "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid(&errors))
    }
}

/// `validateWatchOptions` with the WatchList gate off: a watch that sets `sendInitialEvents` is
/// refused (sent, as client-go sends it, with `resourceVersionMatch=NotOlderThan`).
pub fn watch_list_forbidden() -> Status {
    invalid(&[
        "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the \
               WatchList feature gate is enabled"
            .to_string(),
    ])
}

/// `SetListOptionsDefaults` for a WATCH: with the WatchList gate on, a watch with RV "" or "0"
/// and neither `sendInitialEvents` nor `resourceVersionMatch` becomes a streaming list
/// (`sendInitialEvents=true`, NotOlderThan). Returns the `sendInitialEvents` in force.
pub fn default_watch(
    watch_list_gate: bool,
    rv: Rv,
    send_initial_events: Option<bool>,
) -> Option<bool> {
    if watch_list_gate && send_initial_events.is_none() && matches!(rv, Rv::Unset | Rv::Zero) {
        Some(true)
    } else {
        send_initial_events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `validation_test.go TestValidateListOptions`: the forbidden combinations and their texts.
    #[test]
    fn list_validation_forbids_match_without_rv_with_continue_and_exact_zero() {
        assert!(validate_list(Rv::Unset, None, true).is_ok());
        assert!(validate_list(Rv::At(5), Some(RvMatch::Exact), false).is_ok());
        assert!(validate_list(Rv::Zero, Some(RvMatch::NotOlderThan), false).is_ok());
        let e = validate_list(Rv::Unset, Some(RvMatch::NotOlderThan), false).unwrap_err();
        assert_eq!(
            (e.code, e.reason, e.cause),
            (422, "Invalid", Some("FieldValueForbidden"))
        );
        assert_eq!(
            e.message,
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: \
             resourceVersionMatch is forbidden unless resourceVersion is provided"
        );
        let e = validate_list(Rv::Zero, Some(RvMatch::Exact), false).unwrap_err();
        assert!(
            e.message
                .ends_with("resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"")
        );
        let e = validate_list(Rv::Unset, Some(RvMatch::Exact), true).unwrap_err();
        assert_eq!(
            e.message,
            "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: \
             resourceVersionMatch is forbidden unless resourceVersion is provided, \
             resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue \
             is provided]"
        );
    }

    /// `defaults_test.go TestSetListOptionsDefaults`: only legacy RVs ("" and "0") without
    /// sendInitialEvents become streaming lists, and only with the gate on.
    #[test]
    fn watch_defaulting_turns_legacy_watches_into_streaming_lists() {
        assert_eq!(default_watch(true, Rv::Unset, None), Some(true));
        assert_eq!(default_watch(true, Rv::Zero, None), Some(true));
        assert_eq!(default_watch(true, Rv::At(3), None), None);
        assert_eq!(default_watch(true, Rv::Zero, Some(false)), Some(false));
        assert_eq!(default_watch(false, Rv::Unset, None), None);
    }
}
