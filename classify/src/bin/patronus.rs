//! `patronus`: offline tools over captures (being written).

fn main() {
    eprintln!("patronus: not yet");
    std::process::exit(2);
}
