//! `patronusctl`: operator CLI over the Patronus REST API (see `patronus_control::ctl`).

fn main() {
    std::process::exit(patronus_control::ctl::main());
}
