//! Routes into WireGuard tunnels pushed by the control process name the
//! tunnel by its pushed id — in a whole generation and in a delta
//! replacing a gateway route — and ids the engine cannot hold name no
//! tunnel (key 0), so what they carry is dropped, never sent in clear.

use patronus_engine::control_link::pushed_routes;
use patronus_engine::fib::{PushedChange, RouteAction, StaticRoute};
use patronus_engine::fib_sync::pushed_change;
use patronus_shm::{RouteChange, RouteEntry, RouteKind};

const NET: u32 = 0x0a02_0000; // 10.2.0.0

#[test]
fn a_tunnel_route_names_its_tunnel_in_a_full_generation() {
    let mut via = RouteEntry::new(0x0a09_0000, 16, RouteKind::Via);
    via.push_nexthop(0x0a01_00fe, u16::MAX);
    let routes = pushed_routes(&[
        RouteEntry::tunnel(NET, 16, 7),
        via,
        RouteEntry::tunnel(0x0a03_0000, 16, 0x8000_0001),
    ]);
    assert_eq!(
        routes[0],
        StaticRoute {
            prefix: NET,
            len: 16,
            action: RouteAction::Tunnel(7)
        }
    );
    assert_eq!(routes[1].action, RouteAction::Via(vec![0x0a01_00fe]));
    assert_eq!(routes[2].action, RouteAction::Tunnel(0));
}

#[test]
fn a_delta_turning_a_gateway_route_into_a_tunnel_route_names_the_tunnel() {
    let c = RouteChange::upsert(RouteEntry::tunnel(NET, 16, 7));
    assert_eq!(
        pushed_change(&c),
        Some(PushedChange::Upsert(StaticRoute {
            prefix: NET,
            len: 16,
            action: RouteAction::Tunnel(7)
        }))
    );
}
