//! Per-class precision, recall and F1 of predictions against nDPI's
//! labels, and the macro-F1 over the nine named classes.

use std::collections::BTreeMap;

use crate::class::Class;

/// Counts for one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
}

impl Counts {
    pub fn support(&self) -> u64 {
        self.tp + self.fn_
    }
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Scores of (truth, prediction) pairs.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub per_class: BTreeMap<Class, Counts>,
    pub flows: u64,
}

impl Report {
    pub fn new(pairs: impl IntoIterator<Item = (Class, Class)>) -> Report {
        let mut r = Report::default();
        for c in Class::ALL {
            r.per_class.insert(c, Counts::default());
        }
        for (truth, pred) in pairs {
            r.flows += 1;
            if truth == pred {
                r.per_class.entry(truth).or_default().tp += 1;
            } else {
                r.per_class.entry(truth).or_default().fn_ += 1;
                r.per_class.entry(pred).or_default().fp += 1;
            }
        }
        r
    }

    /// Mean F1 over [`Class::NAMED`].
    pub fn macro_f1(&self) -> f64 {
        let f: f64 = Class::NAMED
            .iter()
            .map(|c| self.per_class.get(c).copied().unwrap_or_default().f1())
            .sum();
        f / Class::NAMED.len() as f64
    }

    /// A Markdown table: class, support, precision, recall, F1.
    pub fn table(&self) -> String {
        let mut s =
            String::from("| class | flows | precision | recall | F1 |\n|---|---|---|---|---|\n");
        for (c, k) in &self.per_class {
            s.push_str(&format!(
                "| {c} | {} | {:.3} | {:.3} | {:.3} |\n",
                k.support(),
                k.precision(),
                k.recall(),
                k.f1()
            ));
        }
        s.push_str(&format!(
            "| **macro-F1 (nine named classes)** | {} | | | **{:.3}** |\n",
            self.flows,
            self.macro_f1()
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_scores() {
        use Class::*;
        let r = Report::new([(Http, Http), (Http, Tls), (Tls, Tls), (Dns, Http)]);
        let h = r.per_class[&Http];
        assert_eq!((h.tp, h.fp, h.fn_), (1, 1, 1));
        assert!((h.f1() - 0.5).abs() < 1e-9);
        assert!((r.per_class[&Tls].precision() - 0.5).abs() < 1e-9);
        assert_eq!(r.per_class[&Dns].recall(), 0.0);
        assert_eq!(r.flows, 4);
        assert!(r.macro_f1() > 0.0 && r.macro_f1() < 1.0);
    }
}
