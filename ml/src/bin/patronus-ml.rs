//! `patronus-ml`: trains and evaluates the flow classifier's model.
//!
//! - `patronus-ml train [--corpus DIR] [--seed N] --out FILE`: trains on
//!   every labelled capture and writes the model file (printing its
//!   SHA-256);
//! - `patronus-ml eval [--corpus DIR] [--folds K] [--seed N]`: per-class
//!   precision, recall and F1 for signatures alone, the model alone and
//!   both, each capture scored by a model that never saw it.

use std::path::PathBuf;

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
        #[arg(long, default_value_t = 5)]
        folds: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 80)]
        epochs: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Train {
            corpus,
            seed,
            epochs,
            out,
        } => {
            let root = corpus.unwrap_or_else(patronus_classify::corpus::root);
            let d = Dataset::load(&root)?;
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
            folds,
            seed,
            epochs,
        } => {
            let root = corpus.unwrap_or_else(patronus_classify::corpus::root);
            let d = Dataset::load(&root)?;
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
    }
    Ok(())
}
