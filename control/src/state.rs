//! The store actor: one thread owns the [`Store`] (holo style) and serves
//! typed requests that arrive on a bounded channel, each with a oneshot reply.
//! Handlers hold a cheap, cloneable [`StoreHandle`]; nothing shares the store.
//! Requests are applied one at a time, so a check and the write it guards can
//! never interleave with another request.

use std::thread;

use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::model::{Interface, InterfaceDef, OrgSpec, Organization, Route, RouteDef};
use crate::push::Pusher;
use crate::store::Store;

/// Requests queued before senders wait (back-pressure on the API).
pub const STORE_QUEUE_DEPTH: usize = 64;

type Reply<T> = oneshot::Sender<Result<T>>;

/// A typed request to the store actor.
#[derive(Debug)]
pub enum Request {
    ListOrgs {
        reply: Reply<Vec<Organization>>,
    },
    GetOrg {
        org: String,
        reply: Reply<Organization>,
    },
    CreateOrg {
        spec: OrgSpec,
        reply: Reply<Organization>,
    },
    DeleteOrg {
        org: String,
        reply: Reply<()>,
    },
    ListInterfaces {
        org: String,
        reply: Reply<Vec<Interface>>,
    },
    GetInterface {
        org: String,
        id: i64,
        reply: Reply<Interface>,
    },
    CreateInterface {
        org: String,
        def: InterfaceDef,
        reply: Reply<Interface>,
    },
    ReplaceInterface {
        org: String,
        id: i64,
        def: InterfaceDef,
        reply: Reply<Interface>,
    },
    DeleteInterface {
        org: String,
        id: i64,
        reply: Reply<()>,
    },
    ListRoutes {
        org: String,
        reply: Reply<Vec<Route>>,
    },
    GetRoute {
        org: String,
        id: i64,
        reply: Reply<Route>,
    },
    CreateRoute {
        org: String,
        def: RouteDef,
        reply: Reply<Route>,
    },
    ReplaceRoute {
        org: String,
        id: i64,
        def: RouteDef,
        reply: Reply<Route>,
    },
    DeleteRoute {
        org: String,
        id: i64,
        reply: Reply<()>,
    },
    ReplaceAllRoutes {
        org: String,
        defs: Vec<RouteDef>,
        reply: Reply<Vec<Route>>,
    },
    Generation {
        reply: Reply<u64>,
    },
    /// Stop the actor and close the database; replies once it is closed.
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// The API's way to the store actor.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Request>,
}

/// Starts the actor thread owning `store`.
pub fn spawn_store(store: Store) -> std::io::Result<StoreHandle> {
    spawn_store_with(store, None)
}

/// Starts the actor thread owning `store`; with a [`Pusher`], the state is
/// published to the engine at start and after every successful change.
pub fn spawn_store_with(store: Store, pusher: Option<Pusher>) -> std::io::Result<StoreHandle> {
    let (tx, rx) = mpsc::channel(STORE_QUEUE_DEPTH);
    thread::Builder::new()
        .name("store".into())
        .spawn(move || run(store, rx, pusher))?;
    Ok(StoreHandle { tx })
}

/// Publishes if the desired state moved; a failure is logged and retried
/// after the next change (the engine keeps its last generation meanwhile).
fn push(store: &mut Store, pusher: &mut Option<Pusher>) {
    if let Some(p) = pusher.as_mut() {
        match p.push_if_changed(store) {
            Ok(Some(g)) => tracing::debug!(generation = g, "published to the engine"),
            Ok(None) => {}
            Err(e) => tracing::error!("publishing to the engine failed: {e}"),
        }
    }
}

fn run(mut store: Store, mut rx: mpsc::Receiver<Request>, mut pusher: Option<Pusher>) {
    push(&mut store, &mut pusher);
    let closer = loop {
        match rx.blocking_recv() {
            None => break None,
            Some(Request::Close { reply }) => break Some(reply),
            Some(req) => {
                process(&mut store, req);
                push(&mut store, &mut pusher);
            }
        }
    };
    drop(store);
    if let Some(reply) = closer {
        let _ = reply.send(());
    }
}

