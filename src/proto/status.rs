//! The `metav1.Status` errors kube-apiserver returns for watch-cache situations, with the exact
//! codes, reasons and messages (k8s-cacher-protocol.md §9; k8s-unit-test-expectations.md).

use serde::Serialize;

/// A Kubernetes API error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Status {
    /// HTTP code.
    pub code: u16,
    /// `reason`.
    pub reason: &'static str,
    /// `message`.
    pub message: String,
    /// `details.retryAfterSeconds` (also the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
    /// `details.causes[0].type`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
}

impl Status {
    fn new(code: u16, reason: &'static str, message: String) -> Self {
        Status {
            code,
            reason,
            message,
            retry_after_seconds: None,
            cause: None,
        }
    }

    /// 410: a watch from an RV older than the watch cache's window
    /// (`watch_cache.go getAllEventsSinceLocked`, `errors.NewResourceExpired`).
    pub fn too_old(rv: i64, oldest: i64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {rv} ({oldest})"),
        )
    }

    /// 504: the cache did not reach the RV within 3 s (`storage.NewTooLargeResourceVersionError`,
    /// wrapped by `NewTimeoutError`), cause `ResourceVersionTooLarge`, retry after 1 s.
    pub fn too_large(rv: i64, current: i64) -> Self {
        Status {
            retry_after_seconds: Some(1),
            cause: Some("ResourceVersionTooLarge"),
            ..Self::new(
                504,
                "Timeout",
                format!("Timeout: Too large resource version: {rv}, current: {current}"),
            )
        }
    }

    /// 504 from etcd3's NotOlderThan check (`validateMinimumResourceVersion`): no retry hint.
    pub fn too_large_from_etcd(rv: i64, current: i64) -> Self {
        Status {
            retry_after_seconds: None,
            ..Self::too_large(rv, current)
        }
    }

    /// 429 while a cache (re)initialises (1.31+ `ResilientWatchCacheInitialization`).
    pub fn reinitializing() -> Self {
        Status {
            retry_after_seconds: Some(1),
            ..Self::new(429, "TooManyRequests", "storage is (re)initializing".into())
        }
    }

    /// 429 while a cache (re)initialises, from 1.33: Retry-After `min(30, max(1, e^(0.06 s)))`
    /// truncated to whole seconds, `s` the seconds since the cache became not ready
    /// (`cacher/util.go calculateRetryAfterForUnreadyCache`; `util_test.go`: 14 s → 2, 30 s → 6,
    /// 40 s → 11, 540 s → 30).
    pub fn reinitializing_for(not_ready_ns: u64) -> Self {
        let seconds = not_ready_ns as f64 / 1e9;
        let retry = (0.06 * seconds).exp().clamp(1.0, 30.0) as u32;
        Status {
            retry_after_seconds: Some(retry),
            ..Self::reinitializing()
        }
    }
    /// 410: an etcd watch from a compacted revision (`etcd3/errors.go interpretWatchError`).
    pub fn watch_too_old_etcd() -> Self {
        Self::new(
            410,
            "Expired",
            "The resourceVersion for the provided watch is too old.".into(),
        )
    }

    /// 410: an etcd list at a compacted revision (`etcd3/errors.go`).
    pub fn list_too_old_etcd() -> Self {
        Self::new(
            410,
            "Expired",
            "The resourceVersion for the provided list is too old.".into(),
        )
    }

    /// 410: a continue token whose revision was compacted (`etcd3/errors.go
    /// handleCompactedErrorForPaging`): the `inconsistentContinue` text, whose Status also carries
    /// a new token at RV -1 (continue at the latest RV; not modelled: client-go's pager relists
    /// in full on a 410).
    pub fn continue_too_old() -> Self {
        Self::new(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. \
             You can start a new list without the continue parameter, or use the continue token \
             in this response to retrieve the remainder of the results. Continuing with the \
             provided token results in an inconsistent list - objects that were created, \
             modified, or deleted between the time the first chunk was returned and now may \
             show up in the list."
                .into(),
        )
    }

    /// 400: a continue token together with an explicit resource version.
    pub fn continue_with_rv() -> Self {
        Self::new(
            400,
            "BadRequest",
            "specifying resource version is not allowed when using continue".into(),
        )
    }

    /// 409 AlreadyExists on create.
    pub fn already_exists(resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{resource} \"{name}\" already exists"),
        )
    }

    /// 409 Conflict on an update or delete with a stale resourceVersion precondition.
    pub fn conflict(resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again"
            ),
        )
    }

    /// 404 NotFound.
    pub fn not_found(resource: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
    }

    /// 422: ListOptions that the handler's validation forbids (`ValidateListOptions`); every
    /// such error is a `field.Forbidden`, so the first cause is `FieldValueForbidden`.
    pub fn invalid_list_options(message: String) -> Self {
        Status {
            cause: Some("FieldValueForbidden"),
            ..Self::new(422, "Invalid", message)
        }
    }
    /// 503: the request's context ended while the cache was not ready (pre-1.31).
    pub fn unavailable(message: &str) -> Self {
        Self::new(503, "ServiceUnavailable", message.into())
    }

    /// 500 for an etcd error kube-apiserver passes through.
    pub fn internal(message: String) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// `errors.NewInternalError`: 500 "Internal error occurred: …", one cause (of no type) that
    /// carries the error's text.
    pub fn internal_error(err: &str) -> Self {
        Status {
            cause: Some(""),
            ..Self::new(
                500,
                "InternalError",
                format!("Internal error occurred: {err}"),
            )
        }
    }

    /// 500 for an error that is not an API status (`responsewriters.ErrorToAPIStatus`: reason
    /// unknown, the error's own text), e.g. etcd's future-revision error before 1.34.
    pub fn unknown(message: String) -> Self {
        Self::new(500, "", message)
    }

    /// 413 for an object over etcd's request limit.
    pub fn too_large_request(message: String) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cacher/util_test.go TestCalculateRetryAfterForUnreadyCache`.
    #[test]
    fn retry_after_of_an_unready_cache_grows_with_its_downtime() {
        let s = 1_000_000_000u64;
        for (downtime, retry) in [(0, 1), (14, 2), (30, 6), (40, 11), (540, 30)] {
            let st = Status::reinitializing_for(downtime * s);
            assert_eq!(st.retry_after_seconds, Some(retry), "{downtime} s");
            assert_eq!((st.code, st.reason), (429, "TooManyRequests"));
        }
    }
}
