//! `list-consistent`: a LIST with RV unset (a consistent read, KEP-2340) returns an RV at least
//! etcd's revision when the request was sent (so it reflects every write committed before it),
//! and all pages of one paginated LIST share one RV (`storage.PrepareContinueToken`). Checked for
//! reflectors (their LIST pages, and streaming lists' end bookmark) and for scripted `api.list`
//! steps (`continue = true` steps against the page before). O(1) per LIST reply.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::apiserver::Rv;
use crate::client::reflector::{Effects, Sent};
use crate::monitor::Checker;
use crate::monitor::invariants::Inv;
use crate::scenario::{Scenario, Step};

/// One reflector's LIST in flight.
#[derive(Debug, Clone, Default)]
pub struct ClientList {
    /// resourceVersion of the current LIST request.
    pub request: Option<Rv>,
    /// etcd's revision when an RV-unset LIST was sent.
    pub floor: Option<i64>,
    /// RV of its first page.
    pub first_rv: Option<i64>,
    /// etcd's revision when an RV-unset streaming list was sent.
    pub watch_list_floor: Option<i64>,
}

/// Scripted LISTs awaiting their results.
#[derive(Debug, Clone, Default)]
pub struct ScriptLists {
    floors: BTreeMap<usize, i64>,
    pages: BTreeMap<usize, i64>,
    last_list: BTreeMap<(u32, String), usize>,
}

fn result_rv(v: &Value) -> Option<i64> {
    v.get("resource_version")?.as_str()?.parse().ok()
}

impl Checker {
    pub(crate) fn client_list_step(
        &mut self,
        id: u32,
        label: &str,
        fx: &Effects,
        sent: Option<Sent>,
        etcd_rev: i64,
    ) {
        let i = id as usize;
        let mut found = None;
        let cl = &mut self.client_lists[i];
        match label {
            "list_page" | "listed" => {
                if let Some(rv) = self.cur.list_rv {
                    match cl.first_rv {
                        None => {
                            if let Some(f) = cl.floor
                                && rv < f
                            {
                                found = Some(format!(
                                    "client-{id}: a LIST with RV unset sent when etcd was at revision {f} returned RV {rv}"
                                ));
                            }
                            cl.first_rv = Some(rv);
                        }
                        Some(first) if first != rv => {
                            found = Some(format!(
                                "client-{id}: pages of one paginated LIST came at RV {first} and RV {rv}"
                            ));
                        }
                        Some(_) => {}
                    }
                }
            }
            "watch_list_synced" => {
                if let (Some(rv), Some(f)) = (fx.listed_rv, cl.watch_list_floor)
                    && rv < f
                {
                    found = Some(format!(
                        "client-{id}: a streaming list with RV unset sent when etcd was at revision {f} ended at RV {rv}"
                    ));
                }
            }
            _ => {}
        }
        if let Some(s) = sent {
            match s.kind {
                "list" => {
                    cl.request = Some(s.rv);
                    cl.floor = (s.rv == Rv::Unset).then_some(etcd_rev);
                    cl.first_rv = None;
                }
                "watch-list" => cl.watch_list_floor = (s.rv == Rv::Unset).then_some(etcd_rev),
                _ => {}
            }
        }
        if let Some(msg) = found {
            self.violate(Inv::ListConsistent, || msg);
        }
    }

    pub(crate) fn script_step_issued(
        &mut self,
        idx: usize,
        scenario: &Scenario,
        etcd_rev: i64,
        results: &[Option<Value>],
    ) {
        let Some(Step::ApiList {
            server,
            resource,
            resource_version,
            continue_,
            ..
        }) = scenario.steps.get(idx)
        else {
            return;
        };
        let key = (*server, resource.clone());
        if *continue_ {
            let prev = self.script.last_list.get(&key).copied();
            if let Some(Some(v)) = prev.and_then(|p| results.get(p))
                && v.get("continue")
                    .and_then(Value::as_str)
                    .is_some_and(|c| !c.is_empty())
                && let Some(rv) = result_rv(v)
            {
                self.script.pages.insert(idx, rv);
            }
        } else if resource_version.is_none() {
            self.script.floors.insert(idx, etcd_rev);
        }
        self.script.last_list.insert(key, idx);
    }

    pub(crate) fn script_results_arrived(
        &mut self,
        scenario: &Scenario,
        results: &[Option<Value>],
    ) {
        let mut found = Vec::new();
        let done: Vec<usize> = self
            .script
            .floors
            .keys()
            .chain(self.script.pages.keys())
            .copied()
            .filter(|i| results.get(*i).is_some_and(Option::is_some))
            .collect();
        for i in done {
            let got = results[i].as_ref().and_then(result_rv);
            let at = scenario.steps[i].at();
            if let (Some(f), Some(rv)) = (self.script.floors.remove(&i), got)
                && rv < f
            {
                found.push(format!(
                    "step {i} (api.list at {at}): a LIST with RV unset sent when etcd was at revision {f} returned RV {rv}"
                ));
            }
            if let (Some(first), Some(rv)) = (self.script.pages.remove(&i), got)
                && rv != first
            {
                found.push(format!(
                    "step {i} (api.list at {at}, continue): the page came at RV {rv}, the LIST's first page at RV {first}"
                ));
            }
        }
        for msg in found {
            self.violate(Inv::ListConsistent, || msg);
        }
    }
}
