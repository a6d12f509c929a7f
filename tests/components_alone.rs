//! Each component driven alone through the protocol layer (issue 15): a message or timer in, what
//! it asked for inspected, without building a `World`. The apiserver and the reflector write into
//! a `proto::Out` over a recording [`Host`]; etcd answers KV requests and fills its own
//! `WatchOutput` buffer.

use std::collections::BTreeMap;

use watchsim::apiserver::Apiserver;
use watchsim::client::{self, ClientTimer};
use watchsim::etcd::{EtcdConfig, EtcdServer, KvRequest, KvResponse, WatchOutput, WatchRequest};
use watchsim::proto::api::{ApiRequest, Rv};
use watchsim::proto::etcd::{EventKind, Key, KeyRange, WatchResponseKind};
use watchsim::proto::{Actor, ConnId, Effect, Host, Msg, Notice, Out, Timer};
use watchsim::scenario::{Scenario, load_str};

/// Connections as a map and every effect recorded, in order.
#[derive(Default)]
struct Recorder {
    conns: BTreeMap<ConnId, (Actor, Actor)>,
    effects: Vec<Effect>,
    notices: Vec<Notice>,
}

impl Host for Recorder {
    fn connect(&mut self, client: Actor, server: Actor) -> ConnId {
        let id = self.conns.len() as ConnId + 1;
        self.conns.insert(id, (client, server));
        id
    }
    fn is_open(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }
    fn client_of(&self, conn: ConnId) -> Option<Actor> {
        self.conns.get(&conn).map(|c| c.0)
    }
    fn apply(&mut self, effects: &mut Vec<Effect>, notices: &mut Vec<Notice>) {
        self.effects.append(effects);
        self.notices.append(notices);
    }
}

impl Recorder {
    /// The messages sent so far, with their connections, and forget them.
    fn take_sends(&mut self) -> Vec<(ConnId, Msg)> {
        let mut sends = Vec::new();
        for e in self.effects.drain(..) {
            if let Effect::Send { conn, msg, .. } = e {
                sends.push((conn, msg));
            }
        }
        sends
    }
}

fn scenario(extra: &str) -> Scenario {
    let text = format!(
        "name = \"alone\"\nduration = \"1m\"\n[[resources]]\nname = \"pods\"\ncount = 2\n{extra}"
    );
    load_str("components_alone.rs", &text, &[]).unwrap()
}

#[test]
fn etcd_alone_answers_a_put_and_streams_it_to_a_watcher() {
    let mut etcd = EtcdServer::new(EtcdConfig {
        max_request_bytes: 1 << 20,
        progress_notify_interval_ns: 0,
    });
    let mut out = Vec::new();
    let create = WatchRequest::Create {
        watch_id: 7,
        range: KeyRange::Prefix(Key::new("/registry/pods/")),
        start_revision: 0,
        progress_notify: false,
    };
    etcd.handle_watch(0, 1, &create, &mut out);
    assert!(
        matches!(&out[..], [WatchOutput::Send(1, r)] if r.kind == WatchResponseKind::Created),
        "{out:?}"
    );
    out.clear();
    let put = KvRequest::Put {
        key: Key::new("/registry/pods/default/a"),
        value_bytes: 10,
    };
    let resp = etcd.handle_kv(&put, &mut out).unwrap();
    assert_eq!(resp, KvResponse::Put { revision: 2 });
    let [WatchOutput::Send(1, r)] = &out[..] else {
        panic!("one response on stream 1: {out:?}");
    };
    let WatchResponseKind::Events(events) = &r.kind else {
        panic!("events: {r:?}");
    };
    assert_eq!((r.watch_id, events.len()), (7, 1));
    assert_eq!(events[0].kind, EventKind::Put);
    assert_eq!(events[0].kv.mod_revision, 2);
}

#[test]
fn an_apiserver_alone_lists_from_etcd_then_watches_from_the_next_revision() {
    let s = scenario("");
    let mut host = Recorder::default();
    let mut api = Apiserver::new(0, &s, 1, &mut Out::new(0, &mut host));
    // Starting, its pods cacher lists the resource's prefix from etcd.
    let sends = host.take_sends();
    let Some((kv_conn, req_id)) = sends.iter().find_map(|(conn, m)| match m {
        Msg::Kv {
            req_id,
            req: KvRequest::Range { range, .. },
        } if range.start().as_str() == "/registry/pods/" => Some((*conn, *req_id)),
        _ => None,
    }) else {
        panic!("no initial LIST of pods: {sends:?}");
    };
    assert_eq!(host.conns[&kv_conn], (Actor::Apiserver(0), Actor::Etcd));
    // etcd answers at revision 5 with no objects: the cacher watches from revision 6.
    let list = watchsim::proto::etcd::RangeResult {
        revision: 5,
        count: 0,
        more: false,
        kvs: Vec::new(),
    };
    api.on_etcd_reply(
        kv_conn,
        req_id,
        Ok(KvResponse::Range(list)),
        &mut Out::new(1_000, &mut host),
    );
    let sends = host.take_sends();
    let starts: Vec<i64> = sends
        .iter()
        .filter_map(|(_, m)| match m {
            Msg::Watch(WatchRequest::Create { start_revision, .. }) => Some(*start_revision),
            _ => None,
        })
        .collect();
    assert_eq!(starts, vec![6], "{sends:?}");
}

#[test]
fn a_reflector_alone_lists_on_its_first_timer_and_arms_nothing_else() {
    let s = scenario(
        "[[clients]]\nname = \"ctl\"\nresource = \"pods\"\ncount = 1\nwatch_list = false\n",
    );
    let mut reflectors = client::build(&s, 1);
    let r = &mut reflectors[0];
    r.set_server(Some(0));
    let mut host = Recorder::default();
    r.start(0, &mut Out::new(0, &mut host));
    assert_eq!(
        host.effects,
        vec![Effect::Timer {
            at: 0,
            timer: Timer::Client(0, 0, ClientTimer::ListAndWatch)
        }]
    );
    host.effects.clear();
    let _ = r.on_timer(
        0,
        ClientTimer::ListAndWatch,
        &s.clients[0],
        &mut Out::new(0, &mut host),
    );
    let sends = host.take_sends();
    let [(conn, Msg::Api { req, .. })] = &sends[..] else {
        panic!("one API request: {sends:?}");
    };
    assert_eq!(host.conns[conn], (Actor::Client(0), Actor::Apiserver(0)));
    let ApiRequest::List { rv, .. } = &**req else {
        panic!("a LIST: {req:?}");
    };
    // client-go's first LIST asks for RV "0" (served from the watch cache).
    assert_eq!(*rv, Rv::Zero, "{req:?}");
}
