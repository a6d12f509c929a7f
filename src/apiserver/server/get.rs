//! GET of one object (`cacher/delegator.go CacheDelegator.Get`, `cacher.go Cacher.Get`): RV
//! unset reads etcd (a quorum read, "for backward compatibility"); with an RV, a ready cache
//! answers once it is at least that fresh (`watch_cache.go WaitUntilFreshAndGet`: 3 s, then 504
//! "Too large resource version"), RV "0" at once; a cache that is not ready sends the GET to etcd
//! (KEP-4568), where the etcd3 store checks the RV as a minimum (`validateMinimumResourceVersion`).
//! Not found is 404 `NotFound`.

use super::*;

impl Apiserver {
    /// A GET arrived: route it to etcd or the cache.
    pub(super) fn on_get(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resource: ResourceId,
        key: Key,
        rv: Rv,
        out: &mut Out<'_>,
    ) {
        let min_rv = match rv {
            Rv::At(n) => n,
            Rv::Unset | Rv::Zero => 0,
        };
        let cache_rv = match (rv, self.cacher(resource)) {
            (Rv::Unset, _) | (_, None) => None,
            (_, Some(c)) => c.ready.then(|| c.cache.resource_version()),
        };
        match cache_rv {
            None => {
                let purpose = EtcdPurpose::Get {
                    conn,
                    req_id,
                    resource,
                    key: key.clone(),
                    min_rv,
                };
                let req = KvRequest::Range {
                    range: KeyRange::Single(key),
                    revision: 0,
                    limit: 0,
                };
                if !self.send_etcd(req, purpose, out) {
                    let status = Status::internal("etcdserver: request timed out".into());
                    self.reply(conn, req_id, ApiResponse::Error(status), out);
                }
            }
            Some(cache_rv) if min_rv <= cache_rv => {
                self.get_from_cache(conn, req_id, resource, &key, out)
            }
            Some(_) => {
                let kind = WaitKind::Get { conn, req_id, key };
                self.add_wait(resource, min_rv, kind, out);
            }
        }
    }

    /// Answers a GET from the cache's current state.
    pub(super) fn get_from_cache(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resource: ResourceId,
        key: &Key,
        out: &mut Out<'_>,
    ) {
        let found = self
            .cacher(resource)
            .and_then(|c| c.cache.store().get(key).map(|o| o.rv));
        let resp = match found {
            Some(rv) => ApiResponse::Object {
                key: key.clone(),
                rv,
                served_from: ServedFrom::Cache,
            },
            None => ApiResponse::Error(self.get_not_found(resource, key)),
        };
        self.reply(conn, req_id, resp, out);
    }

    /// etcd answered a GET.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn got_from_etcd(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resource: ResourceId,
        key: Key,
        min_rv: i64,
        resp: Result<KvResponse, EtcdError>,
        out: &mut Out<'_>,
    ) {
        let reply = match resp {
            Ok(KvResponse::Range(range)) => {
                self.counters.etcd_read_bytes +=
                    range.kvs.iter().map(|kv| kv.value_bytes).sum::<u64>();
                if min_rv > range.revision {
                    self.counters.too_large_errors += 1;
                    ApiResponse::Error(Status::too_large_from_etcd(min_rv, range.revision))
                } else {
                    match range.kvs.iter().find(|kv| kv.key == key) {
                        Some(kv) => ApiResponse::Object {
                            key,
                            rv: kv.mod_revision,
                            served_from: ServedFrom::Etcd,
                        },
                        None => ApiResponse::Error(self.get_not_found(resource, &key)),
                    }
                }
            }
            Err(e) => ApiResponse::Error(Status::internal(e.to_string())),
            Ok(_) => ApiResponse::Error(Status::internal("unexpected etcd answer".into())),
        };
        self.reply(conn, req_id, reply, out);
    }

    fn get_not_found(&self, resource: ResourceId, key: &Key) -> Status {
        let resource_name = self
            .resource_names
            .get(resource as usize)
            .map(String::as_str)
            .unwrap_or("");
        Status::not_found(resource_name, name_of(key))
    }
}
