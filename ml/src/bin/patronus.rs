//! `patronus`: the classifier on captures.
//!
//! - `patronus classify FILE.pcap [--json] [--model FILE]`: one line per
//!   flow (5-tuple, class, application name, method signature|ml,
//!   confidence) and a summary; signatures decide when sure, the model
//!   (`--model`, else `$PATRONUS_MODEL`, else `models/flow-mlp.bin` of
//!   the source tree when present) the rest;
//! - `patronus eval [--corpus DIR]`: the signatures alone, scored against
//!   nDPI's labels on every capture of the corpus (`patronus-ml eval`
//!   scores the model and both, by capture-file folds).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use patronus_classify::eval::Report;
use patronus_classify::offline::labelled_corpus;
use patronus_classify::{Class, L4};
use patronus_ml::classifier::classify_file;
use patronus_ml::mlp::Mlp;

#[derive(Parser)]
#[command(
    name = "patronus",
    about = "Patronus application classification on captures"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Classify every flow of a capture
    Classify {
        file: PathBuf,
        /// One JSON object per flow, then a summary object
        #[arg(long)]
        json: bool,
        /// Model file (see `patronus-ml train`)
        #[arg(long)]
        model: Option<PathBuf>,
        /// Signatures only, even when a model is found
        #[arg(long)]
        no_model: bool,
    },
    /// Score the signatures against nDPI's labels on the corpus
    Eval {
        /// The corpus root (pcap/ and result/); default: shared/datasets/ndpi
        #[arg(long)]
        corpus: Option<PathBuf>,
    },
}

fn proto(l4: L4) -> &'static str {
    match l4 {
        L4::Tcp => "TCP",
        L4::Udp => "UDP",
    }
}

/// The model to use: the one named, else the environment's, else the
/// source tree's when present.
fn find_model(named: Option<PathBuf>) -> anyhow::Result<Option<Mlp>> {
    let path = named
        .or_else(|| std::env::var_os("PATRONUS_MODEL").map(PathBuf::from))
        .or_else(|| {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/flow-mlp.bin");
            p.exists().then_some(p)
        });
    let Some(path) = path else { return Ok(None) };
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let m = patronus_ml::model::from_bytes(&bytes)
        .with_context(|| format!("model {}", path.display()))?;
    Ok(Some(m))
}

fn classify(file: &Path, json: bool, model: Option<&Mlp>) -> anyhow::Result<()> {
    let flows = classify_file(file, model)?;
    let mut summary: BTreeMap<Class, (u64, u64)> = BTreeMap::new();
    let mut methods: BTreeMap<&str, u64> = BTreeMap::new();
    for (c, d) in &flows {
        let s = summary.entry(d.class).or_default();
        s.0 += 1;
        s.1 += c.flow.total_packets;
        *methods.entry(d.method.label()).or_default() += 1;
        let name = d.name.map(|n| n.to_string());
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "proto": proto(c.flow.l4),
                    "client": c.flow.client.to_string(),
                    "server": c.flow.server.to_string(),
                    "class": d.class,
                    "name": name,
                    "method": d.method.label(),
                    "confidence": d.confidence,
                    "packets": c.flow.total_packets,
                    "bytes": c.flow.total_bytes,
                })
            );
        } else {
            println!(
                "{} {} <-> {} {} {} {} {:.2}",
                proto(c.flow.l4),
                c.flow.client,
                c.flow.server,
                d.class,
                name.as_deref().unwrap_or("-"),
                d.method.label(),
                d.confidence
            );
        }
    }
    if json {
        let classes: BTreeMap<String, serde_json::Value> = summary
            .iter()
            .map(|(c, (f, p))| (c.to_string(), serde_json::json!({"flows": f, "packets": p})))
            .collect();
        println!(
            "{}",
            serde_json::json!({"summary": {"flows": flows.len(), "classes": classes, "methods": methods}})
        );
    } else {
        println!("{} flows ({})", flows.len(), {
            let m: Vec<String> = methods.iter().map(|(k, v)| format!("{k} {v}")).collect();
            m.join(", ")
        });
        for (c, (f, p)) in &summary {
            println!("  {c:<11} {f:>6} flows {p:>9} packets");
        }
    }
    Ok(())
}

fn eval(corpus: Option<PathBuf>) -> anyhow::Result<()> {
    let root = corpus.unwrap_or_else(patronus_classify::corpus::root);
    let caps = labelled_corpus(&root)?;
    let unlabelled: usize = caps.iter().map(|c| c.unlabelled).sum();
    let missing: usize = caps.iter().map(|c| c.missing).sum();
    let r = Report::new(
        caps.iter()
            .flat_map(|c| &c.flows)
            .map(|(l, c)| (l.class, c.verdict.class)),
    );
    println!(
        "signatures alone, {} labelled captures, {} labelled flows ({unlabelled} of our flows without an nDPI label and {missing} nDPI flows we did not form left out)\n",
        caps.len(),
        r.flows
    );
    print!("{}", r.table());
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Classify {
            file,
            json,
            model,
            no_model,
        } => (if no_model {
            Ok(None)
        } else {
            find_model(model)
        })
        .and_then(|m| classify(&file, json, m.as_ref())),
        Cmd::Eval { corpus } => eval(corpus),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("patronus: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