/// Applies one request. A dropped reply (client went away) is fine: the
/// change is either fully applied or not at all.
fn process(s: &mut Store, req: Request) {
    match req {
        Request::ListOrgs { reply } => drop(reply.send(s.list_orgs())),
        Request::GetOrg { org, reply } => drop(reply.send(s.get_org(&org))),
        Request::CreateOrg { spec, reply } => drop(reply.send(s.create_org(&spec))),
        Request::DeleteOrg { org, reply } => drop(reply.send(s.delete_org(&org))),
        Request::ListInterfaces { org, reply } => drop(reply.send(s.list_interfaces(&org))),
        Request::GetInterface { org, id, reply } => drop(reply.send(s.get_interface(&org, id))),
        Request::CreateInterface { org, def, reply } => {
            drop(reply.send(s.create_interface(&org, &def)))
        }
        Request::ReplaceInterface {
            org,
            id,
            def,
            reply,
        } => drop(reply.send(s.replace_interface(&org, id, &def))),
        Request::DeleteInterface { org, id, reply } => {
            drop(reply.send(s.delete_interface(&org, id)))
        }
        Request::ListRoutes { org, reply } => drop(reply.send(s.list_routes(&org))),
        Request::GetRoute { org, id, reply } => drop(reply.send(s.get_route(&org, id))),
        Request::CreateRoute { org, def, reply } => drop(reply.send(s.create_route(&org, &def))),
        Request::ReplaceRoute {
            org,
            id,
            def,
            reply,
        } => drop(reply.send(s.replace_route(&org, id, &def))),
        Request::DeleteRoute { org, id, reply } => drop(reply.send(s.delete_route(&org, id))),
        Request::ReplaceAllRoutes { org, defs, reply } => {
            drop(reply.send(s.replace_all_routes(&org, &defs)))
        }
        Request::Generation { reply } => drop(reply.send(s.generation())),
        Request::Close { .. } => unreachable!("handled by run"),
    }
}

impl StoreHandle {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| Error::Unavailable)?;
        rx.await.map_err(|_| Error::Unavailable)?
    }

    pub async fn list_orgs(&self) -> Result<Vec<Organization>> {
        self.call(|reply| Request::ListOrgs { reply }).await
    }
    pub async fn get_org(&self, org: String) -> Result<Organization> {
        self.call(|reply| Request::GetOrg { org, reply }).await
    }
    pub async fn create_org(&self, spec: OrgSpec) -> Result<Organization> {
        self.call(|reply| Request::CreateOrg { spec, reply }).await
    }
    pub async fn delete_org(&self, org: String) -> Result<()> {
        self.call(|reply| Request::DeleteOrg { org, reply }).await
    }
    pub async fn list_interfaces(&self, org: String) -> Result<Vec<Interface>> {
        self.call(|reply| Request::ListInterfaces { org, reply })
            .await
    }
    pub async fn get_interface(&self, org: String, id: i64) -> Result<Interface> {
        self.call(|reply| Request::GetInterface { org, id, reply })
            .await
    }
    pub async fn create_interface(&self, org: String, def: InterfaceDef) -> Result<Interface> {
        self.call(|reply| Request::CreateInterface { org, def, reply })
            .await
    }
    pub async fn replace_interface(
        &self,
        org: String,
        id: i64,
        def: InterfaceDef,
    ) -> Result<Interface> {
        self.call(|reply| Request::ReplaceInterface {
            org,
            id,
            def,
            reply,
        })
        .await
    }
    pub async fn delete_interface(&self, org: String, id: i64) -> Result<()> {
        self.call(|reply| Request::DeleteInterface { org, id, reply })
            .await
    }
    pub async fn list_routes(&self, org: String) -> Result<Vec<Route>> {
        self.call(|reply| Request::ListRoutes { org, reply }).await
    }
    pub async fn get_route(&self, org: String, id: i64) -> Result<Route> {
        self.call(|reply| Request::GetRoute { org, id, reply })
            .await
    }
    pub async fn create_route(&self, org: String, def: RouteDef) -> Result<Route> {
        self.call(|reply| Request::CreateRoute { org, def, reply })
            .await
    }
    pub async fn replace_route(&self, org: String, id: i64, def: RouteDef) -> Result<Route> {
        self.call(|reply| Request::ReplaceRoute {
            org,
            id,
            def,
            reply,
        })
        .await
    }
    pub async fn delete_route(&self, org: String, id: i64) -> Result<()> {
        self.call(|reply| Request::DeleteRoute { org, id, reply })
            .await
    }
    pub async fn replace_all_routes(&self, org: String, defs: Vec<RouteDef>) -> Result<Vec<Route>> {
        self.call(|reply| Request::ReplaceAllRoutes { org, defs, reply })
            .await
    }
    pub async fn generation(&self) -> Result<u64> {
        self.call(|reply| Request::Generation { reply }).await
    }

    /// Stops the actor and waits until the database is closed.
    pub async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request::Close { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }
}
