//! How a reader gets from the generation it holds to the newest one: the
//! deltas in between when it holds one they apply to, otherwise the newest
//! self-contained generation (full route table) and the deltas after it.

use crate::error::ShmError;
use crate::runtime_dir::RuntimeDir;
use crate::subscribe::Generation;

/// What to apply, oldest first.
#[derive(Debug)]
pub enum CatchUp {
    /// Apply these deltas, in order, to the generation held.
    Deltas(Vec<Generation>),
    /// Start from `base`'s full tables, then apply `deltas` in order.
    Full {
        base: Generation,
        deltas: Vec<Generation>,
    },
}

/// Plans the way from generation `have` (0 = nothing held) to `newest`,
/// loading the generation files it needs from `dir`. A missing file (a
/// chain the publisher reclaimed, which it does not do while a live worker
/// holds `have`) is an error; the caller retries with a newer generation.
pub fn catch_up(dir: &RuntimeDir, have: u64, newest: Generation) -> Result<CatchUp, ShmError> {
    let mut stack = vec![newest];
    loop {
        let top = stack.last().expect("never empty");
        let view = top.view();
        match view.delta_of() {
            Some(base) if have != 0 && base == have => {
                stack.reverse();
                return Ok(CatchUp::Deltas(stack));
            }
            // Numbers fall strictly along the chain (checked by parse), so
            // the walk ends.
            Some(base) if !view.has_full_routes() => {
                let g = Generation::load(&dir.generation(base), base)?;
                stack.push(g);
            }
            // Self-contained: a full generation or a checkpoint.
            _ => {
                let base = stack.pop().expect("never empty");
                stack.reverse();
                return Ok(CatchUp::Full {
                    base,
                    deltas: stack,
                });
            }
        }
    }
}
