//! PLACEHOLDER (being written): the ftp dissector.

use super::Ctx;
use crate::view::{PacketView, Step};

#[derive(Clone, Debug, Default)]
pub struct State {}

impl State {
    pub fn inspect(&mut self, _ctx: &mut Ctx, _p: &PacketView<'_>) -> Step {
        Step::NotMine
    }
}
