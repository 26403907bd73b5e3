//! `patronus`: the classifier on captures.
//!
//! - `patronus classify FILE.pcap [--json]`: one line per flow (5-tuple,
//!   class, application name, method, confidence) and a summary;
//! - `patronus eval [--corpus DIR]`: every capture of the nDPI corpus
//!   classified and scored against nDPI's labels (per-class precision,
//!   recall, F1).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use patronus_classify::eval::Report;
use patronus_classify::labels::read_labels;
use patronus_classify::offline::{classify_file, Classified};
use patronus_classify::{Class, L4};

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
    },
    /// Score the classifier against nDPI's labels on the corpus
    Eval {
        /// The corpus root (pcap/ and result/); default: shared/datasets/ndpi
        #[arg(long)]
        corpus: Option<PathBuf>,
    },
}

fn method(c: &Classified) -> &'static str {
    if c.verdict.confidence > 0.0 {
        "signature"
    } else {
        "none"
    }
}

fn proto(l4: L4) -> &'static str {
    match l4 {
        L4::Tcp => "TCP",
        L4::Udp => "UDP",
    }
}

fn classify(file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let flows = classify_file(file)?;
    let mut summary: BTreeMap<Class, (u64, u64)> = BTreeMap::new();
    for c in &flows {
        let s = summary.entry(c.verdict.class).or_default();
        s.0 += 1;
        s.1 += c.flow.total_packets;
        let name = c.verdict.name.map(|n| n.to_string());
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "proto": proto(c.flow.l4),
                    "client": c.flow.client.to_string(),
                    "server": c.flow.server.to_string(),
                    "class": c.verdict.class,
                    "name": name,
                    "method": method(c),
                    "confidence": c.verdict.confidence,
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
                c.verdict.class,
                name.as_deref().unwrap_or("-"),
                method(c),
                c.verdict.confidence
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
            serde_json::json!({"summary": {"flows": flows.len(), "classes": classes}})
        );
    } else {
        println!("{} flows", flows.len());
        for (c, (f, p)) in &summary {
            println!("  {c:<11} {f:>6} flows {p:>9} packets");
        }
    }
    Ok(())
}

fn eval(corpus: Option<PathBuf>) -> anyhow::Result<()> {
    let root = corpus.unwrap_or_else(patronus_classify::corpus::root);
    let mut pairs = Vec::new();
    let mut unmatched = 0u64;
    let mut missing = 0u64;
    let files = patronus_classify::corpus::captures(&root.join("pcap"))
        .with_context(|| format!("reading {}", root.join("pcap").display()))?;
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let result = root.join("result").join(format!("{name}.out"));
        let Ok(labels) = read_labels(&result) else {
            continue;
        };
        let flows = classify_file(f)?;
        for c in &flows {
            match labels.get(&c.flow.key()) {
                Some(l) => pairs.push((l.class, c.verdict.class)),
                None => unmatched += 1,
            }
        }
        let ours: std::collections::HashSet<_> = flows.iter().map(|c| c.flow.key()).collect();
        missing += labels.keys().filter(|k| !ours.contains(k)).count() as u64;
    }
    let r = Report::new(pairs);
    println!(
        "signatures alone, {} captures, {} labelled flows ({unmatched} of our flows without an nDPI label and {missing} nDPI flows we did not form left out)\n",
        files.len(),
        r.flows
    );
    print!("{}", r.table());
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::Classify { file, json } => classify(file, *json),
        Cmd::Eval { corpus } => eval(corpus.clone()),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("patronus: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
