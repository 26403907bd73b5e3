//! `patronus-ml`: trains and evaluates the flow classifier's model.
//!
//! - `patronus-ml train [--corpus DIR] [--seed N] --out FILE`: trains on
//!   every labelled capture and writes the model file (printing its
//!   SHA-256);
//! - `patronus-ml eval [--corpus DIR] [--folds K] [--seed N]`: per-class
//!   precision, recall and F1 for signatures alone, the model alone and
//!   both, each capture scored by a model that never saw it.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use patronus_classify::Class;
use patronus_ml::dataset::Dataset;
use patronus_ml::evaluate::evaluate;
use patronus_ml::model::{sha256_hex, to_bytes};
use patronus_ml::train::{train, TrainConfig};

#[derive(Parser)]
#[command(
    name = "patronus-ml",
    about = "Patronus flow classifier: training and evaluation"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train on every labelled capture and write a model file
    Train {
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// More labelled captures (pcap/ and result/)
        #[arg(long)]
        extra: Vec<PathBuf>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 80)]
        epochs: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Cross-validate by capture file: signatures, model, both
    Eval {
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// More labelled captures (pcap/ and result/, e.g. recorded by
        /// scripts/record_traffic.sh)
        #[arg(long)]
        extra: Vec<PathBuf>,
        #[arg(long, default_value_t = 5)]
        folds: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 80)]
        epochs: usize,
    },
    /// Label the flows of a recorded capture by their server port, in
    /// nDPI's result format (for captures whose servers we ran ourselves)
    Label {
        pcap: PathBuf,
        /// `PORT=NDPI_NAME` or `LO-HI=NDPI_NAME` (repeatable), e.g. 443=TLS
        #[arg(long = "port", required = true)]
        ports: Vec<String>,
        #[arg(long)]
        out: PathBuf,
    },
}

/// The labelled corpus plus extra roots.
fn load(corpus: Option<PathBuf>, extra: &[PathBuf]) -> anyhow::Result<Dataset> {
    let root = corpus.unwrap_or_else(patronus_classify::corpus::root);
    let mut d = Dataset::load(&root)?;
    for e in extra {
        d.append(Dataset::load(e)?);
    }
    Ok(d)
}

/// `PORT=NAME` or `LO-HI=NAME`.
fn port_rule(s: &str) -> anyhow::Result<(u16, u16, String)> {
    let (ports, name) = s
        .split_once('=')
        .with_context(|| format!("{s:?}: expected PORT=NAME"))?;
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (a.parse()?, b.parse()?),
        None => {
            let p = ports.parse()?;
            (p, p)
        }
    };
    Ok((lo, hi, name.to_string()))
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Train {
            corpus,
            extra,
            seed,
            epochs,
            out,
        } => {
            let d = load(corpus, &extra)?;
            let idx: Vec<usize> = (0..d.rows.len()).collect();
            let (x, y) = d.matrix(&idx);
            let cfg = TrainConfig {
                seed,
                epochs,
                ..Default::default()
            };
            let m = train(&x, &y, Class::ALL.to_vec(), &cfg);
            let bytes = to_bytes(&m);
            std::fs::write(&out, &bytes)?;
            println!(
                "{} flows from {} captures; model {} sha256 {}",
                d.rows.len(),
                d.files.len(),
                out.display(),
                sha256_hex(&bytes).unwrap_or_default()
            );
        }
        Cmd::Eval {
            corpus,
            extra,
            folds,
            seed,
            epochs,
        } => {
            let d = load(corpus, &extra)?;
            let cfg = TrainConfig {
                seed,
                epochs,
                ..Default::default()
            };
            let e = evaluate(&d, folds.max(2), &cfg);
            println!(
                "{} labelled flows from {} captures, {}-fold by capture file, seed {seed}\n",
                d.rows.len(),
                d.files.len(),
                e.folds
            );
            for (what, r) in [
                ("signatures alone", &e.signatures),
                ("model alone", &e.model),
                ("signatures and model", &e.both),
            ] {
                println!("### {what}\n\n{}", r.table());
            }
        }
        Cmd::Label { pcap, ports, out } => {
            let rules = ports
                .iter()
                .map(|p| port_rule(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let cap = patronus_classify::pcap::Capture::read(&pcap)?;
            let (flows, _) = patronus_classify::flows::flows_of(&cap);
            let mut text = String::new();
            let mut n = 0;
            for f in &flows {
                let port = f.server.port();
                let Some((_, _, name)) =
                    rules.iter().find(|(lo, hi, _)| (*lo..=*hi).contains(&port))
                else {
                    continue;
                };
                n += 1;
                let proto = match f.l4 {
                    patronus_classify::L4::Tcp => "TCP",
                    patronus_classify::L4::Udp => "UDP",
                };
                text.push_str(&format!(
                    "\t{n}\t{proto} {} <-> {} [proto: 0/{name}]\n",
                    f.client, f.server
                ));
            }
            std::fs::write(&out, text)?;
            println!(
                "{n} of {} flows labelled into {}",
                flows.len(),
                out.display()
            );
        }
    }
    Ok(())
}
